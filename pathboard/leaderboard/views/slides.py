"""Slides: per slide, the MI-Zero heatmap over its thumbnail, its top tiles read back from the slide, predicted
vs true class; segmentation's predicted and true masks side by side."""
from __future__ import annotations

import os

import duckdb
import pandas as pd
import streamlit as st

from pathboard.core.errors import PathboardError
from pathboard.leaderboard import data, tiles
from pathboard.leaderboard.state import Selection


def render(sel: Selection) -> None:
    st.header("Slide drill-down")
    try:
        artifacts = data.artifacts(sel.db, sel.protocol)
    except (PathboardError, duckdb.Error, OSError):
        artifacts = pd.DataFrame(columns=["model", "dataset", "task", "prompt_mode", "item", "kind", "path"])
    if artifacts.empty:
        sel.share()
        st.info("No slide pictures yet: zero-shot WSI (`--tasks zeroshot-wsi`) writes a heatmap and the top tiles "
                "of every slide, segmentation (`--tasks segmentation`) its predicted and true masks.")
        return
    s1, s2, s3, s4 = st.columns(4)
    sets = sorted(set(artifacts["dataset"]))
    dataset = s1.selectbox("Dataset", sets, index=sel.index("slide_dataset", sets), key="slide_dataset")
    rows = artifacts[artifacts["dataset"] == dataset]
    models = sorted(set(rows["model"]))
    model = s2.selectbox("Model", models, index=sel.index("slide_model", models, sel.highlight), key="slide_model")
    rows = rows[rows["model"] == model]
    modes = sorted(set(rows["prompt_mode"]))
    mode = s3.radio("Prompt mode", modes, index=sel.index("slide_mode", modes), horizontal=True, key="slide_mode")
    rows = rows[rows["prompt_mode"] == mode]
    items = sorted(set(rows["item"]))
    item = s4.selectbox("Slide", items, index=sel.index("slide", items), key="slide")
    sel.share(slide_dataset=dataset, slide_model=model, slide_mode=mode, slide=item)
    rows = rows[rows["item"] == item].set_index("kind")["path"]
    if "topk" in rows:
        facts, shown = tiles.top_tiles(rows["topk"])
        verdict = "correct" if facts["predicted"] == facts["truth"] else "wrong"
        st.markdown(f"**Predicted** {facts['predicted']} · **true** {facts['truth']} ({verdict}), MI-Zero top-"
                    f"{facts['pooled_k']} pooling")
    left, right = st.columns([3, 2])
    if "heatmap" in rows:
        if os.path.isfile(rows["heatmap"]):
            left.image(rows["heatmap"], caption="Cosine similarity of each tile to the predicted class over the "
                       "slide's thumbnail, yellow (the slide's lowest) to red (its highest): the colour bar under "
                       "it gives both values", width="stretch")
        else:
            left.warning(f"the heatmap file is gone: {rows['heatmap']}")
    if "topk" in rows:
        right.subheader("Top tiles")
        if facts.get("error"):
            right.warning(facts["error"])
        for start in range(0, len(shown), 4):
            for col, (tile, similarity) in zip(right.columns(4), shown[start:start + 4]):
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
