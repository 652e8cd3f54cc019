"""The Streamlit leaderboard: ``streamlit run app.py -- --db FILE`` (or ``pathboard leaderboard``).

The database comes from ``--db`` after ``--``, else $PATHBOARD_DB, else ``pathboard.duckdb``.
All table logic lives in ``tables.py``; this file only draws widgets.
"""
from __future__ import annotations

import argparse
import os
import sys

import duckdb
import pandas as pd
import streamlit as st

from pathboard.core.errors import PathboardError
from pathboard.leaderboard import tables


def db_path(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    parser.add_argument("--db", default=None)
    args, _ = parser.parse_known_args(argv)
    return args.db or os.environ.get("PATHBOARD_DB") or "pathboard.duckdb"


st.set_page_config(page_title="pathboard leaderboard", layout="wide")
st.title("Pathology CLIP leaderboard")

db = db_path(sys.argv[1:])
protocols = tables.protocol_choices(db)
protocol = "default"
if len(protocols) > 1:  # numbers of different protocols are never set side by side
    protocol = st.sidebar.selectbox("Protocol", list(protocols), format_func=protocols.get, key="protocol")
try:
    measured = tables.load_measured(db, protocol)
except (PathboardError, duckdb.Error, OSError) as exc:
    st.error(f"cannot read results: {str(exc).splitlines()[0]}")
    measured = None
reported = tables.load_reported()
catalog = tables.load_catalog(db) if measured is not None else {"models": {}, "datasets": {}, "tasks": {}}
if measured is not None and measured.empty:
    st.info(f"No measured results in {db} yet: run `pathboard run` to add some. "
            "The published numbers are shown below.")
measured = tables.empty_measured() if measured is None else measured
long = pd.concat([measured, reported], ignore_index=True)

view = st.sidebar.radio("View", ["Overview", "Cervix benchmark", "Analyses", "Models"], key="view")
if view == "Analyses":
    st.header("Prompt sensitivity")
    sensitivity = tables.sensitivity_table(tables.load_variants(db, "prompt-sensitivity", protocol),
                                           tables.load_rankings(db))
    if sensitivity.empty:
        st.info("No prompt-sensitivity results yet: `pathboard run` scores it wherever zero-shot applies.")
    else:
        st.table(sensitivity.set_index(["dataset", "model"]))
        st.caption("Balanced accuracy re-scored under many prompt draws on the cached embeddings: every template "
                   "alone, every class synonym alone, and seeded random subsets of 1–16 prompts per class. Median "
                   "[25th, 75th percentile] and range over all draws; Kendall τ is the mean rank correlation of the "
                   "models' order between pairs of draws, *ranked first* the share of draws in which a model is best.")
    st.header("Robustness to image perturbations")
    robust = tables.load_variants(db, "robustness", protocol)
    if robust.empty:
        st.info("No robustness results yet: `pathboard run --tasks robustness` (it embeds each image once per "
                "perturbation).")
    else:
        r1, r2, r3 = st.columns(3)
        rset = r1.selectbox("Dataset", sorted(set(robust["dataset"])), key="robust_dataset")
        figures = {"balanced_accuracy_drop": "drop in balanced accuracy", "flip_rate": "prediction flip rate",
                   "cosine": "cosine clean vs perturbed"}
        figure = r2.radio("Figure", list(figures), format_func=figures.get, key="robust_figure")
        rmode = r3.radio("Prompt mode", tables.modes_present(robust[robust["dataset"] == rset]), horizontal=True,
                         key="robust_mode")
        st.table(tables.robustness_table(robust, rset, rmode, figure))
        st.caption("Zero-shot under seeded perturbations (JPEG, blur, HED stain jitter, brightness, contrast, "
                   "rotation, flip, downscaling), with 95% CIs from a paired bootstrap: the drop is clean minus "
                   "perturbed, the flip rate the share of items whose predicted class changed.")
    st.header("Calibration and AUROC")
    c1, c2 = st.columns(2)
    ctask = c1.radio("Task", ["zeroshot", "zeroshot-wsi"], horizontal=True, key="calib_task")
    cmode = c2.radio("Prompt mode", tables.modes_present(measured[measured["task"] == ctask]), horizontal=True,
                     key="calib_mode")
    calibration = tables.calibration_table(measured, ctask, cmode)
    if calibration.empty:
        st.info("No calibration metrics for this task and prompt mode yet.")
    else:
        st.table(calibration)
        st.caption("Of softmax(logit scale × cosine) at each model's own learned logit scale: ECE (15 bins), "
                   "Brier score (sum over classes), NLL (lower is better) and AUROC (binary, or macro one-vs-rest; "
                   "higher is better), with bootstrap 95% CIs.")
    st.stop()
if view == "Models":
    st.header("What each model costs to run")
    costs = tables.cost_table(tables.load_costs(db))
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
task = c2.selectbox("Task", tasks, index=tasks.index(tables.DEFAULT_TASK), key="task")
metrics = tables.task_metrics(long, task)
metric = c1.selectbox("Metric", metrics, index=metrics.index(tables.DEFAULT_METRIC)
                      if tables.DEFAULT_METRIC in metrics else 0, key="metric")
mode = c3.radio("Prompt mode", tables.MODES, horizontal=True, key="mode", help=tables.MODE_HELP)
include_reported = c4.checkbox("Show reported (published) rows", value=True, key="reported")
st.caption(f"Prompt modes: {tables.MODE_HELP}.")

available = tables.dataset_order(tables.select(long, metric, task, mode, include_reported=include_reported))
if st.session_state.get("datasets_offered") != available:  # a new task, metric or mode: all its datasets
    st.session_state["datasets_offered"] = available
    st.session_state["datasets"] = available
datasets = st.multiselect("Datasets (columns)", available, key="datasets")

table = tables.comparison_table(long, metric, task, mode, datasets, include_reported)
if table.empty or not datasets:
    st.warning("Nothing to show for this selection.")
else:
    published = reported.drop_duplicates("dataset").set_index("dataset")["published_as"]
    titles = {id: f"published as {name}" for id, name in published.items()}
    titles.update({id: entry.get("title") or id for id, entry in catalog["datasets"].items()})
    st.html(tables.to_html(table, titles, lower=tables.lower_is_better(metric)))
    st.caption(f"{metric} with bootstrap 95% CI [low, high]; the best value per column is in bold "
               f"({'lowest' if tables.lower_is_better(metric) else 'highest'}). "
               "Avg is the mean over the datasets shown, only for rows with a value in every column.")
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

versus = tables.published_vs_measured(long, metric, task, mode, datasets)
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

with st.expander("Provenance of the measured numbers"):
    prov = tables.provenance(long, metric, task, mode, datasets)
    if prov.empty:
        st.write("No measured numbers in this selection.")
    else:
        st.dataframe(prov, hide_index=True, width="stretch")

with st.expander("Paired comparisons (bootstrap, same resamples)"):
    try:
        pairs = tables.comparison_rows(tables.load_comparisons(db), metric, task, mode, datasets)
    except (PathboardError, duckdb.Error, OSError):
        pairs = pd.DataFrame()
    if pairs.empty:
        st.write("No paired comparisons for this selection (they need two measured models on the same items).")
    else:
        st.caption("Difference in the selected metric on the items both models scored, with its 95% CI over "
                   "shared bootstrap resamples (of patients or slides where items have them); p is the two-sided "
                   "bootstrap p-value, and a difference is significant when its Holm-adjusted p is below 0.05 "
                   "across every comparison of this task, metric and prompt mode.")
        st.dataframe(pairs, hide_index=True, width="stretch")

with st.expander("Per-class recall"):
    recall_sets = tables.recall_datasets(measured, task, mode)
    if not recall_sets:
        st.write("No measured per-class recalls for this task and prompt mode.")
    else:
        dataset = st.selectbox("Dataset", recall_sets, key="recall_dataset")
        st.dataframe(tables.per_class_recall(long, task, mode, dataset), width="stretch")

