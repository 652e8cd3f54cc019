"""The leaderboard's charts (pathboard.leaderboard.charts): each chart's Vega-Lite spec plots exactly the
numbers the loaders read from a results database written through Store, under the tasks' variant names."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pathboard.core.science.metrics import Metric
from pathboard.core.store import queries
from pathboard.core.store.database import Store
from pathboard.leaderboard import charts, frames

NAN = float("nan")


DATASETS = ["wsss4luad", "sicapv2", "crc-val-he-7k"]


# (model, dataset) -> zero-shot weighted F1 (value, lo, hi), ensemble prompts
ZEROSHOT = {("conch", "wsss4luad"): (0.70, 0.65, 0.75), ("conch", "sicapv2"): (0.40, 0.35, 0.46),
            ("conch", "crc-val-he-7k"): (0.77, 0.74, 0.80), ("plip", "wsss4luad"): (0.50, 0.44, 0.55),
            ("plip", "sicapv2"): (0.45, 0.40, 0.50), ("plip", "crc-val-he-7k"): (0.60, 0.57, 0.64),
            ("keep", "wsss4luad"): (0.62, 0.58, 0.66)}  # keep lacks two datasets


# (model, method, k) -> (median, q1, q3) of few-shot balanced accuracy over draws on crc-val-he-7k
FEWSHOT = {(m, method, k): (base + 0.05 * i + (0.02 if method == "linear-probe" else 0.0),
                            base + 0.05 * i - 0.03, base + 0.05 * i + 0.04)
           for m, base in (("conch", 0.6), ("plip", 0.4)) for method in ("prototype", "linear-probe")
           for i, k in enumerate((1, 2, 4, 8, 16))}


# (model, K) -> balanced accuracy (value, lo, hi) of zero-shot WSI on tcga-nsclc, ensemble
TOPK = {(m, k): (base + 0.01 * i, base + 0.01 * i - 0.05, base + 0.01 * i + 0.05)
        for m, base in (("conch", 0.85), ("keep", 0.80)) for i, k in enumerate((1, 5, 10, 50, 100))}


# (model, draw variant) -> balanced accuracy of one prompt draw on crc-val-he-7k
DRAWS = {("conch", "template=0"): 0.71, ("conch", "template=1"): 0.66, ("conch", "template=2"): 0.69,
         ("conch", "synonym=TUM:tumour"): 0.64, ("conch", "subset=2/draw=0"): 0.72,
         ("conch", "subset=2/draw=1"): 0.70,
         ("plip", "template=0"): 0.51, ("plip", "template=1"): 0.42, ("plip", "template=2"): 0.48,
         ("plip", "synonym=TUM:tumour"): 0.39, ("plip", "subset=2/draw=0"): 0.55, ("plip", "subset=2/draw=1"): 0.50}


# (model, perturbation) -> balanced_accuracy_drop (value, lo, hi), single prompts
DROPS = {("conch", "jpeg-30"): (0.02, 0.00, 0.04), ("conch", "blur-2"): (0.10, 0.06, 0.14),
         ("plip", "jpeg-30"): (0.05, 0.02, 0.08), ("plip", "blur-2"): (0.20, 0.15, 0.25)}


# paired comparisons (a, b, diff, lo, hi, p, p_holm, significant) on crc-val-he-7k, zeroshot, ensemble
PAIRS = [("conch", "keep", 0.030, -0.010, 0.070, 0.140, 0.280, False),
         ("conch", "plip", 0.170, 0.120, 0.220, 0.001, 0.003, True),
         ("keep", "plip", 0.140, 0.090, 0.190, 0.001, 0.003, True)]


def cell(model, dataset, task, mode, variant=""):
    return {"model": model, "dataset": dataset, "task": task, "prompt_mode": mode, "variant": variant,
            "n_items": 100, "n_failed": 0, "device": "cpu", "precision": "fp32"}


def point(name, value, n=100):
    return Metric(name, value, NAN, NAN, n)


def make_db(path: Path) -> Path:
    """Every task the charts draw, stored as the plugins store it (variant names and all)."""
    store = Store(path)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    entries = []
    for (model, dataset), (v, lo, hi) in ZEROSHOT.items():
        entries.append((cell(model, dataset, "zeroshot", "ensemble"), [Metric("weighted_f1", v, lo, hi, 100)], (),
                        None))
        entries.append((cell(model, dataset, "zeroshot", "single"), [Metric("weighted_f1", v - 0.1, lo, hi, 100)],
                        (), None))
    for (model, method, k), (median, q1, q3) in FEWSHOT.items():
        entries.append((cell(model, "crc-val-he-7k", "fewshot", None, f"{method}/k={k}/median"),
                        [Metric("balanced_accuracy", median, NAN, NAN, 100, q1, q3)], (), None))
        for d, value in enumerate((q1, median, q3)):
            entries.append((cell(model, "crc-val-he-7k", "fewshot", None, f"{method}/k={k}/draw={d}"),
                            [point("balanced_accuracy", value)], (), None))
        entries.append((cell(model, "crc-val-he-7k", "fewshot", None, f"{method}/k=all"),
                        [Metric("balanced_accuracy", 0.95, 0.9, 0.97, 100)], (), None))
    for model in ("conch", "plip"):
        entries.append((cell(model, "crc-val-he-7k", "fewshot", None),
                        [Metric("balanced_accuracy", 0.9, 0.85, 0.93, 100, 0.88, 0.91)], (), None))
        entries.append((cell(model, "crc-val-he-7k", "fewshot", None, "train=official-split"),
                        [point("n_train", 1000.0)], (), None))
    for (model, k), (v, lo, hi) in TOPK.items():
        entries.append((cell(model, "tcga-nsclc", "zeroshot-wsi", "ensemble", f"topk={k}"),
                        [Metric("balanced_accuracy", v, lo, hi, 150)], (), None))
        entries.append((cell(model, "tcga-nsclc", "zeroshot-wsi", "single", f"topk={k}"),
                        [Metric("balanced_accuracy", v - 0.2, lo - 0.2, hi - 0.2, 150)], (), None))
    for model in ("conch", "keep"):
        v, lo, hi = TOPK[(model, 50)]
        entries.append((cell(model, "tcga-nsclc", "zeroshot-wsi", "ensemble"),
                        [Metric("balanced_accuracy", v, lo, hi, 150)], (), None))
    for (model, variant), value in DRAWS.items():
        entries.append((cell(model, "crc-val-he-7k", "prompt-sensitivity", None, variant),
                        [point("balanced_accuracy", value), point("accuracy", value + 0.01)], (), None))
    for model in ("conch", "plip"):  # the summaries, which the box plot must not draw
        for summary in ("", "templates", "synonyms", "subset=2"):
            entries.append((cell(model, "crc-val-he-7k", "prompt-sensitivity", None, summary),
                            [Metric("balanced_accuracy", 0.99, NAN, NAN, 100, 0.98, 0.995),
                             point("balanced_accuracy/min", 0.0), point("draws", 6.0)], (), None))
    for (model, name), (v, lo, hi) in DROPS.items():
        for mode, shift in (("single", 0.0), ("ensemble", 0.5)):
            entries.append((cell(model, "crc-val-he-7k", "robustness", mode, f"perturbation={name}"),
                            [Metric("balanced_accuracy_drop", v + shift, lo + shift, hi + shift, 100),
                             Metric("flip_rate", 0.3, 0.2, 0.4, 100)], (), None))
    for model in ("conch", "plip"):
        entries.append((cell(model, "crc-val-he-7k", "robustness", "single"),
                        [Metric("balanced_accuracy", 0.8, 0.75, 0.85, 100),
                         Metric("balanced_accuracy_drop", 0.9, 0.8, 1.0, 100)], (), None))
    store.add_cells(run, entries)
    rows = [["ca", "cb", a, b, "crc-val-he-7k", "zeroshot", "", "ensemble", "balanced_accuracy", diff, lo, hi, 100,
             sig, p, holm, None, "default"] for a, b, diff, lo, hi, p, holm, sig in PAIRS]
    rows.append(["ca", "cb", "conch", "plip", "crc-val-he-7k", "zeroshot", "", "single", "balanced_accuracy", 0.5,
                 0.4, 0.6, 100, True, 0.001, 0.002, None, "default"])
    rows.append(["ca", "cb", "conch", "plip", "sicapv2", "zeroshot", "", "ensemble", "balanced_accuracy", -0.2,
                 -0.3, -0.1, 100, True, 0.001, 0.002, None, "default"])
    store.replace_comparisons(rows)
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return make_db(tmp_path_factory.mktemp("charts") / "results.duckdb")


@pytest.fixture(scope="module")
def measured(db) -> pd.DataFrame:
    return queries.load_measured(db)


def variants(db, task):
    return queries.load_variants(db, task)


def layers(spec: dict) -> list[dict]:
    """The leaf views of a (faceted, layered) spec."""
    if "layer" in spec:
        return [leaf for child in spec["layer"] for leaf in layers(child)]
    if "spec" in spec:
        return layers(spec["spec"])
    return [spec]


def mark(view: dict) -> str:
    return view["mark"]["type"] if isinstance(view["mark"], dict) else view["mark"]


def view_of(spec: dict, kind: str, index: int = 0) -> dict:
    return [v for v in layers(spec) if mark(v) == kind][index]


def data_of(spec: dict, view: dict) -> list[dict]:
    """The rows a view plots: its own named dataset, else the (facet's or layer's) top-level one."""
    name = (view.get("data") or spec["data"])["name"]
    return spec["datasets"][name]


def spec_of(chart) -> dict:
    assert chart is not None
    return chart.to_dict()  # validates against the Vega-Lite schema


def same(plotted: dict, expected: dict) -> bool:
    """The same keys, and each key's numbers equal to float precision."""
    assert set(plotted) == set(expected), set(plotted) ^ set(expected)
    for key, value in expected.items():
        assert plotted[key] == pytest.approx(value), key
    return True


