"""Zero-shot patch classification: calibration and AUROC at the model's own logit scale, and the bootstrap
it records."""
from __future__ import annotations

from types import MappingProxyType, SimpleNamespace

import numpy as np
import pytest
from support.helpers import q
from support.synthetic import manifest

from pathboard.core.interfaces.task import CellContext, Predictions
from pathboard.core.science.metrics import (
    classification_metrics,
)


@pytest.mark.slow
def test_zero_shot_reports_calibration_and_auroc(robust_run):
    db, first, _ = robust_run
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = dict(q(db, "SELECT metric, value FROM results_all WHERE task = 'zeroshot' AND variant = ''"))
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["brier"] <= 2 and metrics["nll"] > 0
    assert 0 <= metrics["auroc"] <= 1
    assert {f"auroc/{c}" for c in ("ADI", "TUM")} <= set(metrics)


def test_zero_shot_probabilities_are_at_the_models_own_logit_scale():
    from dataclasses import replace

    from scipy.special import softmax
    from sklearn.metrics import log_loss, roc_auc_score

    from pathboard.plugins.tasks.zeroshot import ZeroShot
    from pathboard.testing import synthetic_context

    ctx = synthetic_context(ZeroShot(), prompt_mode="single")
    rows = ctx.evaluated("test")
    classifier = ctx.encode_texts(["class0", "class1"])
    sims = ctx.image_embeddings[rows] @ classifier.T
    y = ctx.labels[rows]
    for scale in (14.3, 100.0):
        metrics = {m.name: m.value for m in ZeroShot().score(replace(ctx, facts=lambda s=scale: {"logit_scale": s}))[""]}
        probs = softmax(scale * sims.astype(np.float64), axis=1)
        assert metrics["nll"] == pytest.approx(log_loss(y, probs, labels=[0, 1]), rel=1e-3, abs=1e-6)  # float32 cosines
        assert metrics["auroc"] == pytest.approx(roc_auc_score(y, probs[:, 1]))


def zeroshot_context(groups):
    classes = ["a", "b", "c"]
    n = len(groups)
    labels = np.resize(np.arange(3), n)
    embeddings = np.eye(3, dtype=np.float32)[(labels + (np.arange(n) % 4 == 0)) % 3]
    texts = {f"{c} tissue": np.eye(3, dtype=np.float32)[i][None] for i, c in enumerate(classes)}
    m = manifest([f"img{i}.png" for i in range(n)], groups)
    m.labels = labels
    dataset = SimpleNamespace(id="toy", classes=classes, ordinal=False, eval_split=None)
    prompts = SimpleNamespace(prompts=lambda mode, names: {c: [f"{c} tissue"] for c in names})
    images = SimpleNamespace(embeddings=embeddings, valid=np.ones(n, dtype=bool))
    return CellContext("model", dataset, m, "single", prompts, lambda t: np.concatenate([texts[x] for x in t]),
                       images, MappingProxyType({}), facts=lambda: {"logit_scale": 100.0})


def test_zeroshot_records_which_bootstrap_it_used():
    from pathboard.plugins.tasks.zeroshot import ZeroShot

    grouped = [f"p{i // 10}" for i in range(120)]
    result = ZeroShot().score(zeroshot_context(grouped))
    assert result.protocol == {"bootstrap": "cluster by group (12 groups)"}
    assert isinstance(result.predictions[""], Predictions) and list(result.predictions[""].groups) == grouped
    plain = ZeroShot().score(zeroshot_context([None] * 120))
    assert plain.protocol == {"bootstrap": "items"} and plain.predictions[""].groups is None
    acc = {m.name: m for m in result[""]}["accuracy"]
    assert acc.value == {m.name: m for m in plain[""]}["accuracy"].value
    assert acc.ci_low == {m.name: m for m in classification_metrics(
        result.predictions[""].y_true, result.predictions[""].y_pred, ["a", "b", "c"], groups=grouped)}["accuracy"].ci_low
