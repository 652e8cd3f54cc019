"""Seeded image perturbations for a zero-shot robustness analysis.

Each perturbation models one way a real slide differs from the images a model was trained on:

- ``jpeg-*``: scanner and archive compression (a JPEG round trip at quality 30, 50, 75);
- ``blur-*``: focus (a Gaussian blur of 1 or 2 pixels);
- ``hed-*``: stain variation between labs, the HED jitter of Tellez et al. 2018, "Whole-slide mitosis
  detection in H&E breast histology using PHH3 as a reference to train distilled stain-invariant
  convolutional networks" (each stain's optical density scaled and shifted per image);
- ``brightness``, ``contrast``: illumination and scanner calibration (a factor in [0.7, 1.3] per image);
- ``rot90``, ``flip``: invariances tissue has and a model should too (a non-square image changes size
  under ``rot90``; model preprocessing resizes it);
- ``downscale-0.5``: resolution (half size and back, bicubic).

Random parameters are drawn per item from ``item_rng(seed, name, item)``, so an image's perturbation never
depends on the order, batch or worker that processes it.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from pathboard.core.errors import unknown_id
from pathboard.core.media.images import open_item

VERSION = 1  # bump when any perturbation's output changes: it is part of the cache key


@dataclass(frozen=True)
class Perturbation:
    name: str
    title: str
    kind: str  # compression, blur, stain, colour, invariance or resolution
    draw: Callable[[np.random.Generator], dict]  # the per-image random parameters ({} when deterministic)
    apply: Callable[..., Image.Image]  # apply(rgb_image, **params) -> RGB image of the same size

    def __call__(self, image: Image.Image, seed: int, item: str) -> Image.Image:
        return self.apply(image, **self.draw(item_rng(seed, self.name, item)))

    def key(self) -> dict:
        return {"name": self.name, "version": VERSION}


def item_rng(seed: int, name: str, item: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(item.encode())])


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _gaussian_blur(image: Image.Image, sigma: float) -> Image.Image:
    from scipy.ndimage import gaussian_filter  # imported here: the module stays light to import

    out = gaussian_filter(np.asarray(image, dtype=np.float64), sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def hed_jitter(image: Image.Image, alpha, beta) -> Image.Image:
    """Tellez et al. 2018: each HED channel ``c`` becomes ``hed[..., c] * alpha[c] + beta[c]``."""
    from skimage.color import hed2rgb, rgb2hed

    hed = rgb2hed(np.asarray(image)) * np.asarray(alpha) + np.asarray(beta)
    return Image.fromarray(np.rint(np.clip(hed2rgb(hed), 0, 1) * 255).astype(np.uint8), "RGB")


def _draw_hed(rng: np.random.Generator, sigma: float) -> dict:
    alpha = rng.uniform(1 - sigma, 1 + sigma, 3)
    beta = rng.uniform(-sigma, sigma, 3)
    return {"alpha": alpha.tolist(), "beta": beta.tolist()}


def _draw_factor(rng: np.random.Generator) -> dict:
    return {"factor": float(rng.uniform(0.7, 1.3))}


def _no_params(rng: np.random.Generator) -> dict:
    return {}


def _enhance(image: Image.Image, factor: float, enhancer) -> Image.Image:
    return enhancer(image).enhance(factor)


def _transpose(image: Image.Image, method: Image.Transpose) -> Image.Image:
    return image.transpose(method)


def _downscale(image: Image.Image, scale: float) -> Image.Image:
    w, h = image.size
    small = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
    return small.resize((w, h), Image.Resampling.BICUBIC)


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in [
    *(Perturbation(f"jpeg-{q}", f"JPEG round trip at quality {q}", "compression", _no_params, partial(_jpeg, quality=q))
      for q in (30, 50, 75)),
    *(Perturbation(f"blur-{s}", f"Gaussian blur, sigma {s} px", "blur", _no_params, partial(_gaussian_blur, sigma=s))
      for s in (1, 2)),
    *(Perturbation(f"hed-{level}", f"HED stain jitter (Tellez et al. 2018), sigma {s}", "stain",
                   partial(_draw_hed, sigma=s), hed_jitter) for level, s in (("light", 0.05), ("strong", 0.2))),
    Perturbation("brightness", "Brightness factor in [0.7, 1.3] per image", "colour", _draw_factor,
                 partial(_enhance, enhancer=ImageEnhance.Brightness)),
    Perturbation("contrast", "Contrast factor in [0.7, 1.3] per image", "colour", _draw_factor,
                 partial(_enhance, enhancer=ImageEnhance.Contrast)),
    Perturbation("rot90", "Rotation by 90 degrees counter-clockwise", "invariance", _no_params,
                 partial(_transpose, method=Image.Transpose.ROTATE_90)),
    Perturbation("flip", "Horizontal mirror", "invariance", _no_params,
                 partial(_transpose, method=Image.Transpose.FLIP_LEFT_RIGHT)),
    Perturbation("downscale-0.5", "Half resolution and back (bicubic)", "resolution", _no_params,
                 partial(_downscale, scale=0.5)),
]}

DEFAULT = tuple(PERTURBATIONS)


def resolve(names: Iterable[str]) -> list[Perturbation]:
    names = list(names)
    for name in names:
        if name not in PERTURBATIONS:
            raise unknown_id("perturbation", name, PERTURBATIONS)
    return [PERTURBATIONS[name] for name in names]


class PerturbedOpen:
    """``open_image(root, path)`` followed by one perturbation, seeded by ``path``; picklable for DataLoader
    workers (it keeps the perturbation's name and looks it up at call time)."""

    def __init__(self, open_image: Callable[[Path, str], Image.Image] | None, perturbation: str, seed: int):
        resolve([perturbation])
        self.open_image, self.perturbation, self.seed = open_image or open_item, perturbation, seed

    def __call__(self, root: Path, path: str) -> Image.Image:
        image = self.open_image(root, path).convert("RGB")
        return PERTURBATIONS[self.perturbation](image, self.seed, path)
