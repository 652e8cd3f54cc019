"""How slide models (TITAN, PRISM: :mod:`pathboard.core.interfaces.slide_model`) enter a plan.

- **Remote code.** A model that runs code from its weights repository runs only when the user allowed it
  (``--trust-remote-code ID`` or the config file's ``trust_remote_code``); otherwise it is skipped with one line
  naming the flag. Allowing a slide model allows the patch encoder it loads from its own repository.
- **Patch encoder.** A slide model's patch encoder is resolved like any model (``--weights``, config, HF cache),
  unless ``--features`` gives every slide of the run's datasets already made features.
- **Features** (``--features [DATASET=]DIR``, TRIDENT's layout): checked against each slide model's patch encoder,
  magnification and tile size; a mismatch is refused in one line.
- **Cells.** A slide model scores only tasks that score whole slides (``Task.slide_level``), at its own tiling.
"""
from __future__ import annotations

import dataclasses

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.slide_model import describe_tiling, is_slide_model
from pathboard.core.interfaces.weights import Weights, config_path
from pathboard.core.media.features import FeatureFolder


def trust_line(model, repo: str = "") -> str:
    where = f" ({repo})" if repo else ""
    return (f"{model.id}: it runs model code from its weights repository{where} at run time; allow it with "
            f"--trust-remote-code {model.id} (or trust_remote_code = [\"{model.id}\"] in {config_path()})")


def allowed(models, trusted: frozenset[str]) -> frozenset[str]:
    """The ids allowed to run remote code: those trusted, and the patch encoders of trusted slide models."""
    return frozenset(trusted) | {m.patch_encoder for m in models if m.id in trusted and is_slide_model(m)
                                 and getattr(m, "patch_encoder", "")}


def feature_folders(entries, dataset_ids) -> dict[str, FeatureFolder]:
    """``--features DIR`` (key "*": every dataset) or ``--features DATASET=DIR``, each opened and checked."""
    out = {}
    for entry in entries:
        key, sep, path = str(entry).partition("=")
        if sep and key in dataset_ids:
            out[key] = FeatureFolder.open(path)
        elif sep and not key.startswith(("/", ".", "~")) and "/" not in key:
            raise PathboardError(f"--features {entry}: dataset {key} is not in this run")
        else:
            out["*"] = FeatureFolder.open(entry)
    return out


def patch_encoders(models, weights: dict, user_weights: dict, features: dict, slide_datasets, skipped: list,
                   resolve) -> dict:
    """Slide model id -> its patch encoder's spec; the encoder's weights go into ``weights`` (unless ``features``
    give every slide dataset's tiles). A slide model whose encoder is unknown or absent is skipped with its line;
    one whose ``features`` do not match is refused (PathboardError)."""
    out = {}
    for m in [m for m in models if m.id in weights and is_slide_model(m)]:
        try:
            encoder = plugins.get("model", getattr(m, "patch_encoder", ""))
        except PathboardError as exc:
            skipped.append(f"{m.id}: its patch encoder is not registered ({exc})")
            del weights[m.id]
            continue
        name = getattr(encoder, "trident_name", "") or encoder.id
        for folder in features.values():
            line = folder.mismatch(m.id, name, m.tiling)
            if line:
                raise PathboardError(f"{line}; pass features made with {encoder.id} at {describe_tiling(m.tiling)}, "
                                     "or leave --features out to embed the tiles")
        covered = "*" in features or all(d in features for d in slide_datasets)
        if encoder.id not in weights and not covered:
            override = user_weights.get(encoder.id)
            if override is None and getattr(encoder, "repo", None) and encoder.repo == getattr(m, "repo", None):
                override = user_weights.get(m.id)  # TITAN's patch encoder comes from TITAN's own folder
            try:
                weights[encoder.id] = resolve(encoder, Weights(*override) if override else None)
            except PathboardError as exc:
                skipped.append(f"{m.id}: its patch encoder {encoder.id} is not here: {exc}")
                del weights[m.id]
                continue
        out[m.id] = encoder
    return out


def slide_inputs(model, inputs):
    """A slide model's cell reads its patch encoder's tiles at the model's own tiling."""
    if is_slide_model(model) and inputs.tiles is not None:
        return dataclasses.replace(inputs, tiles=model.tiling)
    return inputs


def capable(model, task, dataset) -> tuple[bool, str]:
    """(whether ``model`` can score ``task`` on ``dataset``, what it lacks): a slide model scores the whole-slide
    tasks on slide datasets only, where its slide embedding stands for what patch models pool from tiles."""
    if is_slide_model(model):
        if not getattr(task, "slide_level", False) or "slides" not in dataset.facts:
            return False, "slide"
        have = set(model.capabilities) | {"image"}
    else:
        have = set(model.capabilities)
    missing = set(task.requires) - have
    return not missing, ", ".join(sorted(missing))
