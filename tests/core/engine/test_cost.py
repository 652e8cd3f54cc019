"""What each model cost to run: images/s, peak memory and parameters, stored per run; nothing claimed
when every embedding was cached."""
from __future__ import annotations

import pytest
from support.helpers import q

from pathboard.core.engine import plugins
from pathboard.core.interfaces.model import Runtime
from pathboard.core.science.perturb import PERTURBATIONS


@pytest.mark.slow
def test_every_run_stores_what_each_model_cost(robust_run):
    db, first, second = robust_run
    rows = q(db, "SELECT model, dataset, device, precision, params, images, images_per_s, peak_memory_bytes, "
                 "memory_kind, wall_seconds FROM costs ORDER BY created_at")
    assert len(rows) == 2  # one model and dataset per run
    model, dataset, device, precision, params, images, rate, peak, kind, wall = rows[0]
    assert (model, dataset, device, precision) == ("quiltnet-b32", "crc-val-he-7k", "cpu", "fp32")
    assert images == 32 * (1 + len(PERTURBATIONS)) and rate > 0 and peak > 0 and wall > 0
    assert kind == "process peak RSS (sampled)"
    spec = plugins.get("model", "quiltnet-b32")
    loaded = spec.load(spec.resolve(), Runtime())
    assert params == sum(p.numel() for p in loaded.model.parameters()) > 0
    cached = rows[1]
    assert cached[5] == 0 and cached[6] is None  # nothing embedded: no throughput is claimed
    assert cached[4] == params  # the parameter count was cached with the model's facts
