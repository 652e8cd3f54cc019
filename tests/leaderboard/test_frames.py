"""The leaderboard's frames: the paper table (models x datasets + Avg), best per column, ties, measured vs
published, provenance, per-class recall, comparisons and the analyses' tables."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from support.databases import PUBLISHED_COLUMNS, _comparisons, _table, make_vs_db, rows

from pathboard.core.science.perturb import PERTURBATIONS
from pathboard.core.store import queries
from pathboard.leaderboard import frames


def test_leaderboard_orients_comparisons_by_winner(tmp_path):
    import pandas as pd

    from pathboard.leaderboard.frames import comparison_rows

    df = pd.DataFrame([{"model_a": "a", "model_b": "b", "dataset": "d", "task": "zeroshot", "prompt_mode": "single",
                        "metric": "weighted_f1", "diff": -0.2, "ci_low": -0.3, "ci_high": -0.1, "n": 50,
                        "significant": True, "variant": ""}])
    rows = comparison_rows(df, "weighted_f1", "zeroshot", "single")
    assert rows.to_dict("records") == [{"dataset": "d", "better": "b", "than": "a",
                                        "difference": "+0.200 [+0.100, +0.300]", "significant": "yes", "n": 50}]
    assert comparison_rows(df, "weighted_f1", "zeroshot", "ensemble").empty


def test_pivot_rows_are_models_columns_are_datasets_plus_avg(long):
    table = frames.comparison_table(long, include_reported=False)
    assert list(table.index) == [("plip", "measured"), ("quiltnet-b32", "measured")]  # best Avg first
    assert list(table["value"].columns) == ["crc-val-he-7k", "Avg"]
    assert table["value"].at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.612)
    assert table["ci_low"].at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.581)
    assert table["ci_high"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.688)
    assert table["value"].at[("plip", "measured"), "Avg"] == pytest.approx(0.655)


def test_measured_and_reported_rows_share_dataset_columns_and_stay_distinct(long):
    table = frames.comparison_table(long)
    assert list(table["value"].columns) == ["crc-val-he-7k", "wsss4luad", "sicapv2", "Avg"]  # measured first
    sources = table.index.get_level_values("source")
    assert list(sources[:2]) == ["measured", "measured"] and set(sources[2:]) == {"reported"}
    assert list(table.index[:2]) == [("plip", "measured"), ("quiltnet-b32", "measured")]  # no Avg: by value
    models = table.index.get_level_values("model")
    assert "VirCLIP (reported)" in models and "plip" in models and "VirCLIP" not in models
    assert table["value"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.655)
    assert table["value"].at[("VirCLIP (reported)", "reported"), "crc-val-he-7k"] == pytest.approx(0.909)
    # plip has no wsss4luad/sicapv2 value, so no Avg; every reported row has all three
    assert math.isnan(table["value"].at[("plip", "measured"), "Avg"])
    assert table["value"].loc[table.index.get_level_values("source") == "reported", "Avg"].notna().all()


def test_avg_only_when_every_shown_dataset_has_a_value():
    df = rows(cells={("a", "d1"): 0.5, ("a", "d2"): 0.7, ("b", "d1"): 0.9})
    table = frames.comparison_table(df)
    assert table["value"].at[("a", "measured"), "Avg"] == pytest.approx(0.6)
    assert math.isnan(table["value"].at[("b", "measured"), "Avg"])
    only_d1 = frames.comparison_table(df, datasets=["d1"])
    assert list(only_d1["value"].columns) == ["d1", "Avg"]
    assert only_d1["value"].at[("b", "measured"), "Avg"] == pytest.approx(0.9)
    assert only_d1["value"].at[("a", "measured"), "Avg"] == pytest.approx(0.5)


def test_mode_toggle_selects_the_prompt_mode(long):
    ensemble = frames.comparison_table(long, mode="ensemble", include_reported=False)["value"]
    single = frames.comparison_table(long, mode="single", include_reported=False)["value"]
    assert ensemble.at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.612)
    assert single.at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.571)
    assert list(single.index) == [("quiltnet-b32", "measured"), ("plip", "measured")]  # re-ranked


def test_rows_without_prompt_mode_show_in_either_mode():
    df = rows(cells={("probe", "d1"): 0.8}).assign(prompt_mode=None, task="linear")
    for mode in frames.MODES:
        table = frames.comparison_table(df, task="linear", mode=mode)
        assert table["value"].at[("probe", "measured"), "d1"] == pytest.approx(0.8)


@pytest.mark.parametrize("change", [{"mode": "single"}, {"metric": "cohen_kappa"}, {"task": "linear"},
                                    {"include_reported": False}])
def test_reported_rows_only_where_metric_task_and_mode_match(long, change):
    assert "reported" in frames.comparison_table(long).index.get_level_values("source")
    table = frames.comparison_table(long, **change)
    assert "reported" not in table.index.get_level_values("source")


def test_best_per_column_is_the_max_for_kappa_too(long):
    table = frames.comparison_table(long, metric="cohen_kappa")
    best = frames.best_per_column(table)
    assert best.at[("plip", "measured"), "crc-val-he-7k"]
    assert not best.at[("quiltnet-b32", "measured"), "crc-val-he-7k"]
    df = rows(cells={("a", "d1"): -0.2, ("b", "d1"): -0.1, ("c", "d1"): -0.1, ("a", "d2"): 0.3})
    best = frames.best_per_column(frames.comparison_table(df))
    assert best.at[("b", "measured"), "d1"] and best.at[("c", "measured"), "d1"]  # ties all win
    assert not best.at[("a", "measured"), "d1"]
    assert best.at[("a", "measured"), "d2"] and not best.at[("b", "measured"), "d2"]  # blanks never win


def test_best_per_column_spans_reported_rows(long):
    best = frames.best_per_column(frames.comparison_table(long))
    assert best.at[("VirCLIP (reported)", "reported"), "crc-val-he-7k"]
    assert best.at[("ConText-L-14-336px (reported)", "reported"), "Avg"]
    assert best.sum().tolist() == [1, 1, 1, 1]


def test_format_cell():
    assert frames.format_cell(0.7623, 0.7012, 0.8149) == "0.762 [0.70, 0.81]"
    assert frames.format_cell(0.909, float("nan"), float("nan")) == "0.909"
    assert frames.format_cell(float("nan"), float("nan"), float("nan")) == "–"


def test_measured_beside_published_with_delta(vs_long):
    vs = frames.published_vs_measured(vs_long, "balanced_accuracy", "zeroshot-wsi", "ensemble")
    assert list(zip(vs["model"], vs["dataset"])) == [("conch", "tcga-brca"), ("conch", "tcga-nsclc"),
                                                     ("keep", "tcga-nsclc")]  # biomedclip: no published row
    row = vs.set_index(["model", "dataset"]).loc[("keep", "tcga-nsclc")]
    assert row["published_model"] == "KEEP" and row["published"] == pytest.approx(0.902)
    assert row["delta"] == pytest.approx(0.874 - 0.902) and row["in_ci"]
    conch = vs.set_index(["model", "dataset"]).loc[("conch", "tcga-brca")]
    assert conch["delta"] == pytest.approx(0.690 - 0.727) and not conch["in_ci"]
    assert set(vs["protocol"]) == {"differs"}  # measured under pathboard's default, published under KEEP's own
    assert all(d == ["measured under pathboard's default protocol; the paper's is protocol pack keep "
                     "(pathboard run --protocol keep)"] for d in vs["differences"])
    assert set(vs["pack"]) == {"keep"}
    assert "arXiv:2412.13126" in vs.at[0, "paper"] and vs.at[0, "split"]


def test_vs_published_names_prompt_mode_and_protocol_mismatches(vs_long):
    single = frames.published_vs_measured(vs_long, "balanced_accuracy", "zeroshot-wsi", "single")
    assert list(single["model"]) == ["conch"]
    assert single.at[0, "published_mode"] == "ensemble" and single.at[0, "published"] == pytest.approx(0.901)
    assert "published ensemble prompts, measured single" in single.at[0, "differences"]
    assert single.at[0, "protocol"] == "differs"
    patch = frames.published_vs_measured(vs_long)  # weighted F1: plip and quiltnet-b32 have no published row
    assert patch.empty and list(patch.columns) == frames.VS_COLUMNS


def test_vs_published_flags_a_non_default_measured_protocol(tmp_path):
    db = make_vs_db(tmp_path / "vs.duckdb")
    custom = queries.load_measured(db, "c0ffee00" * 8)
    long = pd.concat([custom, frames.load_reported()], ignore_index=True)
    vs = frames.published_vs_measured(long, "balanced_accuracy", "zeroshot-wsi", "ensemble")
    assert len(vs) == 1 and vs.at[0, "value"] == pytest.approx(0.930) and not vs.at[0, "default_protocol"]
    assert vs.at[0, "differences"][0].startswith("measured under a custom protocol")


def test_vs_published_is_same_only_under_the_papers_pack():
    measured = rows(cells={("conch", "crc-val-he-7k"): 0.75}).assign(default_protocol=True)
    vs = frames.published_vs_measured(pd.concat([measured, frames.load_reported()], ignore_index=True))
    assert vs.at[0, "published"] == pytest.approx(0.774) and vs.at[0, "protocol"] == "differs"
    assert vs.at[0, "differences"] == ["measured under pathboard's default protocol; the paper's is protocol pack "
                                       "vendor-table (pathboard run --protocol vendor-table)"]
    assert vs.at[0, "in_ci"] and vs.at[0, "delta"] == pytest.approx(0.75 - 0.774)  # inside [0.70, 0.80]
    packed = measured.assign(pack="vendor-table", default_protocol=False)
    vs = frames.published_vs_measured(pd.concat([packed, frames.load_reported()], ignore_index=True))
    assert vs.at[0, "protocol"] == "same" and vs.at[0, "differences"] == []
    other = frames.published_vs_measured(pd.concat([measured.assign(pack="quilt", default_protocol=False),
                                                    frames.load_reported()], ignore_index=True))
    assert other.at[0, "protocol"] == "differs" and "protocol pack quilt" in other.at[0, "differences"][0]
    unpacked = frames.load_reported().assign(pack="")  # a source no pack reproduces: never "same"
    vs = frames.published_vs_measured(pd.concat([measured, unpacked], ignore_index=True))
    assert vs.at[0, "protocol"] == "unknown" and "no protocol pack reproduces it" in vs.at[0, "differences"][0]


def test_published_rows_of_a_pack_and_of_its_own_paper_first():
    reported = frames.load_reported()
    quilt = frames.reported_for(reported, "pack:quilt")
    assert frames.default_metric(quilt, "zeroshot") == "accuracy"  # the paper's own metric opens the table
    assert frames.default_metric(reported, "zeroshot") == "weighted_f1"  # the first published table's
    assert frames.default_metric(reported.iloc[0:0], "zeroshot") == "weighted_f1"
    assert set(quilt["pack"]) == {"quilt"} and len(quilt) == 20
    assert frames.reported_for(reported, "default") is reported
    measured = rows(cells={("biomedclip", "lc25000-lung"): 0.7}).assign(metric="accuracy")
    for pack, published in (("biomedclip", 0.6523), ("quilt", 0.72)):  # two papers publish BiomedCLIP's number
        vs = frames.published_vs_measured(pd.concat([measured.assign(pack=pack), reported], ignore_index=True),
                                          "accuracy")
        assert vs.at[0, "published"] == pytest.approx(published) and vs.at[0, "protocol"] == "same"


def test_provenance_lists_measured_rows_shown(long):
    prov = frames.provenance(long, "weighted_f1", "zeroshot", "single")
    assert list(prov["model"]) == ["plip", "quiltnet-b32"]
    assert set(prov["weights_fingerprint"]) == {"abcdef012345"}
    assert {"run_id", "created_at", "prompt_hash", "manifest_hash", "device", "precision", "n"} <= set(prov)


def test_per_class_recall(long):
    assert frames.recall_datasets(long, "zeroshot", "ensemble") == ["crc-val-he-7k"]
    recall = frames.per_class_recall(long, "zeroshot", "ensemble", "crc-val-he-7k")
    assert recall.at["plip", "TUM"] == "0.755"
    assert all(len(v) == 5 for v in recall.to_numpy().ravel())  # one format: three decimals, 0 as "0.000"


def test_each_task_offers_its_own_metrics():
    df = pd.DataFrame({"task": ["zeroshot", "zeroshot", "zeroshot", "retrieval", "retrieval"],
                       "metric": ["weighted_f1", "recall/ADI", "cohen_kappa", "i2t_recall@1", "mean_recall"]})
    assert frames.task_metrics(df, "zeroshot") == ["weighted_f1", "cohen_kappa"]
    assert frames.task_metrics(df, "retrieval") == ["i2t_recall@1", "mean_recall"]


def test_tied_with_best_marks_only_non_significant_gaps_to_the_best():
    table = _table({("x", "a"): 0.9, ("y", "a"): 0.85, ("z", "a"): 0.5, ("x", "b"): 0.4, ("y", "b"): 0.7})
    comparisons = _comparisons(("x", "y", "a", False), ("z", "x", "a", True), ("y", "x", "b", False))
    tied = frames.tied_with_best(table, comparisons, "weighted_f1", "zeroshot", "ensemble")
    assert tied.at[("y", "measured"), "a"]  # 0.85 vs the best 0.9: not significant
    assert not tied.at[("z", "measured"), "a"]  # significantly worse
    assert not tied.at[("x", "measured"), "a"]  # the best itself is bold, not tied
    assert tied.at[("x", "measured"), "b"] and not tied.at[("y", "measured"), "b"]  # order of the pair is free
    assert not tied["Avg"].any()
    lower = frames.tied_with_best(table, comparisons, "weighted_f1", "zeroshot", "ensemble", lower=True)
    # the best is now z: x-z is significant, and y-z was never compared (no shared items): neither is tied
    assert not lower["a"].any()


def test_ties_count_only_comparisons_of_the_cells_shown():
    table = _table({("x", "a"): 0.9, ("y", "a"): 0.85})
    shown = pd.DataFrame({"cell_id": ["cx", "cy"]})
    of_shown = _comparisons(("x", "y", "a", False)).assign(cell_a="cx", cell_b="cy")
    other_protocol = _comparisons(("x", "y", "a", False)).assign(cell_a="cx-custom-prompts", cell_b="cy-custom-prompts")
    assert frames.tied_with_best(table, frames.between(of_shown, shown), "weighted_f1", "zeroshot", "ensemble"
                                 ).at[("y", "measured"), "a"]
    kept = frames.between(other_protocol, shown)  # the same models, but other cells: not the numbers on screen
    assert kept.empty
    assert not frames.tied_with_best(table, kept, "weighted_f1", "zeroshot", "ensemble").any().any()
    assert len(frames.between(_comparisons(("x", "y", "a", False)), shown)) == 1  # no cell ids stored: kept


@pytest.mark.slow
def test_the_tables_of_the_analyses(robust_run, crc_runs):
    from pathboard.core.store import queries
    from pathboard.leaderboard import frames

    db = crc_runs[0]
    sensitivity = frames.sensitivity_table(queries.load_variants(db, "prompt-sensitivity"), queries.load_rankings(db))
    assert set(sensitivity["model"]) == {"quiltnet-b32", "plip"}
    assert {"median [IQR]", "min–max", "templates (median)", "subset=16 (median)", "Kendall τ", "ranked first"} \
        <= set(sensitivity.columns)
    assert sum(float(v.rstrip("%")) for v in sensitivity["ranked first"]) == pytest.approx(100, abs=1)
    db = robust_run[0]
    robust = frames.robustness_table(queries.load_variants(db, "robustness"), "crc-val-he-7k", "single")
    assert list(robust.index) == ["quiltnet-b32"] and set(PERTURBATIONS) <= set(robust.columns)
    calibration = frames.calibration_table(queries.load_measured(db), "zeroshot", "single")
    assert list(calibration.columns) == ["ece", "brier", "nll", "auroc"]
    costs = frames.cost_table(queries.load_costs(db))
    assert costs["model"].tolist() == ["quiltnet-b32"] and float(costs["images/s"].iloc[0]) > 0
    assert frames.lower_is_better("ece") and frames.lower_is_better("balanced_accuracy_drop")
    assert not frames.lower_is_better("auroc") and not frames.lower_is_better("cosine")


def test_comparison_table_shows_p_values_when_stored():
    import pandas as pd

    from pathboard.leaderboard.frames import comparison_rows

    df = pd.DataFrame([{"model_a": "a", "model_b": "b", "dataset": "d", "task": "zeroshot", "prompt_mode": "single",
                        "metric": "accuracy", "diff": -0.2, "ci_low": -0.3, "ci_high": -0.1, "n": 50,
                        "significant": True, "variant": "", "p_value": 0.0009990, "p_holm": 0.012,
                        "n_groups": 12}])
    rows = comparison_rows(df, "accuracy", "zeroshot", "single")
    assert rows.to_dict("records") == [{"dataset": "d", "better": "b", "than": "a",
                                        "difference": "+0.200 [+0.100, +0.300]", "p": "<0.001",
                                        "p (Holm)": "0.012", "significant": "yes", "n": 50,
                                        "resampled": "12 groups"}]


def test_run_tables_use_human_units_and_never_show_a_raw_none():
    runs = pd.DataFrame({"run_id": ["r2", "r1"], "started_at": [pd.Timestamp("2026-12-06 10:00:00"), pd.NaT],
                         "status": ["finished", None], "seconds": [3725.0, 42.04], "cells": [546, 0],
                         "skipped": [3, 0], "failed_files": [1, 0], "images": [1200.0, float("nan")],
                         "tiles": [0.0, None], "device": ["cpu", None], "precision": ["fp32", "fp32"],
                         "host": ["h", "h"], "command": ["pathboard run --models all --datasets cervix", None]})
    shown = frames.runs_table(runs)
    assert list(shown["duration"]) == ["1 h 02 min", "42.0 s"] and list(shown["images embedded"]) == ["1,200", "–"]
    assert "image_forwards" not in shown.columns  # batches are not shown as if they were images
    assert shown["command"].iloc[0] == "pathboard run --models all --datasets cervix"
    costs = pd.DataFrame({"model": ["plip", "plip"], "dataset": ["a", "b"], "images": [600, 0], "tiles": [0, 0],
                          "images_per_s": [14.53, None], "tiles_per_s": [None, None],
                          "peak_memory_bytes": [1392746496, None], "wall_seconds": [41.6, 0.2]})
    table = frames.run_costs(costs)
    assert list(table["peak memory"]) == ["1.30 GiB", "–"] and list(table["images/s"]) == ["14.5", "–"]
    assert list(table["wall"]) == ["41.6 s", "0.2 s"]
    assert not table.isin(["None", "nan"]).any().any()
    prov = frames.provenance_table({"pathboard_version": "0.4", "batch_size": 64, "data_root": None})
    assert list(prov[""]) == ["0.4", "64", "–"] and prov[""].map(type).eq(str).all()  # one type: Arrow takes it


def test_the_paper_tables_columns_are_the_measured_datasets(long):
    rows = frames.select(long, "weighted_f1", "zeroshot", "ensemble")
    assert frames.default_columns(rows) == ["crc-val-he-7k"]  # published-only columns would empty every Avg
    assert frames.default_columns(rows, published_only=True) == ["crc-val-he-7k", "wsss4luad", "sicapv2"]
    published = rows[rows["source"] == "reported"]
    assert frames.default_columns(published) == PUBLISHED_COLUMNS  # nothing measured: the published columns


def test_short_ids_sizes_and_notes(long):
    assert frames.short_id("folder:/data/private/cohort-2024/lung") == "folder:…/lung"
    assert frames.short_id("slides-csv:/data/x/slides.csv") == "slides-csv:…/slides.csv"
    assert frames.short_id("crc-val-he-7k") == "crc-val-he-7k"
    assert frames.short_id("a" * 40) == "a" * 23 + "…" and len(frames.short_id("a" * 40)) == frames.SHORT_ID
    rows = frames.select(long, "weighted_f1", "zeroshot", "ensemble").assign(n_items=32)
    sizes = frames.column_sizes(rows, {"datasets": {"crc-val-he-7k": {"expected_files": 7180}}})
    assert sizes == {"crc-val-he-7k": {"n": 32, "found": 32, "full": 7180}}  # measured columns only
    assert frames.partial(sizes["crc-val-he-7k"]) and frames.size_label(sizes["crc-val-he-7k"]) == "n = 32 of 7,180"
    assert frames.size_label({"n": 96, "found": 96, "full": None}) == "n = 96"
    assert frames.size_label({"n": 7180, "found": 7180, "full": 7180}) == "n = 7,180"  # the full set: no "of"
    notes = frames.table_notes(rows, ["crc-val-he-7k", "wsss4luad"], sizes)
    assert notes[0] == "Avg: the mean over the 2 dataset(s) shown (crc-val-he-7k, wsss4luad), for rows with a " \
                       "value in every one."
    assert notes[1] == "Measured on a sample of the full set, beside published full-set numbers: crc-val-he-7k " \
                       "(n = 32 of 7,180)."


def test_a_named_headline_says_what_it_is_and_what_its_interval_is_over():
    assert frames.headline_text(None) == "" and frames.headline_text(float("nan")) == ""
    text = frames.headline_text("prototype at k = 16 per class, median of 5 draws", "cluster by group (12 groups)")
    assert text == ("prototype at k = 16 per class, median of 5 draws; 95% CI: bootstrap of that median over "
                    "12 groups (patients, slides or near-duplicate clusters)")
    assert frames.headline_text("x", "items").endswith("over test items")
    rows = pd.DataFrame({"model": ["a", "b"], "dataset": ["folder:/p/lung"] * 2, "task": ["fewshot"] * 2,
                         "source": ["measured"] * 2, "headline": ["linear-probe at k = 8 per class"] * 2,
                         "bootstrap": ["items"] * 2})
    notes = frames.table_notes(rows, ["folder:/p/lung"], {})
    assert notes[-1] == ("fewshot headline on folder:…/lung: linear-probe at k = 8 per class; 95% CI: bootstrap "
                         "of that median over test items.")
    assert frames.uses_prompts(pd.DataFrame({"task": ["fewshot"], "prompt_mode": [None]}), "fewshot") is False


def test_poolings_say_how_each_model_scores_a_slide():
    long = pd.DataFrame([
        {"model": "titan", "task": "zeroshot-wsi", "pooling": "slide-encoder", "source": "measured"},
        {"model": "plip", "task": "zeroshot-wsi", "pooling": None, "source": "measured"},
        {"model": "keep", "task": "zeroshot-wsi", "pooling": "screened-vote", "source": "measured"},
        {"model": "TITAN (reported)", "task": "zeroshot-wsi", "pooling": None, "source": "reported"}])
    catalog = {"models": {"titan": {"patch_encoder": "conch-v1.5"}}}
    assert frames.poolings(long, "zeroshot-wsi", catalog) == {
        "titan": "slide encoder over conch-v1.5", "plip": "MI-Zero top-50", "keep": "KEEP screened vote"}
    assert frames.poolings(long.assign(task="slide-retrieval"), "slide-retrieval", catalog)["plip"] == "mean of tiles"
    assert frames.poolings(long.assign(task="zeroshot", pooling=None), "zeroshot") == {}  # not a slide task
    # no cell records a pooling of its own (patch models only, or a database from before): the table stays as it was
    assert frames.poolings(long.assign(pooling=None), "zeroshot-wsi") == {}


def test_the_paper_table_gets_a_pooling_column_only_when_told():
    from pathboard.leaderboard import markup

    table = _table({("titan", "a"): 0.7, ("plip", "a"): 0.4})
    plain = markup.to_html(table)
    assert "<th>pooling</th>" not in plain and 'class="pooling"' not in plain
    html = markup.to_html(table, pooling={"titan": "slide encoder over conch-v1.5", "plip": "MI-Zero top-50"})
    assert "<th>model</th><th>source</th><th>pooling</th>" in html
    assert '<td class="model">titan</td><td>measured</td><td class="pooling">slide encoder over conch-v1.5</td>' in html
