"""Patch features in TRIDENT's (and CLAM's) on-disk layout, read as they are and written by pathboard.

TRIDENT (MahmoodLab, https://github.com/mahmoodlab/TRIDENT) writes one HDF5 file per slide,
``<job>/<mag>x_<size>px_<overlap>px_overlap/features_<encoder>/<slide name>.h5``, holding ``features``
([T, D] float32) and ``coords`` ([T, 2] level-0 (x, y) of each tile's top-left corner); the ``coords``
dataset's attributes say ``patch_size_level0`` (a tile's side in level-0 pixels), ``patch_size`` and
``target_magnification``. ``<slide name>`` is the slide's file name without its extension. CLAM's
``h5_files/<slide>.h5`` hold the same two datasets but not those attributes: they are read once their coords carry
``patch_size_level0`` and their folder is named ``features_<encoder>``.

A :class:`FeatureFolder` is one such ``features_<encoder>`` folder: which encoder made it (the folder's name,
or the ``encoder`` attribute pathboard writes), at what magnification and tile size (the ``coords``
attributes, else the parent folder's name). :meth:`FeatureFolder.mismatch` refuses features made with another
encoder or at another magnification, tile size or overlap than a model reads, in one line;
:meth:`FeatureFolder.read` refuses a file without features, or whose features and coordinates disagree, in one
line (that slide is skipped). h5py is imported when a file is read or written.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np

from pathboard.core.errors import PathboardError
from pathboard.core.media.tiling import Tiling

#: ``20x_512px_0px_overlap``: TRIDENT's folder of one magnification, tile size and overlap
PATCHING = re.compile(r"^(\d+(?:\.\d+)?)x_(\d+)px_(\d+)px_overlap$")
PREFIX = "features_"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise PathboardError("reading TRIDENT features needs h5py: pip install h5py") from None
    return h5py


def folder_name(tiling: Tiling, encoder: str) -> PurePosixPath:
    """``20x_512px_0px_overlap/features_conch_v15``: where TRIDENT keeps ``encoder``'s features at ``tiling``."""
    mag = tiling.magnification or 10.0 / tiling.target_mpp
    overlap = round(tiling.size * tiling.overlap)
    return PurePosixPath(f"{mag:g}x_{tiling.size}px_{overlap}px_overlap") / f"{PREFIX}{encoder}"


