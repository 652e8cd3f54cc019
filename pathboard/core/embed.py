"""Stream a dataset's images through a model in batches, straight into the cache."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


class ImageFiles(torch.utils.data.Dataset):
    """Decodes and preprocesses one image per item in a worker; a file that fails comes back as its error."""

    def __init__(self, root: Path, paths: list[str], preprocess: Callable, open_image: Callable | None = None):
        self.root, self.paths, self.preprocess = root, paths, preprocess
        self.open_image = open_image or _open_rgb

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(self.open_image(self.root, self.paths[i])), None
        except Exception as exc:
            return i, None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def _open_rgb(root: Path, path: str) -> Image.Image:
    with Image.open(root / path) as img:
        return img.convert("RGB")


def _collate(batch):
    ok = [(i, x) for i, x, _ in batch if x is not None]
    failed = [(i, err) for i, _, err in batch if err is not None]
    indices = [i for i, _ in ok]
    images = torch.stack([x for _, x in ok]) if ok else None
    return indices, images, failed


def embed_images(model, root: Path, paths: list[str], write: Callable, *, batch_size: int, workers: int,
                 desc: str, open_image: Callable | None = None) -> tuple[dict[str, str], int]:
    """Embed ``paths`` in order, calling ``write(start_row, array)`` per batch.

    Returns ({relative path: error} for unreadable files, number of forward passes).
    """
    loader = DataLoader(ImageFiles(root, paths, model.preprocess, open_image), batch_size=batch_size, shuffle=False,
                        num_workers=workers, collate_fn=_collate,
                        pin_memory=getattr(getattr(model, "runtime", None), "device", "cpu").startswith("cuda"))
    failed: dict[str, str] = {}
    forwards = 0
    with tqdm(total=len(paths), desc=desc, unit="img", disable=None, leave=False) as bar:
        for indices, images, errors in loader:
            for i, err in errors:
                failed[paths[i]] = err
            if images is not None:
                feats = model.encode_images(images).numpy()
                forwards += 1
                # indices are consecutive except where files failed; write runs of consecutive rows
                start = 0
                for j in range(1, len(indices) + 1):
                    if j == len(indices) or indices[j] != indices[j - 1] + 1:
                        write(indices[start], feats[start:j])
                        start = j
            bar.update(len(indices) + len(errors))
    return failed, forwards
