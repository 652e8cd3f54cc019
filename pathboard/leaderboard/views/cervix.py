"""Cervix benchmark: every cervix dataset and task with its headline metric, and a drill-down per dataset."""
from __future__ import annotations

import streamlit as st

from pathboard.leaderboard import frames, markup
from pathboard.leaderboard.state import Selection


def render(sel: Selection) -> None:
    sel.share()
    st.header("Cervix benchmark")
    mode = st.radio("Prompt mode", frames.MODES, horizontal=True, key="cervix_mode")
    table = frames.group_table(sel.measured, sel.catalog, "cervix", mode)
    if table.empty:
        st.warning("No cervix results yet: `pathboard run --models all --datasets cervix --data-root DIR`.")
        return
    st.html('<div style="overflow-x:auto">' + markup.to_html(table, {c: c for c in table["value"].columns})
            + "</div>")
    st.caption("Each column is one cervix dataset and task with that task's headline metric (balanced "
               "accuracy; quadratic κ for ordinal grading such as TissueNet; Dice for segmentation; mean "
               "Recall@K for retrieval) and its bootstrap 95% CI; the best value per column is in bold. "
               "Few-shot columns have no prompt mode.")
    sets = frames.group_datasets(sel.catalog, sel.measured, "cervix")
    chosen = st.selectbox("Drill down into a dataset", sets, key="cervix_dataset")
    entry = sel.catalog["datasets"].get(chosen, {})
    st.subheader(f"{chosen}: {entry.get('title', '')}")
    st.dataframe(frames.dataset_detail(sel.measured, chosen, mode), width="stretch")
