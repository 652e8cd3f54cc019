"""The task (scorer) interface: pure functions from one cell's cached embeddings to a :class:`TaskResult`.

A task says three things up front, so the plan can name all the work before anything runs:

- ``needs``: what it needs of a dataset, as facts a dataset has (:data:`FACTS`: labelled patches,
  slides, captions, segmentation truth). Datasets describe what they have; a dataset may still opt
  out of a task with a reason (``Dataset.opt_out``).
- ``options``: its :class:`~pathboard.core.interfaces.options.Option` declarations (name, type, default, help).
  The values a cell ran with are stored with the cell.
- :meth:`Task.inputs`: which embeddings a cell reads (this and other datasets' images, slide tiles at
  a tiling, texts).

Then :meth:`Task.score` gets a read-only :class:`CellContext` and returns everything it produced.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from pathboard.core.errors import PathboardError, unknown_id
from pathboard.core.interfaces.dataset import Dataset, Manifest
from pathboard.core.interfaces.embeddings import Embedded, TileSet
from pathboard.core.interfaces.options import Option, normalise_name
from pathboard.core.interfaces.prompts import PromptSet
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.metrics import Metric, normalised
from pathboard.core.science.splits import evaluated_items

#: what a dataset can have, and how a missing one reads in a skip line
FACTS = {
    "patches": ("labelled patches", "it is slide-level"),
    "slides": ("whole-slide images", "it is patch-level"),
    "labels": ("class labels", "it is unlabelled"),
    "captions": ("image captions", "it has no captions"),
    "segmentation": ("segmentation truth", "it has no segmentation truth"),
    "reports": ("pathology report texts", "it has no pathology reports"),
}


@dataclass(frozen=True)
class Inputs:
    """The embeddings one cell reads, named at plan time.

    ``images``: datasets whose whole-image embeddings the cell reads (its own, a training set), each
    with the role it plays ("" for the cell's own dataset), e.g. ``{"nct-crc-he-100k": "trains on
    nct-crc-he-100k, its declared training set"}``; ``tiles``: the tiling at which items are tiled and
    embedded, and ``tile_items`` which: "evaluated" (labelled, in the evaluation split: zero-shot),
    "labelled" (every split: few-shot), "all", or a tuple of item paths; ``texts``: whether it embeds texts;
    ``perturbations``: names of :data:`pathboard.core.science.perturb.PERTURBATIONS` under which the cell's own
    images are embedded again (each cached under its own key; ``perturbation_seed`` seeds their per-image
    draws).
    """

    images: Mapping[str, str] = field(default_factory=dict)
    tiles: Tiling | None = None
    tile_items: str | tuple[str, ...] = "evaluated"
    texts: bool = False
    perturbations: tuple[str, ...] = ()
    perturbation_seed: int = 0


@dataclass(frozen=True)
class Predictions:
    """Per-item predictions of a classification variant, with the item ids (manifest paths) and, when
    the items cluster (patient, case, slide), each item's group (:func:`item_groups`): paired comparisons
    then resample groups, as the task's own intervals did."""

    items: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    groups: np.ndarray | None = None


@dataclass(frozen=True)
class Artifact:
    item: str
    kind: str
    path: str


@dataclass
class TaskResult(Mapping):
    """Everything a cell produced. It reads as a mapping of variant -> metrics ("" is the headline)."""

    metrics: dict[str, list[Metric]]
    predictions: dict[str, Predictions] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    #: items the task could not use: item -> one-line reason (counted in the run record)
    failed: dict[str, str] = field(default_factory=dict)
    #: one-line warnings about the cell (printed, and kept in the run record)
    notes: list[str] = field(default_factory=list)
    #: how the numbers were made beyond the option values (e.g. the resolved tiling, window and grid);
    #: stored with the cell as JSON
    protocol: dict = field(default_factory=dict)

    def __getitem__(self, variant: str) -> list[Metric]:
        return self.metrics[variant]

    def __iter__(self):
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)


TILE_ITEMS = ("evaluated", "labelled", "all")


def tiled_items(dataset, manifest, which: str) -> np.ndarray:
    """Rows of ``manifest`` that a cell with ``Inputs(tile_items=which)`` reads tiles of."""
    if isinstance(which, tuple):
        chosen = set(which)
        return np.array([p in chosen for p in manifest.paths], dtype=bool)
    if which == "all":
        return np.ones(len(manifest.paths), dtype=bool)
    if which == "labelled":
        return np.asarray(manifest.labels) >= 0
    if which == "evaluated":
        return evaluated_items(dataset, manifest)
    raise PathboardError(f"Inputs.tile_items must be one of {', '.join(TILE_ITEMS)}, not {which!r}")


