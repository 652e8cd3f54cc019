"""Robustness: rows for every perturbation, with drops from clean and paired CIs."""
from __future__ import annotations

import pytest
from support.helpers import q

from pathboard.core.science.perturb import PERTURBATIONS


@pytest.mark.slow
def test_robustness_stores_rows_for_every_perturbation(robust_run):
    db, first, second = robust_run
    assert first.returncode == 0, first.stderr[-3000:]
    variants = {v for (v,) in q(db, "SELECT DISTINCT variant FROM cells WHERE task = 'robustness'")}
    assert variants == {""} | {f"perturbation={name}" for name in PERTURBATIONS}
    rows = dict(((v, m), (value, lo, hi)) for v, m, value, lo, hi in q(
        db, "SELECT variant, metric, value, ci_low, ci_high FROM results_all WHERE task = 'robustness' "
            "AND run_id = (SELECT run_id FROM runs ORDER BY started_at LIMIT 1)"))
    (clean,), = q(db, "SELECT value FROM results_all WHERE task = 'zeroshot' AND metric = 'balanced_accuracy' "
                      "ORDER BY created_at LIMIT 1")
    for name in PERTURBATIONS:
        v = f"perturbation={name}"
        flip, cosine = rows[(v, "flip_rate")], rows[(v, "cosine")]
        assert 0 <= flip[0] <= 1 and flip[1] <= flip[0] <= flip[2]
        assert -1 <= cosine[0] <= 1.0001 and cosine[1] <= cosine[0] <= cosine[2]
        # the drop is clean minus perturbed, on the same items
        assert rows[(v, "balanced_accuracy_drop")][0] == pytest.approx(clean - rows[(v, "balanced_accuracy")][0])
    assert rows[("", "balanced_accuracy")][0] == pytest.approx(clean)
    assert rows[("", "cosine/worst")][0] == pytest.approx(min(rows[(f"perturbation={n}", "cosine")][0]
                                                              for n in PERTURBATIONS))
    # per-perturbation predictions are stored, so models can be compared under each perturbation
    (n,), = q(db, "SELECT count(*) FROM predictions JOIN cells USING (cell_id) WHERE task = 'robustness'")
    assert n == 2 * len(PERTURBATIONS)  # two runs
    # perturbed embeddings are cached under their own keys: the second run embeds nothing
    assert second.returncode == 0, second.stderr[-3000:]
    assert " 0 images and 0 tiles embedded" in second.stderr
