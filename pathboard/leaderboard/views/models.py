"""Models: each model's measured cost (images/s, peak memory) and its card."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pathboard.leaderboard import data, frames
from pathboard.leaderboard.state import Selection


def render(sel: Selection) -> None:
    sel.share()
    st.header("What each model costs to run")
    costs = frames.cost_table(data.costs(sel.db))
    if costs.empty:
        st.info("No measured embedding yet: the cost of a model is stored whenever a run embeds images or tiles.")
    else:
        st.table(costs.set_index("model"))
        st.caption("From each model's newest run that embedded something, per device and precision: images/s and "
                   "tiles/s of embedding (decode, preprocess and forward pass; median over that run's datasets), "
                   "peak memory while embedding, and the run's wall time on those datasets (model loading and "
                   "scoring included).")
    cards = [{"model": id, "kind": card.get("kind", "patch (CLIP-style)"),
              "patch encoder": f"{card['patch_encoder']} ({card.get('tiling', '')})" if card.get("patch_encoder")
              else "itself", "title": card.get("title", ""), "paper": card.get("paper", ""),
              "license": card.get("license", ""), "url": card.get("url", "")}
             for id, card in sel.catalog["models"].items()]
    st.subheader("Model cards")
    st.dataframe(pd.DataFrame(cards), hide_index=True, width="stretch")
    slide = [c for c in cards if c["patch encoder"] != "itself"]
    if slide:
        st.caption("Slide encoders read the tile features of their patch encoder at its tiling (tiles embedded once "
                   "and shared): " + "; ".join(f"{c['model']} reads {c['patch encoder']}" for c in slide) + ".")
