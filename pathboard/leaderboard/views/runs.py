"""Runs: every run's status, command, duration, cells, skipped cells and unreadable files with their reasons,
package versions and embedding cost."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pathboard.leaderboard import data, frames
from pathboard.leaderboard.state import Selection


def render(sel: Selection) -> None:
    sel.share()
    st.header("Runs")
    runs = sel.runs
    if runs.empty:
        st.info(f"No runs in {sel.db} yet: `pathboard run` records one per command.")
        return
    st.dataframe(frames.runs_table(runs), hide_index=True, width="stretch",
                 column_config={"command": st.column_config.TextColumn("command", width="large")})
    st.caption("Every `pathboard run` on this database, newest first: its status (`interrupted` when its process "
               "died), how long it took, the cells it stored, its skip reasons (each may cover several cells), the "
               "files it could not read, and what it embedded (0 when every embedding was cached). Pick a run in "
               "the sidebar's *Run* selector to see only its numbers in the other views.")
    ids = list(runs["run_id"])
    chosen = st.selectbox("Run details", ids, index=sel.index("detail", ids), key="detail")
    sel.share(detail=chosen)
    detail = data.run_detail(sel.db, chosen)
    st.code(detail["command"] or "(no command recorded)", language="bash", wrap_lines=True)
    left, right = st.columns(2)
    left.subheader("Provenance")
    left.table(frames.provenance_table(detail["provenance"]))
    right.subheader("Packages")
    right.table(pd.DataFrame({"version": list(detail["packages"].values())}, index=list(detail["packages"])))
    st.subheader("What embedding cost")
    if detail["costs"].empty:
        st.write("Nothing was embedded in this run (every embedding was cached).")
    else:
        st.table(frames.run_costs(detail["costs"]))
    st.subheader(f"Skipped cells ({len(detail['skipped'])})")
    for line in detail["skipped"]:
        st.markdown(f"- {line}")
    st.subheader(f"Unreadable files ({len(detail['files'])})")
    if detail["files"].empty:
        st.write("None.")
    else:
        st.dataframe(detail["files"], hide_index=True, width="stretch")
