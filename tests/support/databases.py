from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store
from pathboard.leaderboard import frames

APP = Path(frames.__file__).with_name("app.py")


# The published table (weighted F1, prompt ensemble, zero-shot), Avg column included.
PUBLISHED = {
    "VirCLIP": (0.762, 0.439, 0.909, 0.703),
    "ConText-L-14-336px": (0.738, 0.668, 0.748, 0.718),
    "LIPBaC-B-16": (0.693, 0.451, 0.623, 0.589),
    "ConText-B-32-Knowledge": (0.647, 0.485, 0.767, 0.633),
    "KEP(Quilt)ViT-B-32": (0.421, 0.526, 0.609, 0.519),
    "PathgenCLIP": (0.606, 0.506, 0.639, 0.584),
    "KEP(Quilt)": (0.527, 0.577, 0.656, 0.587),
    "CONCH": (0.608, 0.412, 0.774, 0.598),
}


PUBLISHED_COLUMNS = ["wsss4luad", "sicapv2", "crc-val-he-7k"]


# The KEEP README's tables (MAGIC-AI4Med/KEEP, "Performance Comparisons"): PLIP, QuiltNet, MI-Zero (Pub),
# CONCH, KEEP. Zero-shot WSI subtyping, balanced accuracy; CAMELYON16 zero-shot segmentation, Dice.
KEEP_MODELS = ["PLIP", "QuiltNet", "MI-Zero (Pub)", "CONCH", "KEEP"]


KEEP_IDS = ["plip", "quiltnet-b32", "", "conch", "keep"]


KEEP_SUBTYPING = {
    "tcga-brca": (0.519, 0.500, 0.633, 0.727, 0.774),
    "tcga-nsclc": (0.699, 0.667, 0.753, 0.901, 0.902),
    "tcga-rcc": (0.735, 0.755, 0.908, 0.921, 0.926),
    "ebrains-rare30": (0.096, 0.093, 0.325, 0.371, 0.456),
}


KEEP_SEGMENTATION = {"camelyon16": (0.253, 0.157, 0.186, 0.292, 0.361)}


# (model, dataset, mode) -> balanced accuracy (value, lo, hi) of zero-shot WSI subtyping, for make_vs_db
SLIDES = {
    ("keep", "tcga-nsclc", "ensemble"): (0.874, 0.831, 0.912),
    ("conch", "tcga-nsclc", "ensemble"): (0.912, 0.880, 0.940),
    ("conch", "tcga-brca", "ensemble"): (0.690, 0.650, 0.720),
    ("conch", "tcga-nsclc", "single"): (0.850, 0.810, 0.889),
    ("biomedclip", "tcga-nsclc", "ensemble"): (0.611, 0.560, 0.660),  # no published row of its weights
}


CUSTOM = ("conch", "tcga-nsclc", "ensemble", (0.930, 0.900, 0.955))  # scored with custom prompts


# (model, mode) -> weighted_f1 (value, lo, hi) and cohen_kappa value on crc-val-he-7k.
MEASURED = {
    ("quiltnet-b32", "ensemble"): ((0.612, 0.581, 0.642), 0.55),
    ("quiltnet-b32", "single"): ((0.571, 0.538, 0.603), 0.49),
    ("plip", "ensemble"): ((0.655, 0.623, 0.688), 0.60),
    ("plip", "single"): ((0.498, 0.462, 0.531), 0.41),
}


def make_db(path: Path) -> Path:
    """Two measured models on crc-val-he-7k, both prompt modes, without any model."""
    store = Store(path)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    for (model, mode), ((value, lo, hi), kappa) in MEASURED.items():
        cell = {"model": model, "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": mode,
                "weights_fingerprint": "abcdef0123456789abcdef", "prompt_hash": "def", "manifest_hash": "ghi",
                "n_items": 32, "n_failed": 0, "device": "cpu", "precision": "fp32"}
        store.add_cell(run_id, cell, [Metric("weighted_f1", value, lo, hi, 32),
                                      Metric("cohen_kappa", kappa, kappa - 0.05, kappa + 0.05, 32),
                                      Metric("recall/TUM", value + 0.1, value, value + 0.2, 32)])
    return path


