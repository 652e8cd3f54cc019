"""Reading one image file as the 8-bit RGB picture a model sees, or refusing it with a one-line reason.

:func:`open_rgb` is the one place pathboard turns an image file into RGB. Its rules:

Size
    The pixel count is checked before any pixel is decoded (``Image.open`` only reads the header): an
    image of more than ``MAX_PIXELS`` (50,000,000) pixels is refused. ``PATHBOARD_MAX_PIXELS`` overrides
    the cap (a whole number, ``_`` allowed; ``0``: no cap); a caller may pass its own default
    (``max_pixels=``), which the variable still overrides. PIL's own decompression-bomb guard is lifted
    while pathboard's cap is the larger one, and its error, should it still fire, becomes the same
    one-line refusal. A JPEG opened with ``draft=`` is checked at the reduced size it decodes to.
Orientation
    The EXIF orientation tag is applied (``ImageOps.exif_transpose``): the picture comes back upright,
    its size swapped for the rotated orientations.
Modes
    ``RGB`` as it is; ``L`` and ``1`` become grey RGB; ``RGBX`` drops its padding byte; ``P`` (palette)
    becomes RGB through its palette, or, when it has transparency, is composited as below. ``RGBA``,
    ``LA``, ``PA``, ``RGBa`` (premultiplied) and transparent palettes are composited on WHITE, alpha-weighted
    (``round((c * a + 255 * (255 - a)) / 255)``): a transparent pixel is white, never its hidden colour.
    ``CMYK`` uses PIL's conversion, which ignores an embedded ICC profile (colours of a profiled CMYK
    file may differ from a colour-managed viewer's). ``YCbCr``, ``LAB`` and ``HSV`` use PIL's conversion.
High bit depth
    ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` (16-bit), ``I`` (32-bit integer) and ``F`` (32-bit float)
    grey images are scaled linearly by the image's own range:
    ``round((x - min) / (max - min) * 255)``, so its darkest pixel becomes 0 and its brightest 255
    (PIL's plain conversion would clip them, making most 16-bit images white). A constant image becomes
    all 0. Any NaN or infinite pixel refuses the image ("non-finite pixel values"). 16-bit RGB PNGs
    reach here as 8-bit RGB already (Pillow reduces them) and are left as they are.
Anything else
    Any other mode (e.g. ``La``, which PIL cannot convert) is refused, naming the mode. A file PIL cannot
    identify or decode is refused as ``cannot read image: <reason>``; a file that is not there (it
    vanished, or is a broken link) as ``cannot read image: file not found (vanished or a broken link)``.

Every refusal is a :class:`~pathboard.core.errors.PathboardError` with a one-line message. The file is
read completely inside a ``with``: no file handle outlives the call.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pathboard.core.errors import PathboardError, first_line

MAX_PIXELS = 50_000_000
ENV_MAX_PIXELS = "PATHBOARD_MAX_PIXELS"
NOT_FOUND = "file not found (vanished or a broken link)"

#: modes PIL's convert("RGB") turns into RGB faithfully
AS_RGB = {"RGB", "RGBX", "L", "1", "CMYK", "YCbCr", "LAB", "HSV"}
#: modes with an alpha channel, composited on white
WITH_ALPHA = {"RGBA", "LA", "PA", "RGBa"}
#: grey modes of more than 8 bits, scaled by their own range
HIGH_DEPTH = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}

#: EXIF orientation -> the transpose that makes the picture upright (the table of ``ImageOps.exif_transpose``)
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
ORIENTATION = 0x0112  # the EXIF tag

_PIL_LIMIT = threading.Lock()


def orientation(img: Image.Image) -> int:
    """The EXIF orientation of an opened image (1: upright, also when it has none or it cannot be read)."""
    try:
        value = img.getexif().get(ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: read as upright, the way exif_transpose would fail on it
        return 1
    return value if value in UPRIGHT else 1


def turned(img: Image.Image, orientation: int) -> Image.Image:
    """``img`` transposed as an image of EXIF ``orientation`` is made upright (e.g. a mask aligned with the
    stored pixels of an image that carries the orientation)."""
    method = UPRIGHT.get(orientation)
    return img.transpose(method) if method is not None else img


def max_pixels(default: int = MAX_PIXELS) -> int:
    """The pixel cap: ``PATHBOARD_MAX_PIXELS`` when set, else ``default``; 0 means no cap."""
    raw = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise PathboardError(f"{ENV_MAX_PIXELS}={raw!r}: expected a whole number of pixels (0: no cap)")
    return value


def _too_big(size: str, cap: int) -> PathboardError:
    return PathboardError(f"image too large: {size} pixels, over the cap of {cap:,} pixels "
                          f"(set {ENV_MAX_PIXELS} to raise it, 0 for no cap)")


@contextlib.contextmanager
def _pil_guard(cap: int):
    """PIL's decompression-bomb check, lifted while pathboard's cap (checked by the caller) is the larger one;
    its warning silenced (an image it warns about is over pathboard's cap anyway, or allowed by it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        limit = Image.MAX_IMAGE_PIXELS
        if limit is None or (cap and cap <= limit):
            yield
            return
        with _PIL_LIMIT:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def open_rgb(path: Path, *, max_pixels: int | None = None, draft: tuple[int, int] | None = None) -> Image.Image:
    """The 8-bit RGB picture of the image file ``path``, by the rules of this module's docstring, or a
    one-line :class:`PathboardError`. ``max_pixels``: this caller's cap instead of ``MAX_PIXELS`` (0: none;
    ``PATHBOARD_MAX_PIXELS`` still overrides it). ``draft``: for a JPEG, decode at the smallest scale at least
    this size (``Image.draft``)."""
    cap = _cap(max_pixels)
    try:
        with _pil_guard(cap), Image.open(path) as img:
            if draft is not None:
                img.draft("RGB", draft)
            w, h = img.size
            if cap and w * h > cap:
                raise _too_big(f"{w} x {h} = {w * h:,}", cap)
            img.load()
            upright = ImageOps.exif_transpose(img)
    except PathboardError:
        raise
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_big(f"{int(found.group(1)):,}" if found else "more than PIL's limit of", cap) from None
    except FileNotFoundError:
        raise PathboardError(f"cannot read image: {NOT_FOUND}") from None
    except Image.UnidentifiedImageError:
        raise PathboardError("cannot read image: not an image file PIL can identify") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        reason = first_line(exc)
        raise PathboardError(f"cannot read image: {reason}") from None
    return to_rgb(upright)


def open_item(root: Path, path: str) -> Image.Image:
    """``open_rgb(root / path)``: the default ``open_image(root, path)`` of the DataLoader datasets (a module
    function, so it pickles into workers)."""
    return open_rgb(root / path)


def _cap(given: int | None) -> int:
    return max_pixels(MAX_PIXELS if given is None else given)


def to_rgb(img: Image.Image) -> Image.Image:
    """``img`` (already upright) as 8-bit RGB, by the mode rules of this module's docstring."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        if img.has_transparency_data:
            return _on_white(img.convert("RGBA"))
        return img.convert("RGB")
    if mode in WITH_ALPHA:
        return _on_white(img.convert("RGBA"))
    if mode in AS_RGB:
        return img.convert("RGB")
    if mode in HIGH_DEPTH:
        return _scaled(img)
    raise PathboardError(f"cannot read image: unsupported image mode {mode!r}")


def _on_white(rgba: Image.Image) -> Image.Image:
    """RGBA composited on white, alpha-weighted and rounded."""
    a = np.asarray(rgba, dtype=np.float64)
    alpha = a[..., 3:4]
    out = (a[..., :3] * alpha + 255.0 * (255.0 - alpha)) / 255.0
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def _scaled(img: Image.Image) -> Image.Image:
    """A high-bit-depth grey image scaled linearly by its own range to 0-255, as grey RGB."""
    x = np.asarray(img, dtype=np.float64)
    if not np.isfinite(x).all():
        raise PathboardError(f"cannot read image: non-finite pixel values (NaN or infinity) in a {img.mode} image")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if hi > lo:
        grey = np.clip(np.rint((x - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    else:
        grey = np.zeros(x.shape, dtype=np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
