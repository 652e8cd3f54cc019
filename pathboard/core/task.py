"""The task (scorer) interface: turn cached embeddings of one cell into metrics."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pathboard.core.metrics import Metric
from pathboard.core.prompts import PromptSet


@dataclass
class CellContext:
    """Everything a scorer may use for one (model, dataset, prompt mode) cell.

    ``image_embeddings`` is the cached, memory-mapped [N, D] array in manifest order; rows of
    unreadable files are NaN and ``valid`` is False for them. ``labels`` cover all N rows.
    """

    model_id: str
    dataset: object
    prompt_mode: str | None
    class_names: list[str]
    prompts: PromptSet
    image_embeddings: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    encode_texts: Callable[[list[str]], np.ndarray]
    splits: list[str | None] | None = None

    @property
    def ordinal(self) -> bool:
        return bool(getattr(self.dataset, "ordinal", False))

    def evaluated(self, split: str | None) -> np.ndarray:
        """Rows to score: embedded, labelled, and in ``split`` (every split when None)."""
        rows = self.valid & (self.labels >= 0)
        if split is not None and self.splits is not None:
            rows &= np.array([s == split for s in self.splits], dtype=bool)
        return rows


class Task(ABC):
    id: str
    title: str = ""
    #: crossed with --prompt-modes when True; run once with prompt_mode None otherwise
    uses_prompts: bool = True
    #: model capabilities the task needs
    requires: frozenset[str] = frozenset({"image", "text"})

    def supports(self, dataset) -> str | None:
        """None if the task can score ``dataset``, else the reason it cannot."""
        if self.id not in getattr(dataset, "tasks", ()):
            return f"{dataset.id} does not declare task {self.id}"
        return None

    @abstractmethod
    def score(self, ctx: CellContext) -> list[Metric]: ...
