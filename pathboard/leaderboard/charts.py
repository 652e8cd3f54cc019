"""The leaderboard's pictures: Altair charts (Altair ships with Streamlit) built from the frames of
:mod:`pathboard.leaderboard.frames`, so they are unit-tested on their Vega-Lite specs like the tables.

Every function takes a loader's frame (``load_measured``, ``load_variants``, ``load_comparisons``) plus
a selection and returns an Altair chart, or **None when the selection holds nothing to draw** (the
caller shows a note instead). Nothing here imports Streamlit, torch or the plugins.

- :func:`bars`: the headline metric per dataset, one bar per model, with its 95% CI whisker;
- :func:`radar`: one polygon per model across the datasets;
- :func:`fewshot_curves`: few-shot k against the median over draws, with the IQR band over draws;
- :func:`topk_curve`: MI-Zero's top-K pooling, K against the metric, with its 95% CI band;
- :func:`sensitivity_boxes`: prompt sensitivity, a box per model over the individual prompt draws;
- :func:`robustness_drops`: per perturbation, the change from the clean images per model (perturbed − clean:
  worse is down), with its CI;
- :func:`significance_matrix`: model x model paired differences, Holm-significant cells outlined;
- :func:`reliability_diagram`: zero-shot calibration, accuracy against confidence per bin, per model.
"""
from __future__ import annotations

import math
import re

import altair as alt
import pandas as pd

from pathboard.core.science.rankings import family as draw_family
from pathboard.leaderboard import frames

#: one colour per model (Vega's tableau10, then tableau20's lighter shades), in the order the models are listed
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#eeca3b", "#ff9da6", "#9d755d",
           "#bab0ac", "#e45756", "#9ecae9", "#ffbf79", "#88d27a", "#d6a5c9", "#83bcb6", "#fff2a8",
           "#fcbfd2", "#d8b5a5", "#79706e", "#ff9d98"]
#: with a highlighted model: that model's colour, and every other model's
HIGHLIGHT, MUTED = "#d62728", "#b0b7bf"
GRID = "#c8c8c8"
FEWSHOT_VARIANT = re.compile(r"^(?P<method>[^/]+)/k=(?P<k>\d+)/median$")
TOPK_VARIANT = re.compile(r"^topk=(?P<k>\d+)$")
DRAW_VARIANT = re.compile(r"^(template=\d+|synonym=.+|subset=\d+/draw=\d+)$")
PERTURBATION_PREFIX = "perturbation="
#: the stroke of each few-shot method's curve (what the Analyses caption says): prototype solid, linear probe
#: dashed, ABMIL dotted
METHOD_DASHES = {"prototype": [1, 0], "linear-probe": [7, 4], "abmil": [2, 2]}
BIN_METRIC = re.compile(r"^bin=(?P<bin>\d+)/(?P<what>confidence|accuracy|count)$")


def model_scale(models: list[str], highlight: str | None = None) -> alt.Scale:
    """The colour scale of ``models``: a palette colour each, or, with ``highlight``, HIGHLIGHT for that
    model and MUTED for every other."""
    if highlight is None:
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(models))]
    else:
        colours = [HIGHLIGHT if m == highlight else MUTED for m in models]
    return alt.Scale(domain=list(models), range=colours)


def _of_mode(rows: pd.DataFrame, mode: str | None) -> pd.DataFrame:
    """Rows of one prompt mode (rows without a mode match any); every row when ``mode`` is None."""
    if mode is None:
        return rows
    return rows[(rows["prompt_mode"] == mode) | rows["prompt_mode"].isna()]


def _ranked(rows: pd.DataFrame, metric: str) -> list[str]:
    """The models of ``rows``, best mean value first (lowest for lower-is-better metrics), ties by name."""
    means = rows.groupby("model")["value"].mean()
    order = sorted(means.index, key=lambda m: (-means[m] if not frames.lower_is_better(metric) else means[m], m))
    return list(order)