def colours(view: dict) -> dict[str, str]:
    scale = view["encoding"]["color"]["scale"]
    return dict(zip(scale["domain"], scale["range"]))


def test_bars_are_the_measured_values_with_ci_whiskers(measured):
    chart = charts.bars(measured, "zeroshot", "weighted_f1", "ensemble", DATASETS)
    spec = spec_of(chart)
    assert spec["facet"]["field"] == "dataset" and spec["facet"]["sort"] == DATASETS
    bar, whisker = view_of(spec, "bar"), view_of(spec, "errorbar")
    assert (bar["encoding"]["x"]["field"], bar["encoding"]["y"]["field"]) == ("model", "value")
    assert (whisker["encoding"]["y"]["field"], whisker["encoding"]["y2"]["field"]) == ("ci_low", "ci_high")
    plotted = {(r["model"], r["dataset"]): (r["value"], r["ci_low"], r["ci_high"]) for r in data_of(spec, bar)}
    assert same(plotted, ZEROSHOT)  # ensemble values, not the single-prompt ones
    # best mean first; every model a palette colour when nothing is highlighted
    assert bar["encoding"]["x"]["sort"] == ["conch", "keep", "plip"]
    assert set(colours(bar).values()).isdisjoint({charts.HIGHLIGHT, charts.MUTED})


