"""The task (scorer) interface: turn cached embeddings of one cell into metrics."""
from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pathboard.core.metrics import Metric
from pathboard.core.prompts import PromptSet


@dataclass
class CellContext:
    """Everything a scorer may use for one (model, dataset, prompt mode) cell.

    For patch datasets ``images`` holds the cached, memory-mapped [N, D] embeddings in manifest
    order. ``labels`` (-1: unlabelled) and ``splits`` cover all N items. ``embedder`` computes (or
    finds in the cache) anything else: texts, another dataset's images, slide tiles.
    """

    model_id: str
    dataset: object
    manifest: object
    prompt_mode: str | None
    prompts: PromptSet | None
    embedder: object
    images: object | None = None
    #: dataset id -> (dataset, manifest) under the same data root, for tasks that need a second set
    locate: Callable | None = None
    #: a folder for files a task produces (heatmaps); referenced from the results database
    artifacts: Path | None = None
    #: items the task could not use (item -> one-line reason); counted in the run record
    failures: dict = field(default_factory=dict)
    #: (item, kind, path) of every file the task wrote under ``artifacts``
    written: list = field(default_factory=list)
    #: variant -> (y_true, y_pred) of classification tasks, kept for paired comparisons between models
    predictions: dict = field(default_factory=dict)

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
        return self.images.embeddings

    @property
    def valid(self) -> np.ndarray:
        return self.images.valid

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.embedder.texts(texts)

    def fail(self, item: str, reason: str) -> None:
        """Skip one item (a broken slide, a slide without tissue): one line now, counted in the run."""
        self.failures[item] = reason
        print(f"warning: {self.dataset.id}: skipped {item}: {reason}", file=sys.stderr)

    def evaluated(self, split: str | None) -> np.ndarray:
        """Rows to score: embedded, labelled, and in ``split`` (every split when None)."""
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
    #: whether the task reads a patch dataset's whole-image embeddings (``ctx.images``)
    needs_images: bool = True

    def supports(self, dataset) -> str | None:
        """None if the task can score ``dataset``, else the reason it cannot."""
        if self.id not in getattr(dataset, "tasks", ()):
            return f"{dataset.id} does not declare task {self.id}"
        return None

    @abstractmethod
    def score(self, ctx: CellContext) -> list[Metric] | dict[str, list[Metric]]:
        """The metrics of the cell; or, for a task with variants (e.g. few-shot k, MI-Zero top-K),
        variant name -> metrics, with "" for the headline variant."""
