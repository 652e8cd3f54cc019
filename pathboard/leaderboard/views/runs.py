"""Runs: every run's status, command, duration, cells, skipped cells and unreadable files with their reasons,
package versions and embedding cost."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pathboard.leaderboard import data
from pathboard.leaderboard.state import Selection


def render(sel: Selection) -> None:
    sel.share()
    st.header("Runs")
    runs = sel.runs
    if runs.empty:
        st.info(f"No runs in {sel.db} yet: `pathboard run` records one per command.")
        return
    shown = runs.assign(seconds=runs["seconds"].round(1))
    st.dataframe(shown[["run_id", "started_at", "status", "seconds", "cells", "skipped", "failed_files",
                        "image_forwards", "device", "precision", "host", "command"]], hide_index=True, width="stretch")
    st.caption("Every `pathboard run` on this database, newest first: its status (`interrupted` when its process "
               "died), wall seconds, cells stored, cells skipped and files it could not read. Pick a run in the "
               "sidebar's *Run* selector to see only its numbers in the other views.")
    ids = list(runs["run_id"])
    chosen = st.selectbox("Run details", ids, index=sel.index("detail", ids), key="detail")
    sel.share(detail=chosen)
    detail = data.run_detail(sel.db, chosen)
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
