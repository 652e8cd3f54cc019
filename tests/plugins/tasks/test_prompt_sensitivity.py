"""Prompt sensitivity: its draws, stored distributions with no image forward, and slides re-scored on
cached tiles."""
from __future__ import annotations

import numpy as np
import pytest
from support.helpers import pathboard, q
from support.layouts import write_tissuenet_slides

from pathboard.core.interfaces.prompts import PromptSet
from pathboard.plugins.tasks.prompt_sensitivity import draws


@pytest.mark.slow
def test_prompt_sensitivity_stores_its_distribution_with_no_image_forward(crc_runs):
    db, first, second = crc_runs
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    assert " 0 images and 0 tiles embedded" in second.stderr
    assert q(db, "SELECT image_forwards FROM runs ORDER BY started_at")[-1] == (0,)
    prompts = PromptSet.load("pathboard/prompts/crc100k.json")
    classes = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
    expected = draws(prompts, [c for c in classes if c in prompts.classes])
    for model in ("quiltnet-b32", "plip"):
        variants = {v for (v,) in q(db, "SELECT DISTINCT variant FROM cells WHERE task = 'prompt-sensitivity' "
                                        "AND model = ?", [model])}
        assert set(expected) <= variants
        assert {"", "templates", "synonyms", "subset=1", "subset=16"} <= variants
        # a summary is the median, quartiles and range of its draws
        per_draw = [v for (v,) in q(db, "SELECT value FROM results_all WHERE task = 'prompt-sensitivity' AND model = ? "
                                        "AND variant LIKE 'template=%' AND metric = 'balanced_accuracy'", [model])]
        assert len(per_draw) == len(prompts.templates)
        (median, q1, q3), = q(db, "SELECT value, q1, q3 FROM results_all WHERE task = 'prompt-sensitivity' AND "
                                  "model = ? AND variant = 'templates' AND metric = 'balanced_accuracy'", [model])
        assert median == pytest.approx(np.median(per_draw))
        assert (q1, q3) == pytest.approx(tuple(np.percentile(per_draw, [25, 75])))
        low, high = (q(db, "SELECT value FROM results_all WHERE task = 'prompt-sensitivity' AND model = ? AND "
                           "variant = 'templates' AND metric = ?", [model, f"balanced_accuracy/{m}"])[0][0]
                     for m in ("min", "max"))
        assert (low, high) == (min(per_draw), max(per_draw))
    # the ranking of the two models across the same draws
    rankings = q(db, "SELECT family, model, n_models, n_draws, kendall_tau, first_rate FROM prompt_rankings "
                     "WHERE dataset = 'crc-val-he-7k'")
    overall = [r for r in rankings if r[0] == ""]
    assert {r[1] for r in overall} == {"quiltnet-b32", "plip"}
    assert all(r[2] == 2 and r[3] == len(expected) for r in overall)
    assert sum(r[5] for r in overall) == pytest.approx(1.0)
    assert all(np.isnan(r[4]) or -1 <= r[4] <= 1 for r in rankings)


def test_prompt_draws_are_seeded_and_the_same_for_every_model():
    prompts = PromptSet.load("pathboard/prompts/crc100k.json")
    classes = list(prompts.classes)[:3]
    a, b = draws(prompts, classes, seed=0), draws(prompts, classes, seed=0)
    assert a == b and a != draws(prompts, classes, seed=1)
    single = prompts.single_template or prompts.templates[0]
    for c in classes:
        canonical = prompts.canonical.get(c, prompts.classes[c][0])
        assert a["template=0"][c] == [prompts.templates[0].replace("CLASSNAME", canonical)]
        for name, chosen in a.items():
            if name.startswith(f"synonym={c}:"):  # one class renamed, in the single template
                assert chosen[c] == [single.replace("CLASSNAME", name.split(":", 1)[1])]
    pool = len(prompts.classes[classes[0]]) * len(prompts.templates)
    for n in (1, 2, 4, 8, 16):
        assert len(a[f"subset={n}/draw=0"][classes[0]]) == min(n, pool)
        assert len(set(a[f"subset={n}/draw=0"][classes[0]])) == min(n, pool)  # without replacement


@pytest.mark.slow
@pytest.mark.subprocess
def test_prompt_sensitivity_on_slides_reads_the_cached_tiles(tmp_path, tiny_hub):
    root = tmp_path / "data"
    write_tissuenet_slides(root)
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache")}
    common = ["--models", "quiltnet-b32", "--datasets", "tissuenet", "--data-root", root, "--db", db, "--workers", "0"]
    first = pathboard("run", *common, "--tasks", "zeroshot-wsi", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = pathboard("run", *common, "--tasks", "prompt-sensitivity", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert " 0 images and 0 tiles embedded" in second.stderr
    (protocol,), = q(db, "SELECT DISTINCT protocol->>'$.task.scoring' FROM cells WHERE task = 'prompt-sensitivity'")
    assert protocol == "MI-Zero top-50"
    (n,), = q(db, "SELECT count(DISTINCT variant) FROM cells WHERE task = 'prompt-sensitivity'")
    assert n > 20