def make_vs_db(path: Path) -> Path:
    """make_db plus zero-shot WSI subtyping cells (SLIDES) of models with published rows in the KEEP
    table, and one CONCH cell under a non-default protocol (custom prompts)."""
    make_db(path)
    store = Store(path)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    cells = [(key, stats, True) for key, stats in SLIDES.items()] + [(CUSTOM[:3], CUSTOM[3], False)]
    for (model, dataset, mode), (value, lo, hi), default in cells:
        cell = {"model": model, "dataset": dataset, "task": "zeroshot-wsi", "prompt_mode": mode,
                "weights_fingerprint": "0123456789abcdef0123", "prompt_hash": "p" if default else "custom",
                "manifest_hash": "m", "n_items": 150, "n_failed": 0, "device": "cpu", "precision": "fp32",
                "protocol_hash": "default" if default else "c0ffee00" * 8, "default_protocol": default,
                "protocol": '{"prompts": "%s"}' % ("built-in" if default else "custom")}
        store.add_cell(run_id, cell, [Metric("balanced_accuracy", value, lo, hi, 150)])
    return path


def rows(**cells) -> pd.DataFrame:
    """A measured long frame from {(model, dataset): value} (ensemble, zeroshot, weighted_f1)."""
    return pd.DataFrame([{"model": m, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                          "source": "measured"} for (m, d), v in cells["cells"].items()])


def app_test(monkeypatch, argv_db=None, env_db=None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", ["app.py"] + (["--db", str(argv_db)] if argv_db else []))
    if env_db:
        monkeypatch.setenv("PATHBOARD_DB", str(env_db))
    else:
        monkeypatch.delenv("PATHBOARD_DB", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_html(at) -> str:
    (html,) = [h.value for h in at.html if "pathboard-leaderboard" in h.value]
    return html


def _table(values: dict) -> pd.DataFrame:
    """A comparison_table of {(model, dataset): value} (zeroshot, ensemble, weighted F1)."""
    long = pd.DataFrame([{"model": m, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                          "source": "measured"} for (m, d), v in values.items()])
    return frames.comparison_table(long, "weighted_f1", "zeroshot", "ensemble", ["a", "b"], include_reported=False)


def _comparisons(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"model_a": a, "model_b": b, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 32,
                          "significant": sig} for a, b, d, sig in rows])


#: zero-shot WSI balanced accuracy on TCGA-CESC of two slide encoders and two patch models pooled by MI-Zero
SLIDE_MODELS = {"titan": (0.71, 0.62, 0.80), "prism": (0.64, 0.55, 0.73), "conch": (0.58, 0.49, 0.67),
                "plip": (0.41, 0.33, 0.50)}
SLIDE_CATALOG = {
    "models": {"titan": {"title": "TITAN", "kind": "slide encoder", "patch_encoder": "conch-v1.5",
                         "tiling": "20x, 512 px"},
               "prism": {"title": "PRISM", "kind": "slide encoder", "patch_encoder": "virchow",
                         "tiling": "20x, 224 px"},
               "conch": {"title": "CONCH"}, "plip": {"title": "PLIP"}},
    "datasets": {"tcga-cesc": {"title": "TCGA-CESC subtypes", "groups": ["cervix"], "level": "wsi"}},
    "tasks": {"zeroshot-wsi": {"title": "Zero-shot WSI classification"}}, "protocols": {}}


def make_slide_db(path: Path) -> Path:
    """Zero-shot WSI cells of slide models (their protocol records pooling: slide-encoder with the model, as the
    engine writes it) and of patch models, under one protocol, with the run's catalog."""
    store = Store(path)
    run_id = store.start_run(command="test", device="cpu", precision="fp32", catalog=SLIDE_CATALOG)
    for model, (value, lo, hi) in SLIDE_MODELS.items():
        method = {"spec": "x", **({"pooling": "slide-encoder"} if SLIDE_CATALOG["models"][model].get("patch_encoder")
                                   else {})}
        cell = {"model": model, "dataset": "tcga-cesc", "task": "zeroshot-wsi", "prompt_mode": "ensemble",
                "weights_fingerprint": "0123456789abcdef0123", "prompt_hash": "p", "manifest_hash": "m",
                "n_items": 60, "n_failed": 0, "device": "cpu", "precision": "fp32", "protocol_hash": "default",
                "default_protocol": True, "protocol": json.dumps({"prompts": "built-in", "model": method})}
        store.add_cell(run_id, cell, [Metric("balanced_accuracy", value, lo, hi, 60)])
    return path
