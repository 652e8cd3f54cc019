"""The slide drill-down's pictures: the top tiles of a slide, read back from the slide at the level-0
coordinates the zero-shot WSI task stored (``topk`` artifacts), opened as the tiling opens slides (openslide
only when called); never torch or the plugins."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from pathboard.core.media.tiling import open_slide


def top_tiles(artifact: str | Path, side: int = 160) -> tuple[dict, list[tuple[Image.Image, float]]]:
    """The ``topk`` artifact's facts (predicted, truth, ...) and its tiles as (image, similarity), each tile
    read at level 0 over its stored square and shown ``side`` pixels wide. A slide that is gone or cannot be
    read gives no tiles, and its error under ``facts["error"]``."""
    facts = json.loads(Path(artifact).read_text())
    file, size0 = Path(facts["file"]), int(facts["size0"])
    out = []
    try:
        if facts.get("windows"):  # a small image tiled in windows: crop it
            with Image.open(file) as image:
                image = image.convert("RGB")
                for t in facts["tiles"]:
                    box = (t["x"], t["y"], t["x"] + size0, t["y"] + size0)
                    out.append((image.crop(box).resize((side, side)), t["similarity"]))
        else:
            with open_slide(file) as slide:  # closed again: the view reads the slide on every rerun
                for t in facts["tiles"]:
                    tile = slide.read_region((t["x"], t["y"]), 0, (size0, size0)).convert("RGB")
                    out.append((tile.resize((side, side)), t["similarity"]))
    except Exception as exc:  # a moved or broken slide: say so beside the stored facts
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        facts["error"] = f"cannot read tiles from {file}: {type(exc).__name__}: {why}"
        return facts, []
    return facts, out