@dataclass(frozen=True)
class CellContext:
    """Everything a scorer may read for one (model, dataset, prompt mode) cell. Read-only.

    ``images`` holds the dataset's cached, memory-mapped [N, D] embeddings in manifest order (patch
    datasets); ``labels`` (-1: unlabelled) and ``splits`` cover all N items. ``texts`` embeds a list of
    strings (cached). ``others`` holds the other datasets the task's :meth:`Task.inputs` named:
    id -> (dataset, manifest, embeddings). ``tiles`` holds the evaluated items' slide tiles.
    ``perturbed`` holds the dataset's embeddings under each perturbation the inputs named (name ->
    embeddings, like ``images``). :attr:`logit_scale` is the model's own learned temperature.
    """

    model_id: str
    dataset: Dataset
    manifest: Manifest
    prompt_mode: str | None
    prompts: PromptSet | None
    texts: Callable | None = None
    images: Embedded | None = None
    options: Mapping = field(default_factory=lambda: MappingProxyType({}))
    others: Mapping = field(default_factory=lambda: MappingProxyType({}))
    tiles: TileSet | None = None
    #: a folder for files a task produces (heatmaps); referenced from the results database
    artifacts: Path | None = None
    #: how many tokens the model's text tower reads (long texts must be chunked to fit)
    text_context: int = 77
    perturbed: Mapping = field(default_factory=lambda: MappingProxyType({}))
    #: () -> the model's facts ({"logit_scale": float, "params": int | None}), cached: read on demand
    facts: Callable | None = None
    #: a slide model's cell: item path -> the slide encoder's [D] representation of each tiled slide
    #: (L2-normalised: what probes and slide retrieval read); None for patch models, whose tasks pool ``tiles``
    slides: Mapping[str, np.ndarray] | None = None
    #: a slide model's cell: item path -> that slide in the space of :meth:`encode_texts` (L2-normalised: what
    #: zero-shot classification and report retrieval compare with texts); None for patch models
    slides_text: Mapping[str, np.ndarray] | None = None
    #: the run's device ("cpu", "cuda[:N]", "mps"): where the embedding model runs, and where a task may run
    #: arithmetic of its own that a GPU does better (ABMIL's prediction); a plain string, torch is not imported
    device: str = "cpu"

    @property
    def logit_scale(self) -> float:
        """The model's learned logit scale (exp of its log temperature; 100 for OpenAI CLIP)."""
        scale = None if self.facts is None else self.facts().get("logit_scale")
        if scale is None:
            raise PathboardError(f"{self.model_id}: the model reports no logit scale (EmbeddingModel.logit_scale)")
        return float(scale)

    @property
    def class_names(self) -> list[str]:
        return self.dataset.classes

    @property
    def ordinal(self) -> bool:
        return bool(getattr(self.dataset, "ordinal", False))

    @property
    def labels(self) -> np.ndarray:
        return self.manifest.labels

    @property
    def splits(self) -> list[str | None]:
        return self.manifest.splits

    @property
    def image_embeddings(self) -> np.ndarray:
        """[N, D] image embeddings of the dataset, in manifest order (patch datasets)."""
        return self._images().embeddings

    @property
    def valid(self) -> np.ndarray:
        """Which rows were embedded (False: the file could not be read)."""
        return self._images().valid

    def _images(self) -> Embedded:
        if self.images is None:
            raise PathboardError(f"{self.dataset.id}: this cell reads no image embeddings (Task.inputs names none)")
        return self.images

    def slide_matrix(self, paths) -> np.ndarray:
        """[N, D] slide embeddings of ``paths``, L2-normalised: the slide encoder's representations (slide models:
        :attr:`slides`, already unit), else each slide's tiles' mean (patch models: the mean pooling of few-shot WSI
        and slide retrieval)."""
        if not len(paths):
            return np.zeros((0, 0), dtype=np.float32)
        if self.slides is not None:
            return np.stack([np.asarray(self.slides[p], dtype=np.float32) for p in paths])
        if self.tiles is None:
            raise PathboardError(f"{self.dataset.id}: this cell reads no slide tiles (Task.inputs names none)")
        return normalised(np.stack([np.asarray(self.tiles[p].embeddings, dtype=np.float32).mean(axis=0)
                                    for p in paths]))

    @property
    def pooling(self) -> str:
        """How a slide becomes one embedding in this cell: ``slide-encoder`` or ``mean`` (of its tiles)."""
        return "slide-encoder" if self.slides is not None else "mean"

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if self.texts is None:
            raise PathboardError(f"{self.model_id}: this cell has no text encoder")
        return self.texts(texts)

    def evaluated_rows(self) -> np.ndarray:
        """Rows to score: embedded, and evaluated by every task alike
        (:func:`~pathboard.core.science.splits.evaluated_items`: labelled, in the evaluation split)."""
        return self.valid & evaluated_items(self.dataset, self.manifest)

    def evaluated(self, split: str | None) -> np.ndarray:
        """Embedded, labelled rows of ``split`` (every split when None). Tasks score
        :meth:`evaluated_rows`; this is for a task that reads another split on purpose."""
        rows = self.valid & (self.labels >= 0)
        if split is not None:
            rows &= np.array([s == split for s in self.splits], dtype=bool)
        return rows