@dataclass(frozen=True)
class FeatureFolder:
    root: Path
    encoder: str
    magnification: float | None
    patch_size: int | None
    #: overlap of neighbouring tiles in pixels at the target magnification (0: none)
    overlap: int = 0

    @classmethod
    def open(cls, path) -> FeatureFolder:
        """The features folder at ``path`` (a ``features_<encoder>`` folder of TRIDENT's layout, or any folder of
        ``.h5`` files whose attributes name their encoder); one line when it is not one."""
        root = Path(path).expanduser()
        if not root.is_dir():
            raise PathboardError(f"--features {path}: no such folder")
        first = next(iter(sorted(root.glob("*.h5"))), None)
        if first is None:
            raise PathboardError(f"--features {path}: holds no .h5 files (TRIDENT writes "
                                 "<job>/20x_512px_0px_overlap/features_<encoder>/<slide>.h5)")
        h5py = _h5py()
        try:
            with h5py.File(first, "r") as fh:
                if "features" not in fh or "coords" not in fh:
                    raise PathboardError(f"--features {path}: {first.name} has no 'features' and 'coords' datasets "
                                         f"(it has {', '.join(fh) or 'none'})")
                attrs = dict(fh["coords"].attrs)
                encoder = str(fh.attrs.get("encoder", "") or "")
        except OSError as exc:
            raise PathboardError(f"--features {path}: cannot read {first.name}: {exc}") from None
        if not encoder and root.name.startswith(PREFIX):
            encoder = root.name[len(PREFIX):]
        if not encoder:
            raise PathboardError(f"--features {path}: cannot tell which patch encoder made these features: keep "
                                 f"TRIDENT's folder name {PREFIX}<encoder> (e.g. {PREFIX}conch_v15)")
        patching = PATCHING.match(root.parent.name)
        magnification = attrs.get("target_magnification", float(patching[1]) if patching else None)
        size = attrs.get("patch_size", int(patching[2]) if patching else None)
        overlap = attrs.get("overlap", int(patching[3]) if patching else 0)
        return cls(root, encoder, None if magnification is None else float(magnification),
                   None if size is None else int(size), int(overlap or 0))

    def mismatch(self, model_id: str, encoder: str, tiling: Tiling) -> str | None:
        """Why ``model_id``, which reads ``encoder`` features at ``tiling``, cannot read these; None if it can."""
        mag = tiling.magnification or 10.0 / tiling.target_mpp
        want = f"{encoder} features at {mag:g}x, {tiling.size} px"
        have = (f"{self.encoder} features at {self.magnification:g}x, {self.patch_size} px"
                if self.magnification is not None and self.patch_size is not None else f"{self.encoder} features")
        if self.encoder != encoder:
            return f"--features {self.root}: holds {have}; {model_id} reads {want}"
        if self.magnification is None or self.patch_size is None:
            return (f"--features {self.root}: its magnification and tile size are not recorded (coords attributes "
                    f"target_magnification and patch_size, or a parent folder such as "
                    f"{folder_name(tiling, encoder).parts[0]}); {model_id} reads {want}")
        if abs(self.magnification - mag) > 1e-6 or self.patch_size != tiling.size:
            return f"--features {self.root}: holds {have}; {model_id} reads {want}"
        if self.overlap != round(tiling.size * tiling.overlap):
            return (f"--features {self.root}: its tiles overlap by {self.overlap} px; {model_id} reads tiles that "
                    f"overlap by {round(tiling.size * tiling.overlap)} px")
        return None

    @cached_property
    def version(self) -> str:
        """A digest of the folder's files (names, sizes, modification times): new or rewritten features change it.
        Read once per folder opened (once per run): every cell's up-to-date key asks for it."""
        stats = sorted((p.name, st.st_size, st.st_mtime_ns) for p in self.root.glob("*.h5") for st in [p.stat()])
        return hashlib.sha256(repr(stats).encode()).hexdigest()

    def file_for(self, item: str) -> Path:
        """The .h5 of a manifest item (``TCGA-CESC/<uuid>/TCGA-....svs`` -> ``TCGA-....h5``)."""
        name = PurePosixPath(item.split("#", 1)[0]).name
        return self.root / f"{name.rsplit('.', 1)[0] if '.' in name else name}.h5"

    def read(self, item: str) -> tuple[np.ndarray, np.ndarray, dict, str]:
        """One slide's [T, D] features, [T, 2] level-0 corners, tiling facts (``size0``: a tile's level-0 side)
        and a key naming this version of its file; OSError when the file is absent or unreadable."""
        path = self.file_for(item)
        if not path.is_file():
            raise FileNotFoundError(f"no features for it in {self.root} (expected {path.name})")
        with _h5py().File(path, "r") as fh:
            missing = [name for name in ("features", "coords") if name not in fh]
            if missing:
                raise PathboardError(f"{path.name} has no {' or '.join(repr(m) for m in missing)} dataset (TRIDENT's "
                                     "files hold 'features' and 'coords')")
            features = np.asarray(fh["features"][:], dtype=np.float32)
            coords = np.asarray(fh["coords"][:], dtype=np.int64).reshape(-1, 2)
            size0 = fh["coords"].attrs.get("patch_size_level0")
        features = features.reshape(len(coords), -1) if features.ndim == 3 else features  # CLAM: [1, T, D]
        if size0 is None:
            raise PathboardError(f"{path.name}: coords has no patch_size_level0 attribute")
        if features.ndim != 2 or len(features) != len(coords):
            raise PathboardError(f"{path.name}: {len(features)} feature rows for {len(coords)} coordinates")
        finite = np.isfinite(features).all(axis=1)
        if not finite.any():
            raise PathboardError(f"{path.name}: no tile with finite features" if len(features) else
                                 f"{path.name}: no tiles")
        features, coords = features[finite], coords[finite]
        st = path.stat()
        key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        info = {"level": 0, "size0": int(size0), "mpp_source": "TRIDENT features", "features": str(path),
                "tissue_fraction": None, **({"nonfinite_tiles": int((~finite).sum())} if not finite.all() else {})}
        return features, coords, info, f"features:{key}"


def write_features(path: Path, features: np.ndarray, coords: np.ndarray, patch_size_level0: int, *,
                   encoder: str, tiling: Tiling) -> None:
    """One slide's features in TRIDENT's layout (``features``, ``coords`` with its attributes, and the encoder)."""
    h5py = _h5py()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as fh:
        fh.attrs["encoder"] = encoder
        fh.create_dataset("features", data=np.asarray(features, dtype=np.float32))
        ds = fh.create_dataset("coords", data=np.asarray(coords, dtype=np.int64))
        ds.attrs["patch_size_level0"] = int(patch_size_level0)
        ds.attrs["patch_size"] = int(tiling.size)
        ds.attrs["target_magnification"] = float(tiling.magnification or 10.0 / tiling.target_mpp)
        ds.attrs["overlap"] = int(round(tiling.size * tiling.overlap))
        ds.attrs["name"] = path.stem
    tmp.replace(path)