def _finite(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return frame[frame[list(columns)].notna().all(axis=1)]


def _points(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The plotted columns only, floats as floats, index reset (what goes into the spec)."""
    out = rows[columns].reset_index(drop=True).copy()
    for col in ("value", "ci_low", "ci_high", "q1", "q3"):
        if col in out:
            out[col] = out[col].astype(float)
    return out


def _ci_bars(rows: pd.DataFrame, facet: str, facet_order: list[str], metric: str, models: list[str],
             highlight: str | None, facet_title: str | None = None, columns: int = 3,
             width: int = 120) -> alt.FacetChart:
    """One panel per ``facet`` value, ``columns`` a row: a bar per model (height ``value``) and a whisker
    ci_low..ci_high, and a rule at 0."""
    data = _points(rows, ["model", facet, "value", "ci_low", "ci_high"])
    x = alt.X("model:N", sort=models, title=None, axis=alt.Axis(labelAngle=-40, labelOverlap=False, labelLimit=300))
    tooltip = ["model:N", f"{facet}:N", alt.Tooltip("value:Q", format=".3f"),
               alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f")]
    bar = alt.Chart().mark_bar().encode(
        x=x, y=alt.Y("value:Q", title=metric, stack=None),  # a bar is one number: never a sum of two rows
        color=alt.Color("model:N", scale=model_scale(models, highlight),
                        legend=alt.Legend(title="model", orient="bottom", columns=4, labelLimit=240)),
        tooltip=tooltip)
    whisker = alt.Chart().mark_errorbar(ticks=True, color="black").encode(
        x=x, y=alt.Y("ci_low:Q", title=metric), y2="ci_high:Q").transform_filter(
        "isValid(datum.ci_low) && isValid(datum.ci_high)")
    zero = alt.Chart().mark_rule(color="#666").encode(y=alt.datum(0))
    panel = alt.layer(bar, whisker, zero, data=data).properties(width=max(width, 24 * len(models)), height=220)
    return panel.facet(facet=alt.Facet(f"{facet}:N", sort=facet_order, title=facet_title),
                       columns=min(len(facet_order), columns))


def bars(measured: pd.DataFrame, task: str, metric: str, mode: str, datasets: list[str],
         highlight: str | None = None, include_reported: bool = False) -> alt.FacetChart | None:
    """A panel per dataset (in ``datasets``' order), a bar per model with its 95% CI whisker, best model
    first; ``highlight`` in HIGHLIGHT, the others MUTED. Reported rows (no CI) with ``include_reported``."""
    rows = frames.select(measured, metric, task, mode, datasets, include_reported)
    rows = rows[rows["value"].notna()]
    if rows.empty:
        return None
    if "source" in rows:
        rows = rows.assign(model=[frames.row_label(m, s) for m, s in zip(rows["model"], rows["source"])])
    order = [frames.short_id(d) for d in datasets if d in set(rows["dataset"])]  # panel titles as the headers
    rows = rows.assign(dataset=rows["dataset"].map(frames.short_id))
    return _ci_bars(rows, "dataset", order, metric, _ranked(rows, metric), highlight)


def radar(measured: pd.DataFrame, task: str, metric: str, mode: str, datasets: list[str],
          highlight: str | None = None, size: int = 380) -> alt.LayerChart | None:
    """A polygon per model over the datasets (one spoke each, clockwise from the top, ``datasets``' order),
    of the models with a value on every one; the radius runs from min(0, lowest) at the centre to
    max(1, highest) at the rim. None below three datasets or without a complete model."""
    rows = frames.select(measured, metric, task, mode, datasets, include_reported=False)
    rows = rows[rows["value"].notna()].drop_duplicates(["model", "dataset"])
    order = [d for d in datasets if d in set(rows["dataset"])]
    complete = rows.groupby("model")["dataset"].nunique()
    rows = rows[rows["model"].isin(complete[complete == len(order)].index)]
    if len(order) < 3 or rows.empty:
        return None
    lo, hi = min(0.0, float(rows["value"].min())), max(1.0, float(rows["value"].max()))
    angle = {d: 2 * math.pi * i / len(order) for i, d in enumerate(order)}

    def at(radius: float, dataset: str) -> tuple[float, float]:
        return radius * math.sin(angle[dataset]), radius * math.cos(angle[dataset])

    polygons = []
    for model, of_model in rows.groupby("model", sort=False):
        values = dict(zip(of_model["dataset"], of_model["value"].astype(float)))
        for i, d in enumerate([*order, order[0]]):  # back to the first spoke: the polygon closes
            x, y = at((values[d] - lo) / (hi - lo), d)
            polygons.append({"model": model, "dataset": d, "value": values[d], "order": i, "x": x, "y": y})
    rings = [{"ring": r, "order": i, "x": at(r, d)[0], "y": at(r, d)[1]}
             for r in (0.25, 0.5, 0.75, 1.0) for i, d in enumerate([*order, order[0]])]
    spokes = [{"dataset": d, "x": 0.0, "y": 0.0, "x2": at(1.0, d)[0], "y2": at(1.0, d)[1]} for d in order]
    labels = [{"dataset": d, "x": at(1.15, d)[0], "y": at(1.15, d)[1]} for d in order]
    ticks = [{"label": f"{lo + r * (hi - lo):.2f}", "x": 0.0, "y": r} for r in (0.25, 0.5, 0.75, 1.0)]
    extent = 1.45
    x = alt.X("x:Q", scale=alt.Scale(domain=[-extent, extent]), axis=None)
    y = alt.Y("y:Q", scale=alt.Scale(domain=[-extent, extent]), axis=None)
    models = _ranked(rows, metric)
    ring = alt.Chart(pd.DataFrame(rings)).mark_line(color=GRID, strokeWidth=0.8).encode(
        x=x, y=y, detail="ring:N", order="order:Q")
    spoke = alt.Chart(pd.DataFrame(spokes)).mark_rule(color=GRID).encode(x=x, y=y, x2="x2:Q", y2="y2:Q")
    label = alt.Chart(pd.DataFrame(labels)).mark_text(fontSize=11).encode(x=x, y=y, text="dataset:N")
    tick = alt.Chart(pd.DataFrame(ticks)).mark_text(fontSize=9, color="#888", align="left", dx=3, dy=-3).encode(
        x=x, y=y, text="label:N")
    line = alt.Chart(pd.DataFrame(polygons)).mark_line(point=True, strokeWidth=2).encode(
        x=x, y=y, order="order:Q", color=alt.Color("model:N", scale=model_scale(models, highlight), title="model"),
        tooltip=["model:N", "dataset:N", alt.Tooltip("value:Q", format=".3f")])
    return alt.layer(ring, spoke, label, tick, line).properties(width=size, height=size, title=metric,
                                                                 view=alt.ViewBackground(stroke=None))


def _curve(data: pd.DataFrame, x: alt.X, y_title: str, band: tuple[str, str] | None, models: list[str],
           highlight: str | None, tooltip: list, dash: str | None = None) -> alt.LayerChart:
    """Lines of ``value`` against ``k``, one per model (and per ``dash`` value, as the stroke dash), over a
    band from ``band[0]`` to ``band[1]`` where both are stored (no band when ``band`` is None), and a point
    per value."""
    colour = alt.Color("model:N", scale=model_scale(models, highlight), title="model")
    layers = []
    if band is not None:
        low, high = band
        layers.append(alt.Chart(_finite(data, low, high)).mark_area(fillOpacity=0.18).encode(
            x=x, y=f"{low}:Q", y2=f"{high}:Q", color=colour, **({"detail": f"{dash}:N"} if dash else {})))
    values = set(data[dash]) if dash else set()
    present = [v for v in METHOD_DASHES if v in values] + sorted(values - set(METHOD_DASHES))
    extra = {"strokeDash": alt.StrokeDash(f"{dash}:N", title=dash, legend=alt.Legend(symbolType="stroke"),
                                          scale=alt.Scale(domain=present, range=[METHOD_DASHES.get(v, [1, 3])
                                                                                 for v in present]))} \
        if dash else {}
    y = alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False))
    line = alt.Chart(data).mark_line().encode(x=x, y=y, color=colour, **extra)
    point = alt.Chart(data).mark_point(filled=True).encode(x=x, y=y, color=colour, tooltip=tooltip)
    return alt.layer(*layers, line, point).properties(width=420, height=280)


def fewshot_curves(variants: pd.DataFrame, dataset: str, metric: str, mode: str | None = None,
                   highlight: str | None = None) -> alt.LayerChart | None:
    """Few-shot (``<method>/k=<k>/median`` variants): k per class on a log2 axis against the median over
    draws, a line per model and method (dash by method) with the IQR band (q1..q3) over draws; k=all is
    not on the curve."""
    rows = _of_mode(variants[(variants["dataset"] == dataset) & (variants["metric"] == metric)], mode)
    parsed = rows["variant"].fillna("").str.extract(FEWSHOT_VARIANT)
    rows = rows.assign(method=parsed["method"], k=pd.to_numeric(parsed["k"]))[parsed["k"].notna()]
    rows = rows[rows["value"].notna()]
    if rows.empty:
        return None
    data = _points(rows, ["model", "method", "k", "value", "q1", "q3"])
    data["k"] = data["k"].astype(int)
    models = _ranked(rows, metric)
    ks = sorted(set(data["k"]))
    x = alt.X("k:Q", scale=alt.Scale(type="log", base=2), axis=alt.Axis(values=ks, format="d"),
              title="training examples per class (k)")
    tooltip = ["model:N", "method:N", "k:Q", alt.Tooltip("value:Q", format=".3f"),
               alt.Tooltip("q1:Q", format=".3f"), alt.Tooltip("q3:Q", format=".3f")]
    return _curve(data, x, f"{metric} (median over draws)", ("q1", "q3"), models, highlight, tooltip,
                  dash="method").properties(title=dataset)


#: the fewest items (slides) whose 95% CI a curve draws as a band: below it a bootstrap interval spans most
#: of the metric's range and hides the curves it belongs to
MIN_BAND_ITEMS = 10


def topk_curve(variants: pd.DataFrame, dataset: str, metric: str, mode: str,
               highlight: str | None = None) -> alt.LayerChart | None:
    """Zero-shot WSI (``topk=<K>`` variants): MI-Zero's K (tiles pooled per class, log axis) against the
    metric, a line per model with its 95% CI band where stored and the curve rests on at least
    MIN_BAND_ITEMS slides (the title says when it does not)."""
    rows = _of_mode(variants[(variants["dataset"] == dataset) & (variants["metric"] == metric)], mode)
    k = pd.to_numeric(rows["variant"].fillna("").str.extract(TOPK_VARIANT)["k"])
    rows = rows.assign(k=k)[k.notna()]
    rows = rows[rows["value"].notna()]
    if rows.empty:
        return None
    data = _points(rows, ["model", "k", "value", "ci_low", "ci_high"])
    data["k"] = data["k"].astype(int)
    models = _ranked(rows, metric)
    x = alt.X("k:Q", scale=alt.Scale(type="log"), axis=alt.Axis(values=sorted(set(data["k"])), format="d"),
              title="top-K tiles pooled per class (K)")
    tooltip = ["model:N", "k:Q", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("ci_low:Q", format=".3f"),
               alt.Tooltip("ci_high:Q", format=".3f")]
    n = pd.to_numeric(rows["n"], errors="coerce").max() if "n" in rows else float("nan")
    few = n == n and n < MIN_BAND_ITEMS
    title = f"{dataset} (n = {int(n)} slides: too few for a CI band)" if few else dataset
    return _curve(data, x, metric, None if few else ("ci_low", "ci_high"), models, highlight,
                  tooltip).properties(title=title)


def sensitivity_boxes(variants: pd.DataFrame, dataset: str, metric: str = "balanced_accuracy",
                      family: str | None = None, highlight: str | None = None) -> alt.Chart | None:
    """Prompt sensitivity: a box per model over its individual draws (``template=I``, ``synonym=C:S``,
    ``subset=N/draw=R``; the summaries are not drawn), of one ``family`` (templates, synonyms, subset=N)
    or all; the whiskers span min..max. The task has no prompt mode."""
    rows = variants[(variants["dataset"] == dataset) & (variants["metric"] == metric)]
    rows = rows[rows["variant"].fillna("").str.match(DRAW_VARIANT) & rows["value"].notna()]
    rows = rows.assign(family=[draw_family(v) for v in rows["variant"]])
    if family is not None:
        rows = rows[rows["family"] == family]
    if rows.empty:
        return None
    data = _points(rows, ["model", "variant", "family", "value"])
    models = _ranked(rows, metric)
    return alt.Chart(data).mark_boxplot(extent="min-max", size=28).encode(
        x=alt.X("model:N", sort=models, title=None, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("value:Q", title=f"{metric} per prompt draw", scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", scale=model_scale(models, highlight), legend=None),
    ).properties(width=max(160, 50 * len(models)), height=260, title=f"{dataset}: {family or 'every draw'}")


def robustness_drops(variants: pd.DataFrame, dataset: str, mode: str, metric: str = "balanced_accuracy_drop",
                     highlight: str | None = None) -> alt.FacetChart | None:
    """Robustness (``perturbation=<name>`` variants): a panel per perturbation, a bar per model of
    ``metric`` (the drop from clean, the flip rate or the cosine) with its 95% CI whisker."""
    rows = variants[(variants["dataset"] == dataset) & (variants["metric"] == metric)
                    & (variants["prompt_mode"].fillna("") == mode)]
    rows = rows[rows["variant"].fillna("").str.startswith(PERTURBATION_PREFIX) & rows["value"].notna()]
    if rows.empty:
        return None
    rows = rows.assign(perturbation=rows["variant"].str.removeprefix(PERTURBATION_PREFIX))
    axis, title = metric, None
    if metric.endswith("_drop"):  # stored as clean - perturbed; drawn as the change, so that worse is down
        rows = rows.assign(value=-rows["value"], ci_low=-rows["ci_high"], ci_high=-rows["ci_low"])
        # the axis title repeats beside every row of panels: short; the chart's title says the rest
        axis, title = "perturbed − clean", f"{metric.removesuffix('_drop')}: perturbed − clean (below 0: worse)"
    models = sorted(set(rows["model"]), key=lambda m: (-rows.loc[rows["model"] == m, "value"].mean(), m))
    chart = _ci_bars(rows, "perturbation", sorted(set(rows["perturbation"])), axis, models, highlight,
                     columns=4, width=210)  # 4 panels a row fill the page
    return chart if title is None else chart.properties(title=title)


#: the side in pixels of one cell of the significance matrix (room for "+0.016*")
MATRIX_STEP = 56


def significance_matrix(comparisons: pd.DataFrame, metric: str, task: str, mode: str, dataset: str,
                        protocol_hash: str | None = None) -> alt.LayerChart | None:
    """Paired comparisons (``load_comparisons``) on one dataset: row model minus column model, each pair in
    both cells (mirrored), diverging colour around 0, the stored ``significant`` pairs (Holm p < 0.05, or a
    CI excluding 0 in older databases) outlined and starred; ``protocol_hash`` keeps one protocol's rows."""
    rows = comparisons[(comparisons["metric"] == metric) & (comparisons["task"] == task)
                       & (comparisons["dataset"] == dataset)
                       & comparisons["prompt_mode"].fillna("").isin([mode, ""])]
    if protocol_hash is not None and "protocol_hash" in rows:
        rows = rows[rows["protocol_hash"] == protocol_hash]
    rows = rows[rows["diff"].notna()]
    if rows.empty:
        return None
    cells = []
    for r in rows.itertuples():
        p, p_holm = getattr(r, "p_value", None), getattr(r, "p_holm", None)
        common = {"significant": bool(r.significant), "n": int(r.n),
                  "p": None if p is None or pd.isna(p) else float(p),
                  "p_holm": None if p_holm is None or pd.isna(p_holm) else float(p_holm)}
        cells.append({"row": r.model_a, "column": r.model_b, "diff": float(r.diff), "ci_low": float(r.ci_low),
                      "ci_high": float(r.ci_high), **common})
        cells.append({"row": r.model_b, "column": r.model_a, "diff": -float(r.diff), "ci_low": -float(r.ci_high),
                      "ci_high": -float(r.ci_low), **common})
    data = pd.DataFrame(cells).drop_duplicates(["row", "column"])
    data["label"] = [f"{d:+.3f}" + ("*" if s else "") for d, s in zip(data["diff"], data["significant"])]
    means = data.groupby("row")["diff"].mean()
    sign = 1 if frames.lower_is_better(metric) else -1
    models = sorted(means.index, key=lambda m: (sign * means[m], m))  # the best first, top and left
    reach = float(data["diff"].abs().max()) or 1.0
    x = alt.X("column:N", sort=models, title="minus (model B)", axis=alt.Axis(labelAngle=-40, orient="top"))
    y = alt.Y("row:N", sort=models, title="model A")
    tooltip = ["row:N", "column:N", alt.Tooltip("diff:Q", format="+.3f"), alt.Tooltip("ci_low:Q", format="+.3f"),
               alt.Tooltip("ci_high:Q", format="+.3f"), alt.Tooltip("p:Q", format=".3f"),
               alt.Tooltip("p_holm:Q", format=".3f", title="p (Holm)"), "significant:N", "n:Q"]
    heat = alt.Chart(data).mark_rect().encode(
        x=x, y=y, tooltip=tooltip,
        color=alt.Color("diff:Q", title=f"Δ {metric}", scale=alt.Scale(scheme="redblue", domain=[-reach, reach],
                                                                         reverse=frames.lower_is_better(metric))))
    text = alt.Chart(data).mark_text(fontSize=10).encode(
        x=x, y=y, text="label:N",
        color=alt.condition(f"abs(datum.diff) > {0.6 * reach}", alt.value("white"), alt.value("black")))
    marked = alt.Chart(data[data["significant"]].reset_index(drop=True)).mark_rect(
        filled=False, stroke="black", strokeWidth=2).encode(x=x, y=y)
    # a fixed step per model, not a fixed size: a fixed 160 px, which the page's autosize shares with the title
    # and the angled labels, left the rows 0 px tall (both row labels drawn on top of each other)
    return alt.layer(heat, text, marked).properties(width=alt.Step(MATRIX_STEP), height=alt.Step(MATRIX_STEP),
                                                    title=f"{dataset}: {metric} (* Holm-significant)")


def reliability_diagram(variants: pd.DataFrame, dataset: str, mode: str,
                        highlight: str | None = None) -> alt.LayerChart | None:
    """Zero-shot's (patch or WSI) ``reliability`` variant (``bin=II/confidence|accuracy|count``, the ECE's 15 bins): per
    model, each bin's accuracy against its mean top-1 confidence, the point's area its item count, over
    the diagonal of perfect calibration."""
    rows = _of_mode(variants[(variants["dataset"] == dataset) & (variants["variant"] == "reliability")], mode)
    parsed = rows["metric"].str.extract(BIN_METRIC)
    rows = rows.assign(bin=pd.to_numeric(parsed["bin"]), what=parsed["what"])[parsed["bin"].notna()]
    if rows.empty:
        return None
    data = rows.pivot_table(index=["model", "bin"], columns="what", values="value", aggfunc="first").reset_index()
    data = data.dropna(subset=["confidence", "accuracy"])
    if data.empty:
        return None
    models = sorted(set(data["model"]))
    colour = alt.Color("model:N", scale=model_scale(models, highlight), title="model")
    axis = {"scale": alt.Scale(domain=[0, 1])}
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        color=GRID, strokeDash=[4, 4]).encode(x=alt.X("x:Q", title="mean confidence (top-1)", **axis),
                                             y=alt.Y("y:Q", title="accuracy", **axis))
    x, y = alt.X("confidence:Q", **axis), alt.Y("accuracy:Q", **axis)
    line = alt.Chart(data).mark_line(opacity=0.6).encode(x=x, y=y, color=colour, order="confidence:Q")
    points = alt.Chart(data).mark_circle(opacity=0.8).encode(
        x=x, y=y, color=colour, size=alt.Size("count:Q", title="items", scale=alt.Scale(range=[20, 400])),
        tooltip=["model:N", alt.Tooltip("confidence:Q", format=".3f"), alt.Tooltip("accuracy:Q", format=".3f"),
                 "count:Q"])
    return alt.layer(diagonal, line, points).properties(width=380, height=380, title=dataset)