def test_bars_highlight_one_model_and_respect_mode_and_datasets(measured):
    spec = spec_of(charts.bars(measured, "zeroshot", "weighted_f1", "single", ["sicapv2"], highlight="plip"))
    bar = view_of(spec, "bar")
    assert colours(bar) == {"plip": charts.HIGHLIGHT, "conch": charts.MUTED}
    assert {(r["model"], r["dataset"]): r["value"] for r in data_of(spec, bar)} == pytest.approx(
        {("conch", "sicapv2"): 0.30, ("plip", "sicapv2"): 0.35})
    assert charts.bars(measured, "zeroshot", "weighted_f1", "ensemble", ["no-such-set"]) is None
    assert charts.bars(measured, "zeroshot", "quadratic_kappa", "ensemble", DATASETS) is None
    assert charts.bars(queries.empty_measured(), "zeroshot", "weighted_f1", "ensemble", DATASETS) is None


def test_bars_can_show_reported_rows_without_whiskers(measured):
    long = pd.concat([measured, frames.load_reported()], ignore_index=True)
    spec = spec_of(charts.bars(long, "zeroshot", "weighted_f1", "ensemble", DATASETS, include_reported=True))
    rows = data_of(spec, view_of(spec, "bar"))
    reported = [r for r in rows if r["model"].endswith(frames.REPORTED_SUFFIX)]
    assert reported and all(r["ci_low"] is None and r["ci_high"] is None for r in reported)
    assert "isValid(datum.ci_low)" in view_of(spec, "errorbar")["transform"][0]["filter"]


