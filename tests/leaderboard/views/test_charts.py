"""Every chart as Chromium draws it (SVG), checked for what its caption claims: its drawn size, its legend, its
labels and, for robustness, its direction. Each assertion here failed on the charts before they were fixed: a
significance matrix whose rows were 0 px tall, robustness drawn as clean − perturbed, few-shot strokes the
other way round from the caption, bars without a legend and with every third label, an MI-Zero band that
filled the plot with two slides."""
from __future__ import annotations

import pytest
from support.browser import drawn_charts, view

from pathboard.core.store import queries

pytestmark = pytest.mark.browser


def the_chart(page) -> dict:
    """The one chart the page draws, as :func:`drawn_charts` reads it."""
    charts = drawn_charts(page)
    assert len(charts) == 1 and charts[0] is not None, charts  # one chart, drawn as SVG
    return charts[0]


def marks(chart: dict, kind: str) -> list[dict]:
    return [m for m in chart["marks"] if m["kind"] == kind]


def y_axis_height(chart: dict) -> float:
    """The drawn height of the (first) y axis: the plot's own height, without titles and labels."""
    axis = next(m for m in chart["marks"] if m["kind"] == "axis" and m["label"].startswith("Y-axis"))
    return axis["bottom"] - axis["top"]


def test_overview_bars_and_significance_matrix(url):
    with view(url, wait_for=".vega-embed svg", name="bars") as page:
        bars = the_chart(page)
    drawn = {m["fields"]["model"] for m in marks(bars, "bar")}
    assert {"plip", "quiltnet-b32"} <= drawn
    assert set(bars["texts"]["legend-label"]) == drawn  # a legend names every model drawn
    labels = bars["texts"]["axis-label"]
    assert drawn <= set(labels) and not any(label.endswith("…") for label in labels)  # every label, in full
    panels = bars["texts"]["title-text"]
    assert "crc-val-he-7k" in panels and any(p.startswith("folder:…/") for p in panels)  # short ids, as the table
    assert y_axis_height(bars) >= 200

    with view(url, "picture=Significance+matrix", wait_for=".vega-embed svg", name="matrix") as page:
        matrix = the_chart(page)
    cells = marks(matrix, "rect mark")
    assert len(cells) == 2  # plip - quiltnet-b32 and its mirror
    for cell in cells:  # each cell square and tall enough for its label (it was 0 px tall)
        assert cell["bottom"] - cell["top"] >= 40 and cell["right"] - cell["left"] >= 40, cell
    assert abs(cells[0]["top"] - cells[1]["top"]) >= 40  # two rows, not drawn on top of each other
    assert {"model A", "minus (model B)"} <= set(matrix["texts"]["axis-title"])
    assert any(m["kind"] == "legend" and "Δ weighted_f1" in m["label"] for m in matrix["marks"])


def test_analyses_charts(url, real_db):
    db, folder = real_db
    with view(url, "view=Analyses", wait_for=".vega-embed svg", name="chart-prompts") as page:
        boxes = the_chart(page)
    assert marks(boxes, "box") and y_axis_height(boxes) >= 150  # the box plot was ~80 px tall

    with view(url, "view=Analyses&section=Robustness", wait_for=".vega-embed svg", name="chart-robustness") as page:
        drops = the_chart(page)
    assert drops["texts"]["axis-title"][0] == "perturbed − clean"
    assert any("below 0: worse" in t for t in drops["texts"]["title-text"])
    assert drops["width"] >= 800  # four panels a row: the page's width, not a third of it
    stored = queries.load_variants(db, "robustness")
    stored = stored[stored["metric"] == "balanced_accuracy_drop"]
    drop = {(r.model, r.variant.removeprefix("perturbation=")): r.value for r in stored.itertuples()}
    zeros = [m for m in marks(drops, "rule mark container")
             if m["top"] == m["bottom"] and m["right"] - m["left"] >= 200]  # the 0 rule across each panel
    moved = 0
    for bar in marks(drops, "bar"):
        value = float(bar["fields"]["value"])
        assert value == pytest.approx(-drop[bar["fields"]["model"], bar["fields"]["perturbation"]], abs=6e-4)
        middle = (bar["left"] + bar["right"]) / 2
        zero = min((z for z in zeros if z["left"] <= middle <= z["right"]), key=lambda z: abs(z["top"] - bar["top"]))
        if value < -0.005:  # worse under the perturbation: drawn down from 0
            assert abs(bar["top"] - zero["top"]) < 1.5 and bar["bottom"] > zero["top"] + 1
            moved += 1
        elif value > 0.005:  # better: drawn up
            assert abs(bar["bottom"] - zero["top"]) < 1.5 and bar["top"] < zero["top"] - 1
            moved += 1
    assert moved, "no perturbation changed balanced accuracy: nothing to check the direction on"

    with view(url, "view=Analyses&section=Few-shot+curves", wait_for=".vega-embed svg", name="chart-fewshot") as page:
        curves = the_chart(page)
    assert {"prototype", "linear-probe"} <= set(curves["texts"]["legend-label"])
    dash = {m["fields"]["method"]: m["dash"] for m in marks(curves, "line mark")}
    assert dash["prototype"] in ("", "1,0") and dash["linear-probe"] == "7,4"  # solid prototype, dashed probe
    assert "training examples per class (k)" in curves["texts"]["axis-title"]

    with view(url, "view=Analyses&section=MI-Zero+top-K", wait_for=".vega-embed svg", name="chart-topk") as page:
        topk = the_chart(page)
    assert not marks(topk, "area mark")  # two slides: no 95% CI band filling the plot
    assert any("too few for a CI band" in t for t in topk["texts"]["title-text"])
    assert len(marks(topk, "line mark")) == 2 and {"plip", "quiltnet-b32"} <= set(topk["texts"]["legend-label"])

    with view(url, "view=Analyses&section=Calibration+and+AUROC", wait_for=".vega-embed svg",
              name="chart-reliability") as page:
        reliability = the_chart(page)
    assert {"mean confidence (top-1)", "accuracy"} <= set(reliability["texts"]["axis-title"])
    assert {"plip", "quiltnet-b32"} <= set(reliability["texts"]["legend-label"])
    axes = {m["label"][0]: m for m in marks(reliability, "axis")}  # the plot is square: calibration's diagonal
    width, height = axes["X"]["right"] - axes["X"]["left"], axes["Y"]["bottom"] - axes["Y"]["top"]
    assert height >= 300 and abs(width - height) < 0.15 * height, (width, height)
