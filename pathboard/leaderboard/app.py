"""The Streamlit leaderboard: ``streamlit run app.py -- --db FILE`` (or ``pathboard leaderboard``).

The database comes from ``--db`` after ``--``, else $PATHBOARD_DB, else ``pathboard.duckdb``.
All table logic lives in ``tables.py``; this file only draws widgets.
"""
from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys

import duckdb
import pandas as pd
import streamlit as st

from pathboard.core.errors import PathboardError
from pathboard.leaderboard import charts, tables


def db_path(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    parser.add_argument("--db", default=None)
    args, _ = parser.parse_known_args(argv)
    return args.db or os.environ.get("PATHBOARD_DB") or "pathboard.duckdb"


def db_stamp(path: str) -> tuple:
    """What changes whenever a run writes the database: the mtime and size of the file and of its
    write-ahead log (journalled cells reach readers only once merged into the file)."""
    out = []
    for name in (path, path + ".wal"):
        try:
            info = os.stat(name)
            out.append((info.st_mtime_ns, info.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


@st.cache_data(show_spinner=False, max_entries=48, ttl=3600)  # one database version's reads, a few protocols
def _cached(name: str, stamp: tuple, path: str, args: tuple):
    return getattr(tables, name)(path, *args)


def load(name: str, *args):
    """``tables.<name>(db, *args)``, read once per version of the database file and shared by every rerun
    and session: the key holds the file's stamp, so the next rerun after a run wrote shows its results.
    Errors are not cached."""
    return _cached(name, db_stamp(db), db, args)


@st.cache_data(show_spinner=False, ttl=10)
def load_runs(stamp: tuple, path: str):
    """The runs, re-read every 10 s even when the file has not changed: a run whose process died is shown
    as interrupted once its process is gone, which writes nothing."""
    return tables.load_runs(path)


@st.cache_data(show_spinner=False)
def load_reported():
    return tables.load_reported()


st.set_page_config(page_title="pathboard leaderboard", layout="wide")
st.title("Pathology CLIP leaderboard")

db = db_path(sys.argv[1:])
URL = dict(st.query_params)  # the selection a shared link carries: view, task, metric, mode, datasets, ...


def from_url(key: str, options: list, default=None):
    """The index in ``options`` of the link's value for widget ``key`` (on the first render only: after that
    the widget's own state wins), else of ``default``, else 0."""
    value = URL.get(key) if key not in st.session_state else None
    for wanted in (value, default):
        if wanted in options:
            return options.index(wanted)
    return 0


def tab_default(key: str, labels: list[str]) -> str | None:
    """The tab of tabs ``key`` to open first: the link's, fixed for the session. It must not change between
    reruns: Streamlit takes tabs whose ``default`` changed for new ones and loses which tab is open."""
    defaults = st.session_state.setdefault("tab_defaults", {})
    if key not in defaults:
        defaults[key] = URL.get(key) if URL.get(key) in labels else None
    return defaults[key]


def draw(where, chart, empty: str, quiet: bool = False) -> None:
    """An Altair chart, or what is missing for one (a caption when ``quiet``)."""
    if chart is not None:
        where.altair_chart(chart)
    elif quiet:
        where.caption(empty)
    else:
        where.info(empty)


VIEWS = ["Overview", "Cervix benchmark", "Analyses", "Slides", "Models", "Runs"]
view = st.sidebar.radio("View", VIEWS, index=from_url("view", VIEWS), key="view")
protocols = load("protocol_choices")
protocol = "default"
if len(protocols) > 1:  # numbers of different protocols are never set side by side
    protocol = st.sidebar.selectbox("Protocol", list(protocols), index=from_url("protocol", list(protocols)),
                                    format_func=protocols.get, key="protocol")
try:
    runs = load_runs(db_stamp(db), db)
except (PathboardError, duckdb.Error, OSError):
    runs = pd.DataFrame(columns=["run_id"])
run_ids = ["latest"] + list(runs["run_id"])
run = st.sidebar.selectbox("Run", run_ids, index=from_url("run", run_ids), key="run",
                           format_func=lambda r: "newest result of every cell" if r == "latest" else r,
                           help="Show the numbers of one run only, instead of every cell's newest result")
try:
    measured = load("load_measured", protocol) if run == "latest" else load("load_run", run, protocol)
except (PathboardError, duckdb.Error, OSError) as exc:
    st.error(f"cannot read results: {str(exc).splitlines()[0]}")
    measured = None
reported = load_reported()
catalog = load("load_catalog") if measured is not None else {"models": {}, "datasets": {}, "tasks": {}}
if measured is not None and measured.empty and run != "latest":
    st.info(f"Run {run} stored no headline results of this protocol; the published numbers are shown below.")
elif measured is not None and measured.empty:
    st.info(f"No measured results in {db} yet: run `pathboard run` to add some. "
            "The published numbers are shown below.")
measured = tables.empty_measured() if measured is None else measured
long = pd.concat([measured, reported], ignore_index=True)
highlights = ["(none)"] + sorted(set(measured["model"])) + sorted(set(reported["model"]) - set(measured["model"]))
highlight = st.sidebar.selectbox("Highlight model", highlights, index=from_url("highlight", highlights),
                                 key="highlight", help="Give this model's rows a background, as papers mark "
                                 "their own model")
highlight = None if highlight == "(none)" else highlight
st.sidebar.caption(f"Protocol: {protocols.get(protocol, protocol)}")
shared = {"view": view, "protocol": protocol, "run": run, "highlight": highlight or "(none)"}


def share(**selection) -> None:
    """Put the view's selection in the URL's query parameters, so that a link reopens this view."""
    state = {**shared, **selection}
    st.query_params.from_dict({k: v for k, v in state.items() if v not in (None, "", [])})


if view == "Slides":
    from pathboard.leaderboard import slides

    st.header("Slide drill-down")
    try:
        artifacts = load("load_artifacts", protocol)
    except (PathboardError, duckdb.Error, OSError):
        artifacts = pd.DataFrame(columns=["model", "dataset", "task", "prompt_mode", "item", "kind", "path"])
    if artifacts.empty:
        share()
        st.info("No slide pictures yet: zero-shot WSI (`--tasks zeroshot-wsi`) writes a heatmap and the top tiles "
                "of every slide, segmentation (`--tasks segmentation`) its predicted and true masks.")
        st.stop()
    s1, s2, s3, s4 = st.columns(4)
    sets = sorted(set(artifacts["dataset"]))
    sdataset = s1.selectbox("Dataset", sets, index=from_url("slide_dataset", sets), key="slide_dataset")
    rows = artifacts[artifacts["dataset"] == sdataset]
    smodels = sorted(set(rows["model"]))
    smodel = s2.selectbox("Model", smodels, index=from_url("slide_model", smodels, highlight), key="slide_model")
    rows = rows[rows["model"] == smodel]
    smodes = sorted(set(rows["prompt_mode"]))
    smode = s3.radio("Prompt mode", smodes, index=from_url("slide_mode", smodes), horizontal=True, key="slide_mode")
    rows = rows[rows["prompt_mode"] == smode]
    items = sorted(set(rows["item"]))
    item = s4.selectbox("Slide", items, index=from_url("slide", items), key="slide")
    share(slide_dataset=sdataset, slide_model=smodel, slide_mode=smode, slide=item)
    rows = rows[rows["item"] == item].set_index("kind")["path"]
    if "topk" in rows:
        facts, tiles_shown = slides.top_tiles(rows["topk"])
        verdict = "correct" if facts["predicted"] == facts["truth"] else "wrong"
        st.markdown(f"**Predicted** {facts['predicted']} · **true** {facts['truth']} ({verdict}), MI-Zero top-"
                    f"{facts['pooled_k']} pooling")
    left, right = st.columns([3, 2])
    if "heatmap" in rows:
        if os.path.isfile(rows["heatmap"]):
            left.image(rows["heatmap"], caption="Similarity of each tile to the predicted class (yellow low, red "
                       "high) over the slide's thumbnail", width="stretch")
        else:
            left.warning(f"the heatmap file is gone: {rows['heatmap']}")
    if "topk" in rows:
        right.subheader("Top tiles")
        if facts.get("error"):
            right.warning(facts["error"])
        for start in range(0, len(tiles_shown), 4):
            for col, (tile, similarity) in zip(right.columns(4), tiles_shown[start:start + 4]):
                col.image(tile, caption=f"{similarity:.3f}")
        right.caption("The tiles most similar to the predicted class, read from the slide at their stored "
                      "level-0 coordinates; the number is the cosine similarity.")
    if "segmentation" in rows:
        st.subheader("Segmentation")
        if os.path.isfile(rows["segmentation"]):
            st.image(rows["segmentation"], caption="Thumbnail · predicted mask · true mask (cells outside the "
                     "scored tissue washed out)", width="stretch")
        else:
            st.warning(f"the segmentation file is gone: {rows['segmentation']}")
    st.stop()
if view == "Runs":
    share()
    st.header("Runs")
    if runs.empty:
        st.info(f"No runs in {db} yet: `pathboard run` records one per command.")
        st.stop()
    shown = runs.assign(seconds=runs["seconds"].round(1))
    st.dataframe(shown[["run_id", "started_at", "status", "seconds", "cells", "skipped", "failed_files",
                        "image_forwards", "device", "precision", "host", "command"]], hide_index=True, width="stretch")
    st.caption("Every `pathboard run` on this database, newest first: its status (`interrupted` when its process "
               "died), wall seconds, cells stored, cells skipped and files it could not read. Pick a run in the "
               "sidebar's *Run* selector to see only its numbers in the other views.")
    chosen = st.selectbox("Run details", list(runs["run_id"]), index=from_url("detail", list(runs["run_id"])),
                          key="detail")
    share(detail=chosen)
    detail = load("run_detail", chosen)
    st.code(detail["command"] or "(no command recorded)", language="bash")
    left, right = st.columns(2)
    left.subheader("Provenance")
    left.table(pd.DataFrame({"": list(detail["provenance"].values())}, index=list(detail["provenance"])))
    right.subheader("Packages")
    right.table(pd.DataFrame({"version": list(detail["packages"].values())}, index=list(detail["packages"])))
    st.subheader("What embedding cost")
    if detail["costs"].empty:
        st.write("Nothing was embedded in this run (every embedding was cached).")
    else:
        st.dataframe(detail["costs"], hide_index=True, width="stretch")
    st.subheader(f"Skipped cells ({len(detail['skipped'])})")
    for line in detail["skipped"]:
        st.markdown(f"- {line}")
    st.subheader(f"Unreadable files ({len(detail['files'])})")
    if detail["files"].empty:
        st.write("None.")
    else:
        st.dataframe(detail["files"], hide_index=True, width="stretch")
    st.stop()
if view == "Analyses":
    def none_yet(where, task: str | tuple[str, ...], text: str) -> None:
        """Nothing of ``task`` under this protocol: say how to get some, or that other protocols have some."""
        other = load("count_variants", task, "all") if protocol != "all" else 0
        if other:
            name = task if isinstance(task, str) else "/".join(task)
            text = (f"No {name} results under this protocol; {other} result row(s) under other protocols (other "
                    "prompts or task options): choose one in the sidebar's *Protocol* selector.")
        where.info(text)

    def choose(where, widget, label: str, options: list, key: str, **kwargs):
        """A selectbox or radio whose choice the link carries (``key`` in the URL) and reopens."""
        value = getattr(where, widget)(label, options, index=from_url(key, options), key=key, **kwargs)
        picks[key] = value
        return value

    # one analysis at a time: only the open tab's section is read and drawn (switching tabs reruns)
    FEWSHOT_TASKS = ("fewshot", "fewshot-wsi")
    SECTIONS = ["Prompt sensitivity", "Robustness", "Few-shot curves", "MI-Zero top-K", "Calibration and AUROC"]
    tabs = dict(zip(SECTIONS, st.tabs(SECTIONS, default=tab_default("section", SECTIONS), key="section",
                                      on_change="rerun")))
    picks = {"section": st.session_state.get("section") or SECTIONS[0]}

    tab = tabs["Prompt sensitivity"]
    if tab.open:
        draws = load("load_variants", "prompt-sensitivity", protocol)
        if draws.empty:
            none_yet(tab, "prompt-sensitivity", "No prompt-sensitivity results yet: `pathboard run` scores it "
                     "wherever zero-shot applies.")
        else:
            p1, p2 = tab.columns(2)
            pset = choose(p1, "selectbox", "Dataset", sorted(set(draws["dataset"])), "prompt_dataset")
            families = {"all": None, "templates alone": "templates", "synonyms alone": "synonyms"}
            pfamily = choose(p2, "radio", "Draws", list(families), "prompt_family", horizontal=True)
            sensitivity = tables.sensitivity_table(draws[draws["dataset"] == pset], load("load_rankings"))
            tab.table(sensitivity.drop(columns="dataset").set_index("model"))
            chart = charts.sensitivity_boxes(draws, pset, family=families[pfamily], highlight=highlight)
            draw(tab, chart, "No prompt draws for this dataset.")
            tab.caption("Balanced accuracy re-scored under many prompt draws on the cached embeddings: every "
                        "template alone, every class synonym alone, and seeded random subsets of 1–16 prompts per "
                        "class. Median [25th, 75th percentile] and range over all draws; Kendall τ is the mean rank "
                        "correlation of the models' order between pairs of draws, *ranked first* the share of draws "
                        "in which a model is best.")

    tab = tabs["Robustness"]
    if tab.open:
        tab.subheader("Robustness to image perturbations")
        robust = load("load_variants", "robustness", protocol)
        if robust.empty:
            none_yet(tab, "robustness", "No robustness results yet: `pathboard run --tasks robustness` (it embeds "
                     "each image once per perturbation).")
        else:
            r1, r2, r3 = tab.columns(3)
            rset = choose(r1, "selectbox", "Dataset", sorted(set(robust["dataset"])), "robust_dataset")
            figures = {"balanced_accuracy_drop": "drop in balanced accuracy", "flip_rate": "prediction flip rate",
                       "cosine": "cosine clean vs perturbed"}
            figure = choose(r2, "radio", "Figure", list(figures), "robust_figure", format_func=figures.get)
            rmode = choose(r3, "radio", "Prompt mode", tables.modes_present(robust[robust["dataset"] == rset]),
                           "robust_mode", horizontal=True)
            tab.table(tables.robustness_table(robust, rset, rmode, figure))
            draw(tab, charts.robustness_drops(robust, rset, rmode, figure, highlight), "Nothing to draw.", quiet=True)
            tab.caption("Zero-shot under seeded perturbations (JPEG, blur, HED stain jitter, brightness, contrast, "
                        "rotation, flip, downscaling), with 95% CIs from a paired bootstrap: the drop is clean minus "
                        "perturbed, the flip rate the share of items whose predicted class changed.")

    tab = tabs["Few-shot curves"]
    if tab.open:
        fewshot = load("load_variants", FEWSHOT_TASKS, protocol)
        if fewshot.empty:
            none_yet(tab, FEWSHOT_TASKS, "No few-shot results yet: `pathboard run --tasks fewshot` on a dataset with a "
                     "training split.")
        else:
            fset = choose(tab, "selectbox", "Dataset", sorted(set(fewshot["dataset"])), "fewshot_dataset")
            chart = charts.fewshot_curves(fewshot, fset, "balanced_accuracy", highlight=highlight)
            draw(tab, chart, "No few-shot curve for this dataset.")
            tab.caption("Balanced accuracy against k labelled examples per class: the median over the seeded draws "
                        "of k examples, with the band from the 25th to the 75th percentile; solid prototype, dashed "
                        "linear probe.")

    tab = tabs["MI-Zero top-K"]
    if tab.open:
        topk = load("load_variants", "zeroshot-wsi", protocol)
        if topk.empty:
            none_yet(tab, "zeroshot-wsi", "No zero-shot slide results yet: `pathboard run --tasks zeroshot-wsi` on "
                     "a slide dataset.")
        else:
            k1, k2 = tab.columns(2)
            kset = choose(k1, "selectbox", "Dataset", sorted(set(topk["dataset"])), "topk_dataset")
            kmode = choose(k2, "radio", "Prompt mode", tables.modes_present(topk[topk["dataset"] == kset]),
                           "topk_mode", horizontal=True)
            chart = charts.topk_curve(topk, kset, "balanced_accuracy", kmode, highlight)
            draw(tab, chart, "No top-K curve for this dataset.")
            tab.caption("Balanced accuracy of slides classified by the mean of their K tiles most similar to each "
                        "class (MI-Zero), against K, with its bootstrap 95% CI; the headline uses K = 50.")

    tab = tabs["Calibration and AUROC"]
    if tab.open:
        c1, c2, c3 = tab.columns(3)
        ctask = choose(c1, "radio", "Task", ["zeroshot", "zeroshot-wsi"], "calib_task", horizontal=True)
        of_task = measured[(measured["task"] == ctask) & measured["metric"].isin(tables.CALIBRATION_METRICS)]
        cmode = choose(c2, "radio", "Prompt mode", tables.modes_present(of_task), "calib_mode", horizontal=True)
        csets = tables.dataset_order(of_task[of_task["prompt_mode"] == cmode])
        if not csets:
            tab.info("No calibration metrics for this task and prompt mode yet.")
        else:
            cset = choose(c3, "selectbox", "Dataset", csets, "calib_dataset")
            calibration = tables.calibration_table(of_task[of_task["dataset"] == cset], ctask, cmode)
            tab.table(calibration.droplevel("dataset"))
            tab.caption("Of softmax(logit scale × cosine) at each model's own learned logit scale: ECE (15 bins), "
                        "Brier score (sum over classes), NLL (lower is better) and AUROC (binary, or macro "
                        "one-vs-rest; higher is better), with bootstrap 95% CIs"
                        + (", of the slide scores at the headline K." if ctask == "zeroshot-wsi" else "."))
            bins = load("load_variants", ctask, protocol, "reliability")
            tab.subheader("Reliability diagram")
            draw(tab, charts.reliability_diagram(bins, cset, cmode, highlight) if len(bins) else None,
                 "No reliability bins for this dataset and prompt mode (runs before they were stored have none).")
            tab.caption("Accuracy against mean top-1 confidence in each of the ECE's 15 confidence bins; a point's "
                        "area is its number of items (slides for zero-shot WSI), the dashed diagonal perfect "
                        "calibration.")
    share(**{k: v for k, v in picks.items() if not (k == "section" and v == SECTIONS[0])})
    st.stop()
if view == "Models":
    share()
    st.header("What each model costs to run")
    costs = tables.cost_table(load("load_costs"))
    if costs.empty:
        st.info("No measured embedding yet: the cost of a model is stored whenever a run embeds images or tiles.")
    else:
        st.table(costs.set_index("model"))
        st.caption("From each model's newest run that embedded something, per device and precision: images/s and "
                   "tiles/s of embedding (decode, preprocess and forward pass; median over that run's datasets), "
                   "peak memory while embedding, and the run's wall time on those datasets (model loading and "
                   "scoring included).")
    cards = [{"model": id, "title": card.get("title", ""), "paper": card.get("paper", ""),
              "license": card.get("license", ""), "url": card.get("url", "")} for id, card in catalog["models"].items()]
    st.subheader("Model cards")
    st.dataframe(pd.DataFrame(cards), hide_index=True, width="stretch")
    st.stop()
if view == "Cervix benchmark":
    share()
    st.header("Cervix benchmark")
    cmode = st.radio("Prompt mode", tables.MODES, horizontal=True, key="cervix_mode")
    cervix = tables.group_table(measured, catalog, "cervix", cmode)
    if cervix.empty:
        st.warning("No cervix results yet: `pathboard run --models all --datasets cervix --data-root DIR`.")
    else:
        st.html('<div style="overflow-x:auto">' + tables.to_html(cervix, {c: c for c in cervix["value"].columns})
                + "</div>")
        st.caption("Each column is one cervix dataset and task with that task's headline metric (balanced "
                   "accuracy; quadratic κ for ordinal grading such as TissueNet; Dice for segmentation; mean "
                   "Recall@K for retrieval) and its bootstrap 95% CI; the best value per column is in bold. "
                   "Few-shot columns have no prompt mode.")
        sets = tables.group_datasets(catalog, measured, "cervix")
        chosen = st.selectbox("Drill down into a dataset", sets, key="cervix_dataset")
        entry = catalog["datasets"].get(chosen, {})
        st.subheader(f"{chosen}: {entry.get('title', '')}")
        st.dataframe(tables.dataset_detail(measured, chosen, cmode), width="stretch")
    st.stop()

tasks = sorted(set(long["task"]))
c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
task = c2.selectbox("Task", tasks, index=from_url("task", tasks, tables.DEFAULT_TASK), key="task")
metrics = tables.task_metrics(long, task)
metric = c1.selectbox("Metric", metrics, index=from_url("metric", metrics, tables.DEFAULT_METRIC), key="metric")
mode = c3.radio("Prompt mode", tables.MODES, index=from_url("mode", tables.MODES), horizontal=True, key="mode",
                help=tables.MODE_HELP)
include_reported = c4.checkbox("Show reported (published) rows", value=URL.get("reported", "1") != "0",
                               key="reported")
st.caption(f"Prompt modes: {tables.MODE_HELP}.")

available = tables.dataset_order(tables.select(long, metric, task, mode, include_reported=include_reported))
if st.session_state.get("datasets_offered") != available:  # a new task, metric or mode: all its datasets
    linked = [d for d in URL.get("datasets", "").split(",") if d in available] \
        if "datasets_offered" not in st.session_state else []
    st.session_state["datasets_offered"] = available
    st.session_state["datasets"] = linked or available
datasets = st.multiselect("Datasets (columns)", available, key="datasets")
selection = {"task": task, "metric": metric, "mode": mode, "reported": "1" if include_reported else "0",
             "datasets": ",".join(datasets) if datasets != available else ""}
share(**selection)

lower = tables.lower_is_better(metric)
try:
    comparisons = tables.between(load("load_comparisons"), measured)  # of the cells shown: this protocol and run
except (PathboardError, duckdb.Error, OSError):
    comparisons = pd.DataFrame()


#: bar-chart panels at most: a page of 35 panels helps nobody, and draws in ~0.3 s
BAR_PANELS = 6


@st.cache_data(show_spinner=False, max_entries=48, ttl=3600)
def overview(stamp, protocol, run, metric, task, mode, datasets, include_reported, highlight,
             _long, _comparisons, _reported, _catalog) -> dict:
    """What the Overview computes for one selection, once per database version: the table, its ties and
    HTML, measured vs published and the bar chart. The frames (``_`` arguments, not hashed) follow from
    the database stamp, protocol and run, which are part of the key."""
    lower = tables.lower_is_better(metric)
    table = tables.comparison_table(_long, metric, task, mode, list(datasets), include_reported)
    out = {"table": table, "versus": tables.published_vs_measured(_long, metric, task, mode, list(datasets))}
    if not table.empty and datasets:
        published = _reported.drop_duplicates("dataset").set_index("dataset")["published_as"]
        titles = {id: f"published as {name}" for id, name in published.items()}
        titles.update({id: entry.get("title") or id for id, entry in _catalog["datasets"].items()})
        tied = tables.tied_with_best(table, _comparisons, metric, task, mode, lower) if len(_comparisons) else None
        out["html"] = tables.to_html(table, titles, lower=lower, highlight=highlight, tied=tied)
        out["bars"] = charts.bars(_long, task, metric, mode, list(datasets)[:BAR_PANELS], highlight,
                                  include_reported)
    return out


parts = overview(db_stamp(db), protocol, run, metric, task, mode, tuple(datasets), include_reported, highlight,
                 long, comparisons, reported, catalog)
table = parts["table"]
if table.empty or not datasets:
    st.warning("Nothing to show for this selection.")
else:
    st.html(parts["html"])
    st.caption(f"{metric} with bootstrap 95% CI [low, high]; the best value per column is in bold "
               f"({'lowest' if lower else 'highest'}); ≈ marks a measured model whose paired difference from "
               "the column's best measured model is not significant (Holm-adjusted bootstrap): tied with it. "
               "Avg is the mean over the datasets shown, only for rows with a value in every column.")
    from pathboard.leaderboard import export

    e1, e2, e3, e4 = st.columns(4)
    with_ci = e4.checkbox("CIs in the exports", value=True, key="export_ci")
    stem = f"pathboard-{task}-{metric}-{mode}".replace("/", "_")
    for column, fmt, suffix, mime in ((e1, "csv", "csv", "text/csv"), (e2, "markdown", "md", "text/markdown"),
                                      (e3, "latex", "tex", "text/x-tex")):
        column.download_button(f"Download {dict(csv='CSV', markdown='Markdown', latex='LaTeX')[fmt]}",
                               functools.partial(export.export, table, fmt, ci=with_ci, lower=lower),
                               file_name=f"{stem}.{suffix}", mime=mime, key=f"export_{fmt}")  # built on click
    command = ["pathboard", "export", "--format", "latex", "--db", db, "--task", task, "--metric", metric,
               "--mode", mode] + (["--datasets", ",".join(datasets)] if datasets != available else []) \
        + (["--protocol", protocol] if protocol != "default" else []) + (["--run", run] if run != "latest" else []) \
        + ([] if include_reported else ["--no-reported"]) + ([] if with_ci else ["--no-ci"])
    st.caption("The same table from a script: `" + " ".join(shlex.quote(str(c)) for c in command) + "`")
    st.subheader("Pictures")
    pictures = ["Bars with 95% CIs", "Radar across datasets", "Significance matrix"]
    # only the open tab's chart is built (a tab switch reruns): Altair takes ~0.1 s a chart
    t1, t2, t3 = st.tabs(pictures, default=tab_default("picture", pictures), key="picture", on_change="rerun")
    if t1.open:
        draw(t1, parts["bars"], "No numbers to draw for this selection.", quiet=True)
        if len(datasets) > BAR_PANELS:
            t1.caption(f"The first {BAR_PANELS} of the {len(datasets)} datasets shown: narrow *Datasets (columns)* "
                       "to draw others.")
    if t2.open:
        chart = charts.radar(measured, task, metric, mode, datasets, highlight)
        if chart is not None:
            t2.altair_chart(chart)
            t2.caption("One polygon per measured model with a value on every dataset shown.")
        else:
            t2.caption("A radar needs at least three datasets and a measured model with a value on each.")
    if t3.open:
        with_pairs = set(comparisons["dataset"]) if len(comparisons) else set()
        compared = [d for d in datasets if d in with_pairs]
        if compared:
            mdataset = t3.selectbox("Dataset", compared, index=from_url("matrix_dataset", compared),
                                    key="matrix_dataset")
            selection["matrix_dataset"] = mdataset
            chart = charts.significance_matrix(comparisons, metric, task, mode, mdataset)
            draw(t3, chart, "No paired comparisons here.", quiet=True)
            t3.caption("Row model minus column model on the items both scored; outlined with a star: significant "
                       "(Holm-adjusted paired bootstrap).")
        else:
            t3.caption("No paired comparisons for this selection (they need two measured models on the same "
                       "items).")
    share(**selection, picture=st.session_state.get("picture") if st.session_state.get("picture") != pictures[0]
          else None)
shown = tables.select(reported, metric, task, mode, datasets)
if include_reported and len(shown):
    sources = "; ".join(dict.fromkeys(f"{paper}, {name}" for paper, name in zip(shown["paper"], shown["table"])))
    note = (" The paper's CRC-100K column is its zero-shot test split, CRC-VAL-HE-7K (`crc-val-he-7k`)."
            if "crc-val-he-7k" in set(shown["dataset"]) else "")
    st.caption("*Reported* rows (grey, italic, \"(reported)\") are published numbers, copied as published and "
               f"not re-measured; no CIs were published. Source: {sources}.{note}")
elif include_reported:
    st.caption("Reported (published) numbers exist only for: "
               + "; ".join(", ".join(sel) for sel in tables.reported_selections(reported)) + ".")

versus = parts["versus"]
if include_reported and not versus.empty:
    st.subheader("Measured vs published")
    st.html(tables.vs_published_html(versus))
    st.caption("Each measured model beside the published number of the same weights (reported.csv's `model_id`) "
               "on the same dataset, task and metric; Δ is measured minus published, *in CI* whether the published "
               "value lies inside the measured 95% CI. *protocol* says whether the "
               "published protocol is pathboard's default one (same), is not (differs) or is not fully stated "
               "(unknown), and names a prompt-mode mismatch or a measured non-default protocol; the numbered "
               "notes give each source, its split and protocol. A Δ across different protocols is not an error "
               "of either number.")

# each expander's content is built only while it is open (opening or closing one reruns the script)
provenance = st.expander("Provenance of the measured numbers", key="show_provenance", on_change="rerun")
if provenance.open:
    prov = tables.provenance(long, metric, task, mode, datasets)
    if prov.empty:
        provenance.write("No measured numbers in this selection.")
    else:
        provenance.dataframe(prov, hide_index=True, width="stretch")

paired = st.expander("Paired comparisons (bootstrap, same resamples)", key="show_pairs", on_change="rerun")
if paired.open:
    pairs = tables.comparison_rows(comparisons, metric, task, mode, datasets) if len(comparisons) else \
        pd.DataFrame()
    if pairs.empty:
        paired.write("No paired comparisons for this selection (they need two measured models on the same items).")
    else:
        paired.caption("Difference in the selected metric on the items both models scored, with its 95% CI over "
                       "shared bootstrap resamples (of patients or slides where items have them); p is the "
                       "two-sided bootstrap p-value, and a difference is significant when its Holm-adjusted p is "
                       "below 0.05 across every comparison of this task, metric and prompt mode.")
        paired.dataframe(pairs, hide_index=True, width="stretch")

recall = st.expander("Per-class recall", key="show_recall", on_change="rerun")
if recall.open:
    recall_sets = tables.recall_datasets(measured, task, mode)
    if not recall_sets:
        recall.write("No measured per-class recalls for this task and prompt mode.")
    else:
        dataset = recall.selectbox("Dataset", recall_sets, key="recall_dataset")
        recall.dataframe(tables.per_class_recall(long, task, mode, dataset), width="stretch")