def test_radar_closes_one_polygon_per_complete_model(measured):
    spec = spec_of(charts.radar(measured, "zeroshot", "weighted_f1", "ensemble", DATASETS, highlight="conch"))
    assert spec["width"] == spec["height"]  # square
    line = [v for v in layers(spec) if mark(v) == "line" and v["encoding"].get("color", {}).get("field") == "model"]
    assert len(line) == 1
    points = data_of(spec, line[0])
    assert {p["model"] for p in points} == {"conch", "plip"}  # keep has one dataset of three: left out
    for model in ("conch", "plip"):
        path = sorted((p for p in points if p["model"] == model), key=lambda p: p["order"])
        assert [p["dataset"] for p in path] == [*DATASETS, DATASETS[0]]
        assert (path[0]["x"], path[0]["y"]) == pytest.approx((path[-1]["x"], path[-1]["y"]))
        for p in path:  # radius = value on the [0, 1] scale (every value lies in it)
            assert math.hypot(p["x"], p["y"]) == pytest.approx(ZEROSHOT[(model, p["dataset"])][0])
    first = next(p for p in points if p["model"] == "conch" and p["order"] == 0)
    assert first["x"] == pytest.approx(0) and first["y"] > 0  # the first spoke points up
    assert colours(line[0]) == {"conch": charts.HIGHLIGHT, "plip": charts.MUTED}
    labels = next(v for v in layers(spec) if mark(v) == "text" and v["encoding"]["text"]["field"] == "dataset")
    assert [r["dataset"] for r in data_of(spec, labels)] == DATASETS
    spokes = data_of(spec, view_of(spec, "rule"))
    assert [math.hypot(s["x2"], s["y2"]) for s in spokes] == pytest.approx([1, 1, 1])


def test_radar_leaves_out_a_model_without_a_value_on_every_dataset(measured):
    frame = measured.copy()
    frame.loc[(frame["model"] == "plip") & (frame["dataset"] == "sicapv2"), "value"] = NAN
    spec = spec_of(charts.radar(frame, "zeroshot", "weighted_f1", "ensemble", DATASETS))
    line = [v for v in layers(spec) if mark(v) == "line" and v["encoding"].get("color", {}).get("field") == "model"]
    assert {p["model"] for p in data_of(spec, line[0])} == {"conch"}


def test_radar_needs_three_datasets(measured):
    assert charts.radar(measured, "zeroshot", "weighted_f1", "ensemble", DATASETS[:2]) is None
    assert charts.radar(measured, "zeroshot", "weighted_f1", "ensemble", ["wsss4luad", "x", "y"]) is None


