"""Analyses: one tab each for prompt sensitivity, robustness, few-shot curves, the MI-Zero top-K curve, and
calibration and AUROC. One analysis at a time: only the open tab's section is read and drawn (switching tabs
reruns), and every choice is carried by the URL (``&section=`` and each section's widgets)."""
from __future__ import annotations

import streamlit as st

from pathboard.leaderboard import charts, data, frames
from pathboard.leaderboard.state import Selection, draw

FEWSHOT_TASKS = ("fewshot", "fewshot-wsi")
SECTIONS = ["Prompt sensitivity", "Robustness", "Few-shot curves", "MI-Zero top-K", "Calibration and AUROC"]


class Picks:
    """The section's widgets, each reopened from the URL and remembered for the link."""

    def __init__(self, sel: Selection, section: str):
        self.sel, self.chosen = sel, {"section": section}

    def __call__(self, where, widget: str, label: str, options: list, key: str, **kwargs):
        value = getattr(where, widget)(label, options, index=self.sel.index(key, options), key=key, **kwargs)
        self.chosen[key] = value
        return value


def none_yet(sel: Selection, where, task: str | tuple[str, ...], text: str) -> None:
    """Nothing of ``task`` under this protocol: say how to get some, or that other protocols have some."""
    other = data.count_variants(sel.db, task, "all") if sel.protocol != "all" else 0
    if other:
        name = task if isinstance(task, str) else "/".join(task)
        text = (f"No {name} results under this protocol; {other} result row(s) under other protocols (other "
                "prompts or task options): choose one in the sidebar's *Protocol* selector.")
    where.info(text)


def prompt_sensitivity(sel: Selection, tab, choose: Picks) -> None:
    draws = data.variants(sel.db, "prompt-sensitivity", sel.protocol)
    if draws.empty:
        none_yet(sel, tab, "prompt-sensitivity", "No prompt-sensitivity results yet: `pathboard run` scores it "
                 "wherever zero-shot applies.")
        return
    p1, p2 = tab.columns(2)
    dataset = choose(p1, "selectbox", "Dataset", sorted(set(draws["dataset"])), "prompt_dataset")
    families = {"all": None, "templates alone": "templates", "synonyms alone": "synonyms"}
    family = choose(p2, "radio", "Draws", list(families), "prompt_family", horizontal=True)
    sensitivity = frames.sensitivity_table(draws[draws["dataset"] == dataset], data.rankings(sel.db))
    tab.table(sensitivity.drop(columns="dataset").set_index("model"))
    chart = charts.sensitivity_boxes(draws, dataset, family=families[family], highlight=sel.highlight)
    draw(tab, chart, "No prompt draws for this dataset.")
    tab.caption("Balanced accuracy re-scored under many prompt draws on the cached embeddings: every "
                "template alone, every class synonym alone, and seeded random subsets of 1–16 prompts per "
                "class. Median [25th, 75th percentile] and range over all draws; Kendall τ is the mean rank "
                "correlation of the models' order between pairs of draws, *ranked first* the share of draws "
                "in which a model is best.")


def robustness(sel: Selection, tab, choose: Picks) -> None:
    tab.subheader("Robustness to image perturbations")
    robust = data.variants(sel.db, "robustness", sel.protocol)
    if robust.empty:
        none_yet(sel, tab, "robustness", "No robustness results yet: `pathboard run --tasks robustness` (it "
                 "embeds each image once per perturbation).")
        return
    r1, r2, r3 = tab.columns(3)
    dataset = choose(r1, "selectbox", "Dataset", sorted(set(robust["dataset"])), "robust_dataset")
    figures = {"balanced_accuracy_drop": "change in balanced accuracy", "flip_rate": "prediction flip rate",
               "cosine": "cosine clean vs perturbed"}
    figure = choose(r2, "radio", "Figure", list(figures), "robust_figure", format_func=figures.get)
    mode = choose(r3, "radio", "Prompt mode", frames.modes_present(robust[robust["dataset"] == dataset]),
                  "robust_mode", horizontal=True)
    tab.table(frames.robustness_table(robust, dataset, mode, figure))
    draw(tab, charts.robustness_drops(robust, dataset, mode, figure, sel.highlight), "Nothing to draw.", quiet=True)
    tab.caption("Zero-shot under seeded perturbations (JPEG, blur, HED stain jitter, brightness, contrast, "
                "rotation, flip, downscaling), with 95% CIs from a paired bootstrap. The chart draws the change, "
                "perturbed minus clean: a bar below 0 is a model that got worse (the table's drop is clean minus "
                "perturbed). The flip rate is the share of items whose predicted class changed.")


