"""Overview: the paper table (models x datasets + Avg for one task, metric and prompt mode) with ties, its
exports, pictures (bars, radar, significance matrix), measured vs published, provenance, paired comparisons
and per-class recall."""
from __future__ import annotations

import functools
import shlex

import duckdb
import pandas as pd
import streamlit as st

from pathboard.core.errors import PathboardError
from pathboard.leaderboard import charts, data, export, frames, markup
from pathboard.leaderboard.data import db_stamp
from pathboard.leaderboard.state import Selection, draw

#: bar-chart panels at most: a page of 35 panels helps nobody, and draws in ~0.3 s
BAR_PANELS = 6
PICTURES = ["Bars with 95% CIs", "Radar across datasets", "Significance matrix"]


@st.cache_data(show_spinner=False, max_entries=48, ttl=3600)
def overview(stamp, protocol, run, metric, task, mode, datasets, include_reported, highlight,
             _long, _comparisons, _reported, _catalog) -> dict:
    """What the Overview computes for one selection, once per database version: the table, its ties and
    HTML, measured vs published and the bar chart. The frames (``_`` arguments, not hashed) follow from
    the database stamp, protocol and run, which are part of the key."""
    lower = frames.lower_is_better(metric)
    table = export.annotated(_long, _catalog, metric, task, mode, list(datasets), include_reported)
    out = {"table": table, "versus": frames.published_vs_measured(_long, metric, task, mode, list(datasets))}
    if not table.empty and datasets:
        published = _reported.drop_duplicates("dataset").set_index("dataset")["published_as"]
        titles = {id: f"published as {name}" for id, name in published.items()}
        titles.update({id: entry.get("title") or id for id, entry in _catalog["datasets"].items()})
        tied = frames.tied_with_best(table, _comparisons, metric, task, mode, lower) if len(_comparisons) else None
        out["html"] = markup.to_html(table, titles, lower=lower, highlight=highlight, tied=tied,
                                     sizes=table.attrs["sizes"], caveats=table.attrs["caveats"],
                                     pooling=table.attrs.get("pooling"))
        out["bars"] = charts.bars(_long, task, metric, mode, list(datasets)[:BAR_PANELS], highlight,
                                  include_reported)
    return out


def choose_table(sel: Selection, long: pd.DataFrame) -> dict:
    """The table's widgets (task, metric, prompt mode, published rows, datasets), reopened from the URL. The
    prompt mode is asked only of a task that uses prompts; published-only datasets are opt-in columns."""
    tasks = sorted(set(long["task"]))
    c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
    task = c2.selectbox("Task", tasks, index=sel.index("task", tasks, frames.DEFAULT_TASK), key="task")
    metrics = frames.task_metrics(long, task)
    opening = frames.default_metric(sel.reported, task)  # the paper's own metric under its protocol pack
    metric = c1.selectbox("Metric", metrics, index=sel.index("metric", metrics, opening), key="metric")
    prompted = frames.uses_prompts(long, task)
    mode = c3.radio("Prompt mode", frames.MODES, index=sel.index("mode", frames.MODES), horizontal=True, key="mode",
                    help=frames.MODE_HELP) if prompted else frames.DEFAULT_MODE
    include_reported = c4.checkbox("Show reported (published) rows", value=sel.url.get("reported", "1") != "0",
                                   key="reported")
    rows = frames.select(long, metric, task, mode, include_reported=include_reported)
    measured = set(frames.default_columns(rows))
    only_published = [d for d in frames.dataset_order(rows) if d not in measured]
    published_only = c4.checkbox(f"Published-only columns ({len(only_published)})",
                                 value=sel.url.get("published_only") == "1", key="published_only",
                                 disabled=not only_published,
                                 help="Columns no measured model has: every measured row's Avg would be empty") \
        if include_reported else False
    st.caption(f"Prompt modes: {frames.MODE_HELP}." if prompted else f"{task} uses no prompts: no prompt mode.")
    available = frames.default_columns(rows, published_only)
    if st.session_state.get("datasets_offered") != available:  # a new task, metric or mode: all its datasets
        linked = [d for d in sel.url.get("datasets", "").split(",") if d in available] \
            if "datasets_offered" not in st.session_state else []
        st.session_state["datasets_offered"] = available
        st.session_state["datasets"] = linked or available
    datasets = st.multiselect("Datasets (columns)", available, key="datasets", format_func=frames.short_id)
    return {"task": task, "metric": metric, "mode": mode, "include_reported": include_reported,
            "published_only": published_only, "datasets": datasets, "available": available, "prompted": prompted}


