"""``pathboard doctor``: can each requested model and dataset be used here, and offline?

Nothing is downloaded and no model is loaded: weights are looked up exactly as a run looks them
up, with the hub switched off.
"""
from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from dataclasses import dataclass

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.weights import Weights, overrides


@dataclass
class Check:
    kind: str
    id: str
    ok: bool
    lines: list[str]
    #: what is wrong, in short, when not ok (the lines give every detail, how to get it included)
    reason: str = ""


@contextmanager
def _hub_off():
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def access_lines(spec, allowed: frozenset[str] = frozenset()) -> list[str]:
    """What a model needs beyond its files: its patch encoder (slide models), its licence and gating, and whether
    it runs its repository's own code, and how to allow that."""
    from pathboard.core.interfaces.slide_model import describe_tiling, is_slide_model
    from pathboard.core.interfaces.weights import config_path

    card, lines = spec.card, []
    if is_slide_model(spec):
        tiling = describe_tiling(spec.tiling)
        lines.append(f"kind       slide encoder over {spec.patch_encoder} tile features ({tiling})")
    if card.license or card.gated:
        gate = f"; gated: accept it at {card.url}, then `hf auth login`" if card.gated else ""
        lines.append(f"licence    {card.license or 'not stated'}{gate}")
    if getattr(spec, "remote_code", False):
        state = "allowed" if spec.id in allowed else (
            f"not allowed: pass --trust-remote-code {spec.id}, or add trust_remote_code = [\"{spec.id}\"] to "
            f"{config_path()}")
        lines.append(f"code       runs the model code of its weights repository, from the local copy ({state})")
    return lines


def check_model(spec, user_weights: dict, allowed: frozenset[str] = frozenset()) -> Check:
    lines = [f"plugin     {spec.plugin}", *access_lines(spec, allowed)]
    missing = [m for m in spec.requires if importlib.util.find_spec(m) is None]
    lines.append(f"imports    {'missing ' + ', '.join(missing) if missing else 'ok'}"
                 + (f" ({spec.install_hint})" if missing and spec.install_hint else ""))
    override = user_weights.get(spec.id)
    try:
        with _hub_off():
            w = spec.resolve(Weights(*override) if override else None)
        lines.append(f"weights    {w.path} ({w.origin})")
        found = True
    except PathboardError as exc:
        why = str(exc).removeprefix(f"weights for {spec.id} not found: ").split(" (HF_HUB_OFFLINE is set")[0]
        lines.append(f"weights    not found: {why}")
        found = False
    lines.append(f"offline    {'yes' if found and not missing else 'no'}")
    reason = f"imports missing {', '.join(missing)}" if missing else "" if found else f"weights not found: {why}"
    return Check("model", spec.id, found and not missing, lines, _short(reason))


def check_dataset(dataset, root) -> Check:
    if root is None:
        return Check("dataset", dataset.id, False, ["folder     no data root (--data-root or PATHBOARD_DATA)"],
                     "no data root")
    try:
        manifest = dataset.manifest(root)
    except PathboardError as exc:
        return Check("dataset", dataset.id, False, [f"folder     {exc}"],
                     _short(str(exc).removeprefix(f"{dataset.id}: ").split(" (expected layout")[0]))
    expected = getattr(dataset, "expected_files", None)
    count = f"{len(manifest)} files" + (f" of {expected} expected" if expected else "")
    if expected and len(manifest) < expected:
        count += " (a partial copy: results will not match the papers)"
    return Check("dataset", dataset.id, True, [f"folder     {manifest.root}", f"files      {count}"])


def _short(reason: str) -> str:
    """A reason's first clause, at most 110 characters."""
    reason = " ".join(reason.split()).split("; ")[0]
    return reason if len(reason) <= 110 else reason[:109] + "…"


def run_doctor(models: list, datasets: list, root, weights_cli=()) -> list[Check]:
    from pathboard.core.engine.slides import allowed
    from pathboard.core.interfaces.weights import trusted

    user_weights = overrides(weights_cli)
    allow = allowed(models, trusted())
    return [check_model(m, user_weights, allow) for m in models] + [check_dataset(d, root) for d in datasets]
