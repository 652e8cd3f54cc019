"""The Streamlit leaderboard: ``streamlit run app.py -- --db FILE`` (or ``pathboard leaderboard``).

The database comes from ``--db`` after ``--``, else $PATHBOARD_DB, else ``pathboard.duckdb``. This script
draws the sidebar, builds the shared :class:`~pathboard.leaderboard.state.Selection` and hands it to the
chosen view (:mod:`pathboard.leaderboard.views`); the reads are in :mod:`pathboard.leaderboard.data`, the
tables in :mod:`~pathboard.leaderboard.frames` and :mod:`~pathboard.leaderboard.markup`.
"""
from __future__ import annotations

import argparse
import os
import sys

import duckdb
import pandas as pd
import streamlit as st

from pathboard.core.errors import PathboardError
from pathboard.core.store import queries
from pathboard.leaderboard import data, frames
from pathboard.leaderboard.state import Selection
from pathboard.leaderboard.views import analyses, cervix, models, overview, runs, slides

VIEWS = {"Overview": overview.render, "Cervix benchmark": cervix.render, "Analyses": analyses.render,
         "Slides": slides.render, "Models": models.render, "Runs": runs.render}


def db_path(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    parser.add_argument("--db", default=None)
    args, _ = parser.parse_known_args(argv)
    return args.db or os.environ.get("PATHBOARD_DB") or "pathboard.duckdb"


def sidebar(db: str, url: dict) -> Selection:
    """The view, protocol, run and highlighted model, and the numbers they select."""
    blank = Selection(db, "", "default", {}, "latest", None, queries.empty_measured(), pd.DataFrame(), {},
                      pd.DataFrame(), url)
    names = list(VIEWS)
    view = st.sidebar.radio("View", names, index=blank.index("view", names), key="view")
    protocols = data.protocols(db)
    protocol = "default"
    if len(protocols) > 1:  # numbers of different protocols are never set side by side
        protocol = st.sidebar.selectbox("Protocol", list(protocols), index=blank.index("protocol", list(protocols)),
                                        format_func=protocols.get, key="protocol")
    try:
        run_rows = data.runs(db)
    except (PathboardError, duckdb.Error, OSError):
        run_rows = pd.DataFrame(columns=["run_id"])
    run_ids = ["latest"] + list(run_rows["run_id"])
    run = st.sidebar.selectbox("Run", run_ids, index=blank.index("run", run_ids), key="run",
                               format_func=lambda r: "newest result of every cell" if r == "latest" else r,
                               help="Show the numbers of one run only, instead of every cell's newest result")
    try:
        measured = data.measured(db, protocol) if run == "latest" else data.run_results(db, run, protocol)
    except (PathboardError, duckdb.Error, OSError) as exc:
        st.error(f"cannot read results: {str(exc).splitlines()[0]}")
        measured = None
    reported = frames.reported_for(data.reported(), protocol)
    catalog = data.catalog(db) if measured is not None else {"models": {}, "datasets": {}, "tasks": {}}
    if measured is not None and measured.empty and run != "latest":
        st.info(f"Run {run} stored no headline results of this protocol; the published numbers are shown below.")
    elif measured is not None and measured.empty:
        st.info(f"No measured results in {db} yet: run `pathboard run` to add some. "
                "The published numbers are shown below.")
    measured = queries.empty_measured() if measured is None else measured
    highlights = ["(none)"] + sorted(set(measured["model"])) + sorted(set(reported["model"]) - set(measured["model"]))
    highlight = st.sidebar.selectbox("Highlight model", highlights, index=blank.index("highlight", highlights),
                                     key="highlight", help="Give this model's rows a background, as papers mark "
                                     "their own model")
    st.sidebar.caption(f"Protocol: {protocols.get(protocol, protocol)}")
    return Selection(db, view, protocol, protocols, run, None if highlight == "(none)" else highlight, measured,
                     reported, catalog, run_rows, url)


st.set_page_config(page_title="pathboard leaderboard", layout="wide")
st.title("Pathology CLIP leaderboard")
selection = sidebar(db_path(sys.argv[1:]), dict(st.query_params))
VIEWS[selection.view](selection)