def exports(sel: Selection, table: pd.DataFrame, chosen: dict) -> None:
    """Download buttons (built on click) and the `pathboard export` command of the same table."""
    task, metric, mode, datasets = chosen["task"], chosen["metric"], chosen["mode"], chosen["datasets"]
    lower = frames.lower_is_better(metric)
    e1, e2, e3, e4 = st.columns(4)
    with_ci = e4.checkbox("CIs in the exports", value=True, key="export_ci")
    stem = f"pathboard-{task}-{metric}-{mode}".replace("/", "_")
    for column, fmt, suffix, mime in ((e1, "csv", "csv", "text/csv"), (e2, "markdown", "md", "text/markdown"),
                                      (e3, "latex", "tex", "text/x-tex")):
        column.download_button(f"Download {dict(csv='CSV', markdown='Markdown', latex='LaTeX')[fmt]}",
                               functools.partial(export.export, table, fmt, ci=with_ci, lower=lower),
                               file_name=f"{stem}.{suffix}", mime=mime, key=f"export_{fmt}")
    command = ["pathboard", "export", "--format", "latex", "--db", sel.db, "--task", task, "--metric", metric,
               "--mode", mode] + (["--datasets", ",".join(datasets)] if datasets != chosen["available"] else []) \
        + (["--protocol", sel.protocol] if sel.protocol != "default" else []) \
        + (["--run", sel.run] if sel.run != "latest" else []) \
        + ([] if chosen["include_reported"] else ["--no-reported"]) + ([] if with_ci else ["--no-ci"]) \
        + (["--published-only"] if chosen["published_only"] else [])
    st.caption("The same table from a script: `" + " ".join(shlex.quote(str(c)) for c in command) + "`")


def pictures(sel: Selection, parts: dict, comparisons: pd.DataFrame, chosen: dict, shared: dict) -> None:
    """Bars, radar and significance matrix: only the open tab's chart is built (a tab switch reruns)."""
    task, metric, mode, datasets = chosen["task"], chosen["metric"], chosen["mode"], chosen["datasets"]
    st.subheader("Pictures")
    bars, radar, matrix = st.tabs(PICTURES, default=sel.tab_default("picture", PICTURES), key="picture",
                                  on_change="rerun")
    if bars.open:
        draw(bars, parts["bars"], "No numbers to draw for this selection.", quiet=True)
        if len(datasets) > BAR_PANELS:
            bars.caption(f"The first {BAR_PANELS} of the {len(datasets)} datasets shown: narrow *Datasets (columns)* "
                         "to draw others.")
    if radar.open:
        chart = charts.radar(sel.measured, task, metric, mode, datasets, sel.highlight)
        if chart is not None:
            draw(radar, chart, "", width="content")  # round, not stretched into an ellipse
            radar.caption("One polygon per measured model with a value on every dataset shown.")
        else:
            radar.caption("A radar needs at least three datasets and a measured model with a value on each.")
    if matrix.open:
        with_pairs = set(comparisons["dataset"]) if len(comparisons) else set()
        compared = [d for d in datasets if d in with_pairs]
        if compared:
            dataset = matrix.selectbox("Dataset", compared, index=sel.index("matrix_dataset", compared),
                                       key="matrix_dataset")
            shared["matrix_dataset"] = dataset
            draw(matrix, charts.significance_matrix(comparisons, metric, task, mode, dataset),
                 "No paired comparisons here.", quiet=True, width="content")  # square cells
            matrix.caption("Row model minus column model on the items both scored; outlined with a star: significant "
                           "(Holm-adjusted paired bootstrap).")
        else:
            matrix.caption("No paired comparisons for this selection (they need two measured models on the same "
                           "items).")


def published(sel: Selection, parts: dict, chosen: dict) -> None:
    """Where the reported rows come from, and each measured model beside its published number."""
    shown = frames.select(sel.reported, chosen["metric"], chosen["task"], chosen["mode"], chosen["datasets"])
    if chosen["include_reported"] and len(shown):
        sources = "; ".join(dict.fromkeys(f"{paper}, {name}" for paper, name in zip(shown["paper"], shown["table"])))
        note = (" The paper's CRC-100K column is its zero-shot test split, CRC-VAL-HE-7K (`crc-val-he-7k`)."
                if "crc-val-he-7k" in set(shown["dataset"]) else "")
        st.caption("*Reported* rows (grey, italic, \"(reported)\") are published numbers, copied as published and "
                   f"not re-measured; no CIs were published. Source: {sources}.{note}")
    elif chosen["include_reported"]:
        st.caption("Reported (published) numbers exist only for: "
                   + "; ".join(", ".join(s) for s in frames.reported_selections(sel.reported)) + ".")
    versus = parts["versus"]
    if chosen["include_reported"] and not versus.empty:
        st.subheader("Measured vs published")
        st.html(markup.vs_published_html(versus))
        st.caption("Each measured model beside the published number of the same weights (reported.csv's "
                   "`model_id`) on the same dataset, task and metric; Δ is measured minus published, *in CI* whether "
                   "the published value lies inside the measured 95% CI. *protocol* is *same* only when the "
                   "measured cell ran the paper's own protocol pack (`pathboard run --protocol PACK`; choose the "
                   "pack under Protocol in the sidebar), *differs* when it did not or the prompt modes differ, and "
                   "*unknown* when no pack reproduces a protocol its source does not fully state; the numbered notes "
                   "give each source, its split, protocol and pack. A Δ across different protocols is not an error "
                   "of either number.")


