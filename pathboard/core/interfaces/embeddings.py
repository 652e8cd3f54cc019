"""What a task reads of the embeddings: a dataset's image embeddings (:class:`Embedded`) and its slides' tile
embeddings (:class:`TileSet` of :class:`SlideEmbedding`). The embedder makes them; a task only reads them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Embedded:
    """A dataset's image embeddings in manifest order (memory-mapped); ``valid`` is False for rows
    whose file could not be read (those rows are NaN)."""

    embeddings: np.ndarray
    valid: np.ndarray
    failed: dict[str, str]
    key: str


@dataclass
class SlideEmbedding:
    """The tissue tiles of one slide: [T, D] embeddings, [T, 2] level-0 coordinates, tiling facts."""

    embeddings: np.ndarray
    coords: np.ndarray
    info: dict
    #: names exactly these tiles (their cache entry, or the version of the features file they were read from):
    #: what a slide encoder's cached embedding of them is keyed by
    key: str = ""


class TileSet:
    """The tiles of a dataset's evaluated items at one tiling, in manifest order."""

    def __init__(self, done: dict[str, tuple[int, SlideEmbedding]], failed: dict[str, str]):
        self._done, self.failed = done, failed

    def items(self) -> list[tuple[str, int]]:
        """(path, label) of every item that was tiled (label -1: unlabelled), in manifest order."""
        return [(path, label) for path, (label, _) in self._done.items()]

    def labelled(self) -> list[tuple[str, int]]:
        """(path, label) of every labelled item that was tiled."""
        return [(path, label) for path, label in self.items() if label >= 0]

    def __contains__(self, path: str) -> bool:
        return path in self._done

    def __getitem__(self, path: str) -> SlideEmbedding:
        return self._done[path][1]

    def __len__(self) -> int:
        return len(self._done)

    def drop(self, path: str, reason: str) -> None:
        """Take a slide out (it is then failed, with ``reason``): e.g. its slide encoder could not encode it."""
        self._done.pop(path, None)
        self.failed[path] = reason
