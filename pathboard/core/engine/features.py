"""``pathboard cache export-features``: a model's tile features of a dataset's slides, written in TRIDENT's layout
(:mod:`pathboard.core.media.features`), so other tools (TRIDENT, CLAM, Patho-Bench, a TITAN notebook) and a later
``pathboard run --features`` read them as they are. Tiles come from the embedding cache, and what is not cached yet
is embedded first (the same tiles a run would embed, cached the same way)."""
from __future__ import annotations

import sys
from pathlib import Path

from pathboard.core.engine import plugins
from pathboard.core.engine.steps import LazyModel
from pathboard.core.errors import PathboardError, first_line
from pathboard.core.interfaces.dataset import data_root
from pathboard.core.interfaces.slide_model import describe_tiling, is_slide_model
from pathboard.core.interfaces.weights import Weights, overrides, trusted
from pathboard.core.media.features import folder_name, write_features
from pathboard.core.media.tiling import Tiling


def export_features(model_id: str, dataset_ids: list[str], out: Path, root: str | None, tiling: Tiling | None,
                    runtime, cache, batch_size: int, workers: int, weights_cli=(), trust=()) -> list[Path]:
    """Write every slide's features; a slide model exports its patch encoder's at its own tiling. Returns the
    features folders written (one per dataset)."""
    from tqdm.auto import tqdm

    from pathboard.core.embedding.embedder import Embedder
    from pathboard.core.engine.slides import allowed, encoder_name, trust_line

    spec = requested = plugins.get("model", model_id)
    allow = allowed([requested], trusted(trust))  # a trusted slide model's own patch encoder is trusted too
    if is_slide_model(requested):
        if tiling is not None:
            raise PathboardError(f"{model_id} reads its patch encoder's features at its own tiling "
                                 f"({describe_tiling(requested.tiling)}); drop --mpp, --magnification and --tile-size")
        tiling, spec = requested.tiling, plugins.get("model", requested.patch_encoder)
    tiling = tiling or Tiling()
    if getattr(spec, "remote_code", False) and spec.id not in allow:
        raise PathboardError(trust_line(requested))
    given = overrides(weights_cli)
    override = given.get(spec.id) or given.get(model_id)
    weights = spec.resolve(Weights(*override) if override else None)
    embedder = Embedder(spec, LazyModel(spec, weights, runtime), weights.fingerprint, runtime, cache, batch_size,
                        workers)
    name = encoder_name(spec)
    written = []
    for dataset_id in dataset_ids:
        dataset = plugins.get("dataset", dataset_id)
        if "slides" not in dataset.facts:
            raise PathboardError(f"{dataset_id} has no slides to export features of")
        manifest = dataset.manifest(data_root(root))
        folder = out / folder_name(tiling, name)
        written_from: dict[str, str] = {}
        for path in tqdm(manifest.paths, desc=f"{spec.id} x {dataset_id}: features", unit="slide", disable=None):
            try:
                slide = embedder.slide(dataset, manifest, path, tiling)
            except (PathboardError, OSError) as exc:
                print(f"warning: {dataset_id}: skipped {path}: {first_line(exc)}", file=sys.stderr)
                continue
            stem = Path(path.split("#", 1)[0]).name.rsplit(".", 1)[0]
            if stem in written_from:  # TRIDENT names a slide's file by its file name alone
                print(f"warning: {dataset_id}: skipped {path}: its features file {stem}.h5 is already written for "
                      f"{written_from[stem]}", file=sys.stderr)
                continue
            written_from[stem] = path
            write_features(folder / f"{stem}.h5", slide.embeddings, slide.coords, int(slide.info["size0"]),
                           encoder=name, tiling=tiling)
        written.append(folder)
    return written
