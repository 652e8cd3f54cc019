"""Every number of zero-shot and few-shot on the real ``../shared/data`` samples is pinned.

The golden file was written by the code *before* the plugin API v2 refactor (one-way scoring,
task options, applicability), which moved no number. It was regenerated once, deliberately, for the
few-shot protocol of issue 10 (k <= 16 plus "all", point values per draw, the spread over draws in
q1/q3): the zero-shot numbers and every per-draw and median value stayed identical. It was
regenerated a second time when the linear probe began fitting in float64 whatever the embeddings' dtype
(scikit-learn 1.9 fits float32 input in float32, so the probe's numbers depended on the installed
release): 48 linear-probe values moved, no prototype or zero-shot value did. Regenerate it
only for a deliberate change of a metric, with ``PATHBOARD_WRITE_GOLDEN=1`` and a commit that says why.
The calibration and ranking metrics zero-shot gained later (ECE, Brier, NLL, AUROC; issue 11) are
checked against scikit-learn in ``test_calibration.py`` and left out here, as is the reliability
diagram's variant (its bins reproduce the ECE there), so every older number stays pinned exactly as it was.
"""
import json
import math
import os
from pathlib import Path

import duckdb
import pytest

from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden" / "shared_data_numbers.json"


def stored(db) -> dict[str, list]:
    rows = duckdb.connect(str(db), read_only=True).execute("""
        SELECT dataset, task, variant, coalesce(prompt_mode, '-'), metric, value, ci_low, ci_high, n, q1, q3
        FROM results_all WHERE split_part(metric, '/', 1) NOT IN ('ece', 'brier', 'nll', 'auroc')
                               AND variant <> 'reliability'
        ORDER BY ALL""").fetchall()
    return {"/".join(map(str, r[:5])): [None if v is None or math.isnan(v) else round(v, 9) for v in r[5:8]] + [r[8]]
            + [None if v is None or math.isnan(v) else round(v, 9) for v in r[9:11]] for r in rows}


def test_zero_and_few_shot_numbers_on_the_real_samples_are_unchanged(tmp_path, tiny_hub, shared_data, fresh_cache):
    db = tmp_path / "pb.duckdb"
    for datasets, tasks in (("crc-val-he-7k,lc25000-lung", "zeroshot"), ("lc25000-lung", "fewshot")):
        cfg = RunConfig(models="quiltnet-b32", datasets=datasets, tasks=tasks, data_root=str(shared_data),
                        db=str(db), workers=0, batch_size=64)
        summary = execute(plan(cfg), cfg)
        assert not summary.errors, summary.errors
    numbers = stored(db)
    if os.environ.get("PATHBOARD_WRITE_GOLDEN"):
        GOLDEN.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(numbers.items()))
                          + "\n}\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(numbers) == sorted(golden)  # the same cells, variants and metrics
    changed = {k: (numbers[k], golden[k]) for k in golden if numbers[k] != golden[k]}
    assert not changed, f"{len(changed)} of {len(golden)} numbers moved, e.g. {list(changed.items())[:3]}"
    assert len(golden) > 400  # zero-shot (2 sets x 2 modes) and every few-shot variant