class Task(ABC):
    id: str
    title: str = ""
    #: crossed with --prompt-modes when True; run once with prompt_mode None otherwise
    uses_prompts: bool = True
    #: model capabilities the task needs
    requires: frozenset[str] = frozenset({"image", "text"})
    #: dataset facts the task needs (keys of FACTS)
    needs: frozenset[str] = frozenset({"patches", "labels"})
    #: the task's options; their values reach the task through :meth:`configure`
    options: tuple[Option, ...] = ()
    #: part of the default set (``--tasks`` not given); analyses that cost extra image forwards say False
    default: bool = True
    #: tasks whose classifier this task re-scores (e.g. prompt sensitivity re-scores zero-shot): a dataset
    #: that opts out of one of them opts out of this task too
    follows: tuple[str, ...] = ()
    #: scores whole slides, so slide models (TITAN, PRISM) take part: their cells get ``CellContext.slides``,
    #: one embedding per slide, where patch models' cells pool ``CellContext.tiles``
    slide_level: bool = False
    _values: Mapping | None = None

    @property
    def values(self) -> Mapping:
        """The option values this task runs with (defaults unless :meth:`configure`d)."""
        if self._values is None:
            return MappingProxyType({o.name: o.default for o in self.options})
        return self._values

    def configure(self, values: Mapping[str, Any]) -> Task:
        """A copy running with ``values`` (option name -> raw or typed value), checked now; the
        registered task is untouched."""
        declared = {o.name: o for o in self.options}
        given = {normalise_name(k): v for k, v in dict(values).items()}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise unknown_id(f"option of task {self.id}", unknown[0], declared)
        resolved = {name: (opt.parse(given[name], self.id) if name in given else opt.default)
                    for name, opt in declared.items()}
        task = copy.copy(self)
        task._values = MappingProxyType(resolved)
        return task

    def supports(self, dataset) -> str | None:
        """None if the task can score ``dataset``, else the one-line reason it cannot."""
        opt_out = dict(getattr(dataset, "opt_out", None) or {})
        if opt_out.get(self.id):
            return f"{dataset.id} opts out of {self.id}: {opt_out[self.id]}"
        for base in (b for b in self.follows if opt_out.get(b)):
            return f"{dataset.id} opts out of {base}, which {self.id} re-scores: {opt_out[base]}"
        missing = [f for f in FACTS if f in self.needs and f not in dataset.facts]
        if missing:
            needed = " and ".join(FACTS[f][0] for f in FACTS if f in self.needs)
            return (f"{dataset.id} does not declare task {self.id}'s inputs: "
                    f"{'; '.join(FACTS[f][1] for f in missing)} ({self.id} needs {needed})")
        return None

    def check(self, dataset, manifest) -> str | None:
        """None if this dataset's items (``manifest``) can be scored, else why not: a data-dependent
        applicability check made at plan time (e.g. few-shot needs two classes to train on). The groups of a
        ``near_duplicates`` dataset are not known yet (they are found after its first embedding, before
        :meth:`score`): decide from labels and splits."""
        return None

    def inputs(self, dataset, manifest) -> Inputs:
        """The embeddings a cell on ``dataset`` reads; by default its own images when it needs patches."""
        return Inputs(images={dataset.id: ""} if "patches" in self.needs else {}, texts="text" in self.requires)

    @abstractmethod
    def score(self, ctx: CellContext) -> TaskResult:
        """Everything the cell produced: variant -> metrics ("" for the headline variant), per-item
        predictions with item ids, artifacts, and failed items with reasons."""


#: the slide tasks' tiling options: one set, so every slide task tiles (and caches) alike; ``--mpp``,
#: ``--magnification`` and ``--tile-size`` are their aliases
TILING_OPTIONS = (
    Option("mpp", float, 0.5, "tile at this resolution (µm per pixel)", min=0.05, max=20),
    Option("magnification", float, None, "tile at this magnification instead (taken as 10/mpp); wins over mpp",
           min=0.5, max=100),
    Option("tile_size", int, 224, "tile side in pixels at that resolution", min=224, max=512),
)


class SlideTask(Task):
    """A task that tiles slides: it owns :data:`TILING_OPTIONS` (subclasses add their own options after
    them: ``options = (*SlideTask.options, Option(...))``) and :attr:`tiling`, the tiling their values
    name. Tasks that tile at the same values read the same cached tiles."""

    needs: frozenset[str] = frozenset({"slides", "labels"})
    options: tuple[Option, ...] = TILING_OPTIONS
    #: the share of a tile its neighbour overlaps (segmentation: 0.75)
    overlap: float = 0.0

    @property
    def tiling(self) -> Tiling:
        """The tiling the option values name (``magnification`` wins over ``mpp``)."""
        v = self.values
        return Tiling(size=v["tile_size"], mpp=v["mpp"], magnification=v["magnification"], overlap=self.overlap)

    def inputs(self, dataset, manifest) -> Inputs:
        """The evaluated slides' tiles at :attr:`tiling`, and texts when the task uses them."""
        return Inputs(tiles=self.tiling, texts="text" in self.requires)
