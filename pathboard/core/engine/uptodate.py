"""Which cells of a plan are already scored: a rerun scores only what changed.

A cell's key is everything its numbers follow from, all known before anything runs: the model (id,
weights fingerprint, :meth:`ModelSpec.identity`, precision), the dataset's manifest and those of every
other dataset the cell reads (a declared training set), the task (id, its plugin distribution and that
distribution's version), the protocol pack it runs under (and its plugin's version), its option values, the
prompt mode and the exact prompts, and what the cell
embeds (tiling, which items, perturbations and their seed); and a slide model's tiles: its patch encoder (id,
weights, identity), or the ``--features`` files it read. It is stored with the cell.

A cell is *up to date* when the newest stored cell of its slot (model, dataset, task, prompt mode,
option values, prompts, protocol pack) has the same key: it is neither scored nor written again. A changed option or
prompt set changes only the keys of the cells it touches; a new pathboard or plugin release changes its
tasks' keys (code changed under one version: ``--rescore``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from pathboard.core.engine.plan import Cell, Plan
from pathboard.core.engine.slides import folder_for
from pathboard.core.interfaces.options import options_json, plain
from pathboard.core.science import grouping


def cell_key(cell: Cell, p: Plan, precision: str) -> str:
    """The sha256 of everything the cell's numbers follow from (see the module's docstring)."""
    from pathboard.core.engine.steps import tiling_for

    model, dataset, task = cell.model, cell.dataset, cell.task
    identity = getattr(model, "identity", None)
    prompts = p.prompts.get(dataset.id)
    inputs = cell.inputs
    tiling = tiling_for(cell, p)
    what = {
        "model": [model.id, p.weights[model.id].fingerprint, identity() if callable(identity) else None, precision],
        # groups a run finds from the images (near-duplicates) are not in the manifest: their method's version is
        "dataset": [dataset.id, p.manifests[dataset.id].hash] + (
            [f"near-duplicates v{grouping.VERSION}"] if getattr(dataset, "near_duplicates", False) else []),
        "reads": {other: [role, p.manifests[other].hash] for other, role in sorted(inputs.images.items())
                  if other != dataset.id},
        "task": [task.id, getattr(task, "plugin", ""), getattr(task, "plugin_version", "")],
        "pack": _pack(p),
        "options": plain(task.values),
        "prompts": [cell.prompt_mode, dataset.id in p.custom_prompts,
                    prompts.hash(cell.prompt_mode, dataset.classes) if cell.prompt_mode and prompts else None],
        "embeds": [None if tiling is None else dataclasses.asdict(tiling), inputs.tile_items, inputs.texts,
                   list(inputs.perturbations), inputs.perturbation_seed],
    }
    if model.id in p.patch_encoders:  # a slide model's numbers follow from its tiles too: whose, or which files
        folder = folder_for(p, model.id, dataset.id)
        encoder = p.patch_encoders[model.id]
        what["tiles"] = ["features", folder.encoder, folder.version] if folder else \
            [encoder.id, p.weights[encoder.id].fingerprint, encoder.identity()]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def slot(cell: Cell, p: Plan) -> tuple:
    """What the stored cell a key is checked against shares with this one (see :func:`current_keys`)."""
    prompts = p.prompts.get(cell.dataset.id)
    prompt_hash = prompts.hash(cell.prompt_mode, cell.dataset.classes) if cell.prompt_mode and prompts else None
    return cell.model.id, cell.dataset.id, cell.task.id, cell.prompt_mode, options_json(cell.task.values)[1], \
        prompt_hash, p.pack.id if p.pack else None


def _pack(p: Plan) -> list | None:
    """The protocol pack a cell runs under, and the release of the plugin that ships it (a pack's new release
    may change its metric or gaps, not only its prompts and options)."""
    return None if p.pack is None else [p.pack.id, getattr(p.pack, "plugin", ""), getattr(p.pack, "plugin_version", "")]


def split(p: Plan, current: dict[tuple, str]) -> tuple[list[Cell], list[Cell]]:
    """(cells to score, cells up to date): a cell is up to date when the newest stored cell of its slot has its
    key (``current``: slot -> key, from :func:`pathboard.core.store.queries.current_cell_keys`)."""
    todo, fresh = [], []
    for cell in p.cells:
        (fresh if current.get(slot(cell, p)) == cell.key else todo).append(cell)
    return todo, fresh
