"""Issue 11 end to end on the real ``../shared/data`` samples and slide fixtures: prompt sensitivity
with no image forward, robustness under every perturbation, calibration metrics at the model's own
logit scale, and the cost of each model stored with the run."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest
from helpers import pathboard
from test_browser import leaderboard_page, screenshot, serve
from test_cervix_benchmark import write_tissuenet_slides

from pathboard.core.engine import plugins
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.prompts import PromptSet
from pathboard.core.science.perturb import PERTURBATIONS
from pathboard.plugins.tasks.prompt_sensitivity import draws


def q(db, sql, params=()):
    return duckdb.connect(str(db), read_only=True).execute(sql, list(params)).fetchall()


@pytest.fixture(scope="module")
def crc_runs(shared_data, tiny_hub, tmp_path_factory):
    """zeroshot on CRC-VAL-HE-7K with two models, then prompt-sensitivity on the now cached images."""
    db = tmp_path_factory.mktemp("beyond") / "pb.duckdb"
    env = {"PATHBOARD_CACHE": str(tmp_path_factory.mktemp("beyond-cache"))}
    common = ["--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
              "--db", db, "--workers", "0"]
    first = pathboard("run", *common, "--tasks", "zeroshot", env=env)
    second = pathboard("run", *common, "--tasks", "prompt-sensitivity", env=env)
    return db, first, second


def test_prompt_sensitivity_stores_its_distribution_with_no_image_forward(crc_runs):
    db, first, second = crc_runs
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    assert " 0 image batch(es) embedded" in second.stderr
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


def test_prompt_sensitivity_on_slides_reads_the_cached_tiles(tmp_path, tiny_hub):
    root = tmp_path / "data"
    write_tissuenet_slides(root)
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache")}
    common = ["--models", "quiltnet-b32", "--datasets", "tissuenet", "--data-root", root, "--db", db, "--workers", "0"]
    first = pathboard("run", *common, "--tasks", "zeroshot-wsi", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = pathboard("run", *common, "--tasks", "prompt-sensitivity", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert " 0 image batch(es) embedded" in second.stderr
    (protocol,), = q(db, "SELECT DISTINCT protocol->>'$.task.scoring' FROM cells WHERE task = 'prompt-sensitivity'")
    assert protocol == "MI-Zero top-50"
    (n,), = q(db, "SELECT count(DISTINCT variant) FROM cells WHERE task = 'prompt-sensitivity'")
    assert n > 20


@pytest.fixture(scope="module")
def robust_run(shared_data, tiny_hub, tmp_path_factory):
    db = tmp_path_factory.mktemp("robust") / "pb.duckdb"
    env = {"PATHBOARD_CACHE": str(tmp_path_factory.mktemp("robust-cache"))}
    args = ["run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks",
            "robustness,zeroshot,prompt-sensitivity",
            "--prompt-modes", "single", "--data-root", shared_data, "--db", db, "--workers", "1"]
    return db, pathboard(*args, env=env), pathboard(*args, env=env)


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
    assert " 0 image batch(es) embedded" in second.stderr


def test_zero_shot_reports_calibration_and_auroc(robust_run):
    db, first, _ = robust_run
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = dict(q(db, "SELECT metric, value FROM results_all WHERE task = 'zeroshot' AND variant = ''"))
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["brier"] <= 2 and metrics["nll"] > 0
    assert 0 <= metrics["auroc"] <= 1
    assert {f"auroc/{c}" for c in ("ADI", "TUM")} <= set(metrics)


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


def test_the_tables_of_the_analyses(robust_run, crc_runs):
    from pathboard.leaderboard import tables

    db = crc_runs[0]
    sensitivity = tables.sensitivity_table(tables.load_variants(db, "prompt-sensitivity"), tables.load_rankings(db))
    assert set(sensitivity["model"]) == {"quiltnet-b32", "plip"}
    assert {"median [IQR]", "min–max", "templates (median)", "subset=16 (median)", "Kendall τ", "ranked first"} \
        <= set(sensitivity.columns)
    assert sum(float(v.rstrip("%")) for v in sensitivity["ranked first"]) == pytest.approx(100, abs=1)
    db = robust_run[0]
    robust = tables.robustness_table(tables.load_variants(db, "robustness"), "crc-val-he-7k", "single")
    assert list(robust.index) == ["quiltnet-b32"] and set(PERTURBATIONS) <= set(robust.columns)
    calibration = tables.calibration_table(tables.load_measured(db), "zeroshot", "single")
    assert list(calibration.columns) == ["ece", "brier", "nll", "auroc"]
    costs = tables.cost_table(tables.load_costs(db))
    assert costs["model"].tolist() == ["quiltnet-b32"] and float(costs["images/s"].iloc[0]) > 0
    assert tables.lower_is_better("ece") and tables.lower_is_better("balanced_accuracy_drop")
    assert not tables.lower_is_better("auroc") and not tables.lower_is_better("cosine")


@pytest.mark.browser
def test_the_analyses_and_models_pages_in_chromium(robust_run):
    db = robust_run[0]
    pages = {}
    for url in serve(db):
        with leaderboard_page(url, width=1500, height=2200) as page:
            page.get_by_text("Analyses", exact=True).first.click()
            page.wait_for_selector("text=Kendall τ", timeout=60_000)
            page.wait_for_timeout(1500)
            screenshot(page, "PATHBOARD_SCREENSHOT_PROMPTS")
            pages["Analyses"] = page.content()
            for section, marker in (("Robustness", "drop in balanced accuracy"),
                                    ("Calibration and AUROC", "Brier score")):  # one section at a time
                page.get_by_role("tab", name=section, exact=True).click()
                page.wait_for_selector(f"text={marker}", timeout=60_000)
                page.wait_for_timeout(1500)
                screenshot(page, f"PATHBOARD_SCREENSHOT_{section.split()[0].upper()}")
                pages["Analyses"] += page.content()
            page.get_by_text("Models", exact=True).first.click()
            page.wait_for_selector("text=What each model costs to run", timeout=60_000)
            page.wait_for_timeout(1500)
            screenshot(page, "PATHBOARD_SCREENSHOT_MODELS")
            pages["Models"] = page.content()
    assert not any("Traceback" in html for html in pages.values())
    analyses = pages["Analyses"]
    for text in ("Prompt sensitivity", "Robustness to image perturbations", "drop in balanced accuracy",
                 "Calibration and AUROC"):
        assert text in analyses, text
    assert "No robustness results yet" not in analyses and "No calibration metrics" not in analyses
    assert "No prompt-sensitivity results yet" not in analyses
    for text in ("hed-strong", "jpeg-30", "downscale-0.5", "ece", "brier", "auroc", "median [IQR]", "Kendall τ"):
        assert text in analyses, text
    assert "No measured embedding yet" not in pages["Models"]
    for text in ("images/s", "peak memory (GiB)", "process peak RSS (sampled)", "quiltnet-b32"):
        assert text in pages["Models"], text


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