def fewshot_curves(sel: Selection, tab, choose: Picks) -> None:
    fewshot = data.variants(sel.db, FEWSHOT_TASKS, sel.protocol)
    if fewshot.empty:
        none_yet(sel, tab, FEWSHOT_TASKS, "No few-shot results yet: `pathboard run --tasks fewshot` on a dataset "
                 "with a training split.")
        return
    dataset = choose(tab, "selectbox", "Dataset", sorted(set(fewshot["dataset"])), "fewshot_dataset")
    chart = charts.fewshot_curves(fewshot, dataset, "balanced_accuracy", highlight=sel.highlight)
    draw(tab, chart, "No few-shot curve for this dataset.")
    tab.caption("Balanced accuracy against k labelled examples per class: the median over the seeded draws "
                "of k examples, with the band from the 25th to the 75th percentile; solid prototype, dashed "
                "linear probe, dotted ABMIL (the legend shows each).")


def topk_curve(sel: Selection, tab, choose: Picks) -> None:
    topk = data.variants(sel.db, "zeroshot-wsi", sel.protocol)
    if topk.empty:
        none_yet(sel, tab, "zeroshot-wsi", "No zero-shot slide results yet: `pathboard run --tasks zeroshot-wsi` "
                 "on a slide dataset.")
        return
    k1, k2 = tab.columns(2)
    dataset = choose(k1, "selectbox", "Dataset", sorted(set(topk["dataset"])), "topk_dataset")
    mode = choose(k2, "radio", "Prompt mode", frames.modes_present(topk[topk["dataset"] == dataset]),
                  "topk_mode", horizontal=True)
    chart = charts.topk_curve(topk, dataset, "balanced_accuracy", mode, sel.highlight)
    draw(tab, chart, "No top-K curve for this dataset.")
    tab.caption("Balanced accuracy of slides classified by the mean of their K tiles most similar to each "
                "class (MI-Zero), against K, with its bootstrap 95% CI; the headline uses K = 50.")


def calibration(sel: Selection, tab, choose: Picks) -> None:
    c1, c2, c3 = tab.columns(3)
    task = choose(c1, "radio", "Task", ["zeroshot", "zeroshot-wsi"], "calib_task", horizontal=True)
    measured = sel.measured
    of_task = measured[(measured["task"] == task) & measured["metric"].isin(frames.CALIBRATION_METRICS)]
    mode = choose(c2, "radio", "Prompt mode", frames.modes_present(of_task), "calib_mode", horizontal=True)
    datasets = frames.dataset_order(of_task[of_task["prompt_mode"] == mode])
    if not datasets:
        tab.info("No calibration metrics for this task and prompt mode yet.")
        return
    dataset = choose(c3, "selectbox", "Dataset", datasets, "calib_dataset")
    table = frames.calibration_table(of_task[of_task["dataset"] == dataset], task, mode)
    tab.table(table.droplevel("dataset"))
    tab.caption("Of softmax(logit scale × cosine) at each model's own learned logit scale: ECE (15 bins), "
                "Brier score (sum over classes), NLL (lower is better) and AUROC (binary, or macro "
                "one-vs-rest; higher is better), with bootstrap 95% CIs"
                + (", of the slide scores at the headline K." if task == "zeroshot-wsi" else "."))
    bins = data.variants(sel.db, task, sel.protocol, "reliability")
    tab.subheader("Reliability diagram")
    draw(tab, charts.reliability_diagram(bins, dataset, mode, sel.highlight) if len(bins) else None,
         "No reliability bins for this dataset and prompt mode (runs before they were stored have none).",
         width="content")  # square: the diagonal of perfect calibration at 45°
    tab.caption("Accuracy against mean top-1 confidence in each of the ECE's 15 confidence bins; a point's "
                "area is its number of items (slides for zero-shot WSI), the dashed diagonal perfect "
                "calibration.")


SECTION_VIEWS = dict(zip(SECTIONS, [prompt_sensitivity, robustness, fewshot_curves, topk_curve, calibration]))


def render(sel: Selection) -> None:
    tabs = st.tabs(SECTIONS, default=sel.tab_default("section", SECTIONS), key="section", on_change="rerun")
    choose = Picks(sel, st.session_state.get("section") or SECTIONS[0])
    for tab, section in zip(tabs, SECTIONS):
        if tab.open:
            SECTION_VIEWS[section](sel, tab, choose)
    sel.share(**{k: v for k, v in choose.chosen.items() if not (k == "section" and v == SECTIONS[0])})
