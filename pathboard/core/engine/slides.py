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


def trust_line(model) -> str:
    """Why ``model`` does not run, and how to allow it: one line naming the flag."""
    repo = getattr(model, "repo", "")
    where = f" ({repo})" if repo else ""
    return (f"{model.id}: it runs model code from its weights repository{where} at run time; allow it with "
            f"--trust-remote-code {model.id} (or trust_remote_code = [\"{model.id}\"] in {config_path()})")


def same_repository(encoder, model) -> bool:
    """Whether a slide model's patch encoder is loaded from the model's own repository (TITAN's CONCH v1.5)."""
    return bool(getattr(encoder, "repo", None)) and encoder.repo == getattr(model, "repo", None)


def allowed(models, trusted: frozenset[str]) -> frozenset[str]:
    """The ids allowed to run remote code: those trusted, and the patch encoder of a trusted slide model when it is
    loaded from that model's own repository (TITAN's CONCH v1.5)."""
    out = set(trusted)
    for m in (m for m in models if m.id in trusted and is_slide_model(m) and getattr(m, "patch_encoder", "")):
        encoder = plugins.registry("model").get(m.patch_encoder)
        if encoder is not None and same_repository(encoder, m):
            out.add(encoder.id)
    return frozenset(out)


def encoder_name(encoder) -> str:
    """What TRIDENT calls a patch encoder's features (``conch_v15``), else its id."""
    return getattr(encoder, "trident_name", "") or encoder.id


def feature_folders(entries, dataset_ids) -> dict[tuple[str, str], FeatureFolder]:
    """(dataset id or "*", encoder) -> the folder of ``--features DIR`` (every dataset) or ``--features
    DATASET=DIR``, each opened and checked; two folders of one encoder for the same datasets are refused."""
    out: dict[tuple[str, str], FeatureFolder] = {}
    for entry in entries:
        key, sep, path = str(entry).partition("=")
        if sep and key in dataset_ids:
            scope, folder = key, FeatureFolder.open(path)
        elif sep and not key.startswith(("/", ".", "~")) and "/" not in key:
            raise PathboardError(f"--features {entry}: dataset {key} is not in this run")
        else:
            scope, folder = "*", FeatureFolder.open(entry)
        if (scope, folder.encoder) in out:
            raise PathboardError(f"--features {entry}: a second folder of {folder.encoder} features for "
                                 f"{'every dataset' if scope == '*' else scope} (the first: "
                                 f"{out[(scope, folder.encoder)].root}); give one per encoder")
        out[(scope, folder.encoder)] = folder
    return out


def folders_of(features: dict, encoder) -> dict[str, FeatureFolder]:
    """Dataset id ("*": every dataset) -> the features folder made with ``encoder``."""
    name = encoder_name(encoder)
    return {scope: folder for (scope, made_with), folder in features.items() if made_with == name}


def folder_for(p, model_id: str, dataset_id: str) -> FeatureFolder | None:
    """The features folder a slide model reads ``dataset_id``'s tiles from, or None (it embeds them)."""
    encoder = p.patch_encoders.get(model_id)
    mine = folders_of(p.features, encoder) if encoder is not None else {}
    return mine.get(dataset_id) or mine.get("*")


def patch_encoders(models, weights: dict, user_weights: dict, features: dict, slide_datasets, skipped: list,
                   resolve, allow: frozenset[str] = frozenset()) -> dict:
    """Slide model id -> its patch encoder's spec; the encoder's weights go into ``weights`` (unless ``features``
    made with it give every slide dataset's tiles). A slide model whose encoder is unknown, absent, or runs remote
    code that was not allowed is skipped with its line. Features made with a model's encoder at another
    magnification, tile size or overlap, and features no slide model of the run reads, are refused (PathboardError)."""
    out = {}
    for m in [m for m in models if m.id in weights and is_slide_model(m)]:
        try:
            encoder = plugins.get("model", getattr(m, "patch_encoder", ""))
        except PathboardError as exc:
            skipped.append(f"{m.id}: its patch encoder is not registered ({exc})")
            del weights[m.id]
            continue
        if getattr(encoder, "remote_code", False) and encoder.id not in allow:  # no way round the opt-in
            skipped.append(f"{m.id}: its patch encoder {trust_line(encoder)}")
            del weights[m.id]
            continue
        mine = folders_of(features, encoder)
        for folder in mine.values():
            line = folder.mismatch(m.id, encoder_name(encoder), m.tiling)
            if line:
                raise PathboardError(f"{line}; pass features made with {encoder.id} at {describe_tiling(m.tiling)}, "
                                     "or leave --features out to embed the tiles")
        covered = "*" in mine or all(d in mine for d in slide_datasets)
        if encoder.id not in weights and not covered:
            override = user_weights.get(encoder.id)
            if override is None and same_repository(encoder, m):
                override = user_weights.get(m.id)  # TITAN's patch encoder comes from TITAN's own folder
            try:
                weights[encoder.id] = resolve(encoder, Weights(*override) if override else None)
            except PathboardError as exc:
                skipped.append(f"{m.id}: its patch encoder {encoder.id} is not here: {exc}")
                del weights[m.id]
                continue
        out[m.id] = encoder
    read = {encoder_name(e) for e in out.values()}
    for (_, made_with), folder in features.items():
        if out and made_with not in read:
            reads = ", ".join(f"{m} reads {encoder_name(e)}" for m, e in out.items())
            raise PathboardError(f"--features {folder.root}: holds {made_with} features, which no slide model of this "
                                 f"run reads ({reads})")
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