def details(sel: Selection, comparisons: pd.DataFrame, chosen: dict) -> None:
    """Provenance, paired comparisons and per-class recall: each built only while its expander is open."""
    task, metric, mode, datasets = chosen["task"], chosen["metric"], chosen["mode"], chosen["datasets"]
    provenance = st.expander("Provenance of the measured numbers", key="show_provenance", on_change="rerun")
    if provenance.open:
        prov = frames.provenance(sel.long, metric, task, mode, datasets)
        if prov.empty:
            provenance.write("No measured numbers in this selection.")
        else:
            provenance.dataframe(prov, hide_index=True, width="stretch")
    paired = st.expander("Paired comparisons (bootstrap, same resamples)", key="show_pairs", on_change="rerun")
    if paired.open:
        pairs = frames.comparison_rows(comparisons, metric, task, mode, datasets) if len(comparisons) else \
            pd.DataFrame()
        if pairs.empty:
            paired.write("No paired comparisons for this selection (they need two measured models on the same "
                         "items).")
        else:
            paired.caption("Difference in the selected metric on the items both models scored, with its 95% CI over "
                           "shared bootstrap resamples (of patients or slides where items have them); p is the "
                           "two-sided bootstrap p-value, and a difference is significant when its Holm-adjusted p "
                           "is below 0.05 across every comparison of this task, metric and prompt mode.")
            paired.dataframe(pairs, hide_index=True, width="stretch")
    recall = st.expander("Per-class recall", key="show_recall", on_change="rerun")
    if recall.open:
        recall_sets = frames.recall_datasets(sel.measured, task, mode)
        if not recall_sets:
            recall.write("No measured per-class recalls for this task and prompt mode.")
        else:
            dataset = recall.selectbox("Dataset", recall_sets, key="recall_dataset")
            recall.dataframe(frames.per_class_recall(sel.long, task, mode, dataset), width="stretch")


def render(sel: Selection) -> None:
    long = sel.long
    chosen = choose_table(sel, long)
    task, metric, mode, datasets = chosen["task"], chosen["metric"], chosen["mode"], chosen["datasets"]
    shared = {"task": task, "metric": metric, "mode": mode if chosen["prompted"] else None,
              "reported": "1" if chosen["include_reported"] else "0",
              "published_only": "1" if chosen["published_only"] else None,
              "datasets": ",".join(datasets) if datasets != chosen["available"] else ""}
    sel.share(**shared)
    try:  # the comparisons of the cells shown: this protocol and run
        comparisons = frames.between(data.comparisons(sel.db), sel.measured)
    except (PathboardError, duckdb.Error, OSError):
        comparisons = pd.DataFrame()
    parts = overview(db_stamp(sel.db), sel.protocol, sel.run, metric, task, mode, tuple(datasets),
                     chosen["include_reported"], sel.highlight, long, comparisons, sel.reported, sel.catalog)
    if parts["table"].empty or not datasets:
        st.warning("Nothing to show for this selection.")
    else:
        st.html(parts["html"])
        lower = frames.lower_is_better(metric)
        st.caption(f"{metric} with bootstrap 95% CI [low, high]; the best value per column is in bold "
                   f"({'lowest' if lower else 'highest'}); ≈ marks a measured model whose paired difference from "
                   "the column's best measured model is not significant (Holm-adjusted bootstrap): tied with it. "
                   "Under each dataset: n, the items its measured numbers were computed on. "
                   + " ".join(parts["table"].attrs["notes"]))
        exports(sel, parts["table"], chosen)
        pictures(sel, parts, comparisons, chosen, shared)
        picture = st.session_state.get("picture")
        sel.share(**shared, picture=picture if picture != PICTURES[0] else None)
    published(sel, parts, chosen)
    details(sel, comparisons, chosen)