def test_fewshot_curves_plot_medians_over_k_with_iqr_bands(db):
    spec = spec_of(charts.fewshot_curves(variants(db, "fewshot"), "crc-val-he-7k", "balanced_accuracy"))
    line, band = view_of(spec, "line"), view_of(spec, "area")
    assert line["encoding"]["x"]["field"] == "k" and line["encoding"]["x"]["scale"] == {"type": "log", "base": 2}
    assert line["encoding"]["strokeDash"]["field"] == "method" and line["encoding"]["color"]["field"] == "model"
    dashes = line["encoding"]["strokeDash"]["scale"]  # as the caption says: prototype solid, linear probe dashed
    assert dict(zip(dashes["domain"], map(tuple, dashes["range"]))) == {"prototype": (1, 0), "linear-probe": (7, 4)}
    assert (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == ("q1", "q3")
    rows = data_of(spec, line)
    assert sorted({r["k"] for r in rows}) == [1, 2, 4, 8, 16]  # k=all and the draws are not points
    assert same({(r["model"], r["method"], r["k"]): (r["value"], r["q1"], r["q3"]) for r in rows}, FEWSHOT)
    assert len(data_of(spec, band)) == len(FEWSHOT)
    assert charts.fewshot_curves(variants(db, "fewshot"), "crc-val-he-7k", "weighted_f1") is None
    assert charts.fewshot_curves(variants(db, "fewshot"), "sicapv2", "balanced_accuracy") is None


def test_topk_curve_plots_every_k_of_the_mode_with_ci(db):
    spec = spec_of(charts.topk_curve(variants(db, "zeroshot-wsi"), "tcga-nsclc", "balanced_accuracy", "ensemble",
                                     highlight="keep"))
    line, band = view_of(spec, "line"), view_of(spec, "area")
    assert line["encoding"]["x"]["scale"]["type"] == "log"
    plotted = {(r["model"], r["k"]): (r["value"], r["ci_low"], r["ci_high"]) for r in data_of(spec, line)}
    assert same(plotted, TOPK)  # the headline variant "" is not a point of the curve
    assert (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == ("ci_low", "ci_high")
    assert colours(line)["keep"] == charts.HIGHLIGHT
    assert charts.topk_curve(variants(db, "zeroshot-wsi"), "tcga-brca", "balanced_accuracy", "ensemble") is None


def test_sensitivity_boxes_have_one_row_per_prompt_draw(db):
    rows = variants(db, "prompt-sensitivity")
    spec = spec_of(charts.sensitivity_boxes(rows, "crc-val-he-7k"))
    box = view_of(spec, "boxplot")
    assert box["mark"]["extent"] == "min-max"
    assert (box["encoding"]["x"]["field"], box["encoding"]["y"]["field"]) == ("model", "value")
    plotted = data_of(spec, box)
    assert len(plotted) == len(DRAWS)  # the summaries ("", templates, synonyms, subset=2) are not draws
    assert {(r["model"], r["variant"]): r["value"] for r in plotted} == pytest.approx(DRAWS)
    spec = spec_of(charts.sensitivity_boxes(rows, "crc-val-he-7k", family="templates"))
    plotted = data_of(spec, view_of(spec, "boxplot"))
    assert sorted((r["model"], r["variant"]) for r in plotted) == sorted(k for k in DRAWS if "template=" in k[1])
    assert charts.sensitivity_boxes(rows, "crc-val-he-7k", family="subset=16") is None
    assert charts.sensitivity_boxes(rows, "crc-val-he-7k", metric="weighted_f1") is None


def test_robustness_drops_per_perturbation_with_ci(db):
    spec = spec_of(charts.robustness_drops(variants(db, "robustness"), "crc-val-he-7k", "single"))
    assert spec["facet"]["field"] == "perturbation"
    bar, whisker = view_of(spec, "bar"), view_of(spec, "errorbar")
    plotted = {(r["model"], r["perturbation"]): (r["value"], r["ci_low"], r["ci_high"]) for r in data_of(spec, bar)}
    # drawn as perturbed - clean (the stored drop is clean - perturbed), so that worse is down: single mode, not
    # ensemble's; the headline row is no perturbation
    assert same(plotted, {k: (-v, -high, -low) for k, (v, low, high) in DROPS.items()})
    assert bar["encoding"]["y"]["title"] == "perturbed − clean"  # fits beside each row of panels
    assert spec["title"] == "balanced_accuracy: perturbed − clean (below 0: worse)"
    assert (whisker["encoding"]["y"]["field"], whisker["encoding"]["y2"]["field"]) == ("ci_low", "ci_high")
    assert view_of(spec, "rule")["encoding"]["y"] == {"datum": 0}  # the zero line the bars hang from
    assert bar["encoding"]["color"]["legend"]["title"] == "model"  # a legend names each colour
    assert bar["encoding"]["x"]["axis"]["labelOverlap"] is False  # every model's label is drawn
    assert spec["columns"] == 2 and spec["spec"]["width"] >= 210  # up to 4 panels a row (12: 3 rows), wide enough
    flips = spec_of(charts.robustness_drops(variants(db, "robustness"), "crc-val-he-7k", "ensemble", "flip_rate"))
    assert {r["value"] for r in data_of(flips, view_of(flips, "bar"))} == {0.3}
    assert charts.robustness_drops(variants(db, "robustness"), "sicapv2", "single") is None


def test_significance_matrix_marks_exactly_the_holm_significant_pairs(db):
    comparisons = queries.load_comparisons(db)
    spec = spec_of(charts.significance_matrix(comparisons, "balanced_accuracy", "zeroshot", "ensemble",
                                              "crc-val-he-7k"))
    heat = view_of(spec, "rect", 0)
    cells = {(r["row"], r["column"]): (r["diff"], r["ci_low"], r["ci_high"]) for r in data_of(spec, heat)}
    expected = {}
    for a, b, diff, lo, hi, *_ in PAIRS:  # row minus column: the mirrored cell flips the difference and its CI
        expected[(a, b)], expected[(b, a)] = (diff, lo, hi), (-diff, -hi, -lo)
    assert same(cells, expected)  # ensemble, this dataset: the single-mode and sicapv2 rows are out
    outlined = view_of(spec, "rect", 1)
    assert outlined["mark"]["filled"] is False
    marked = {(r["row"], r["column"]) for r in data_of(spec, outlined)}
    significant = {(a, b) for a, b, *_, sig in PAIRS if sig}
    assert marked == significant | {(b, a) for a, b in significant}
    text = data_of(spec, view_of(spec, "text"))
    starred = {(r["row"], r["column"]) for r in text if r["label"].endswith("*")}
    assert starred == marked
    assert heat["encoding"]["x"]["sort"] == ["conch", "keep", "plip"]  # best first
    assert heat["encoding"]["color"]["scale"]["domain"] == pytest.approx([-0.17, 0.17])
    assert charts.significance_matrix(comparisons, "balanced_accuracy", "zeroshot", "ensemble", "bach") is None
    assert charts.significance_matrix(comparisons, "balanced_accuracy", "zeroshot", "ensemble", "crc-val-he-7k",
                                      protocol_hash="other") is None


def test_significance_matrix_of_an_empty_database(tmp_path):
    Store(tmp_path / "empty.duckdb").start_run(command="test")
    empty = queries.load_comparisons(tmp_path / "empty.duckdb")
    assert charts.significance_matrix(empty, "balanced_accuracy", "zeroshot", "ensemble", "crc-val-he-7k") is None


def test_reliability_diagram_plots_each_bin():
    from pathboard.leaderboard import charts

    rows = pd.DataFrame([{"model": m, "dataset": "crc", "task": "zeroshot", "variant": "reliability",
                          "prompt_mode": "single", "metric": f"bin={b:02d}/{what}", "value": v}
                         for m, offset in (("a", 0.0), ("b", 0.1)) for b in (3, 9, 14)
                         for what, v in (("confidence", b / 15 + 0.01), ("accuracy", b / 15 - offset),
                                         ("count", 10.0 + b))])
    distractor = rows.assign(prompt_mode="ensemble", value=0.5)
    chart = charts.reliability_diagram(pd.concat([rows, distractor]), "crc", "single", highlight="b")
    spec = chart.to_dict()
    points = [layer for layer in spec["layer"] if layer["mark"]["type"] == "circle"][0]
    data = spec["datasets"][points["data"]["name"]]
    assert len(data) == 6
    got = {(d["model"], round(d["confidence"], 6)): (round(d["accuracy"], 6), d["count"]) for d in data}
    assert got[("b", round(9 / 15 + 0.01, 6))] == (round(9 / 15 - 0.1, 6), 19.0)
    assert charts.reliability_diagram(rows, "other", "single") is None
