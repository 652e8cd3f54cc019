"""PanNuke (Gamper et al., ECDP 2019 and arXiv:2003.10778), https://warwick.ac.uk/fac/cross_fac/tia/data/pannuke.

Official download: ``fold_1.zip``, ``fold_2.zip``, ``fold_3.zip``; each unzips to ``Fold N/`` holding
``images/foldN/images.npy`` ([n, 256, 256, 3], float64 0-255), ``images/foldN/types.npy`` ([n], tissue
type per patch: "Adrenal_gland", "Bile-duct", ..., "Cervix", ...) and ``masks/foldN/masks.npy``
([n, 256, 256, 6] instance masks, channels 0 Neoplastic, 1 Inflammatory, 2 Connective/Soft tissue,
3 Dead, 4 Epithelial, 5 Background). pathboard keeps the three folds side by side in one folder:
``PanNuke/Fold 1/...``, ``PanNuke/Fold 2/...``, ``PanNuke/Fold 3/...`` (``pathboard data download``
unzips them there). 7,901 patches of 40x (0.25 um/px), 19 tissues; CC BY-NC-SA 4.0.

A patch is ``malignant`` when its Neoplastic channel holds any nucleus, else ``benign``. Items live
inside the arrays (``"Fold 1/images/fold1/images.npy#17"``); the labels derived from the masks are
cached under the pathboard cache folder, keyed by the mask file's path, size and mtime, because
reading one channel of every mask touches the whole ~8 GB array.

``pannuke-cervix-nuclei`` is the same cervix patches for zero-shot segmentation of nucleus types: a
pixel's class is the first of channels 0-4 whose instance map is non-zero there, else background; a
patch's label is its most frequent nucleus type (background if it has no nucleus), used only to
select items: the dataset opts out of tile classification, which ``pannuke-cervix`` holds. The 256 px
patches are segmented in windows of ``segmentation_window`` native pixels (64 px = 16 µm at
0.25 µm/px, stride 16 px), each resized to the model's input.

Groups: none. PanNuke releases no patient, slide or source of any patch (the patches were pooled from
TCGA and other collections), so items carry no ``group`` and few-shot splits them patch by patch. The
three folds are the authors' own partition; whether it keeps patients apart is not documented.

Verified against the release: the file names and array shapes above, as documented on the PanNuke
page and read by torch-em's loader. Assumed (not checkable offline): the channel order of
``masks.npy`` (0 Neoplastic ... 5 Background, as the PanNuke paper lists the classes).
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.api import (
    Dataset,
    DatasetNotFoundError,
    Download,
    Record,
    cache_root,
    hookimpl,
    layout_error,
    mask_to_grid,
    write_cached,
)

URL = "https://warwick.ac.uk/fac/cross_fac/tia/data/pannuke"
FOLDS = (1, 2, 3)
NEOPLASTIC = 0  # channel of masks.npy
CLASSES = ["benign", "malignant"]
NUCLEI = ["neoplastic", "inflammatory", "connective", "dead", "epithelial", "background"]  # masks.npy channels
# sha256 of the official zips as pinned by torch-em (torch_em/data/datasets/histopathology/pannuke.py),
# which verifies every download of these URLs against them; Warwick publishes none itself.
SHA256 = {1: "6e19ad380300e8ce9480f9ab6a14cc91fa4b6a511609b40e3d70bdf9c881ed0b",
          2: "5bc540cc509f64b5f5a274d6e5a245527dbd3e6d3155d43555115c5d54709b07",
          3: "c14d372981c42f611ebc80afad01702b89cad8c1b3089daa31931cf5a4b1a39d"}
CHUNK = 64  # mask rows read at a time


def fold_files(k: int) -> tuple[str, str, str]:
    """images.npy, types.npy, masks.npy of fold ``k``, relative to the dataset folder."""
    return (f"Fold {k}/images/fold{k}/images.npy", f"Fold {k}/images/fold{k}/types.npy",
            f"Fold {k}/masks/fold{k}/masks.npy")


@functools.lru_cache(maxsize=8)
def _array(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def pixel_classes(mask: np.ndarray) -> np.ndarray:
    """[H, W] nucleus type per pixel of one [H, W, 6] mask: the first of channels 0-4 holding an instance
    there, else background (5)."""
    nuclei = np.asarray(mask[..., :5]) > 0
    return np.where(nuclei.any(axis=-1), nuclei.argmax(axis=-1), len(NUCLEI) - 1).astype(np.int64)


def _neoplastic(masks: np.ndarray, start: int) -> np.ndarray:
    block = np.asarray(masks[start:start + CHUNK, :, :, NEOPLASTIC])  # one channel: CHUNK masks at a time
    return block.reshape(len(block), -1).any(axis=1)


def _dominant(masks: np.ndarray, start: int) -> np.ndarray:
    """Most frequent nucleus type of each mask (by pixels; background when it has no nucleus)."""
    block = np.asarray(masks[start:start + CHUNK, :, :, :5]) > 0
    counts = block.reshape(len(block), -1, 5).sum(axis=1)
    return np.where(counts.any(axis=1), counts.argmax(axis=1), len(NUCLEI) - 1)


def neoplastic_labels(masks: Path, rule: str = "neoplastic") -> np.ndarray:
    """Per patch: 1 if the Neoplastic channel holds a nucleus, else 0; or with ``rule="dominant"`` the
    most frequent nucleus type (read in chunks, cached)."""
    st = masks.stat()
    key = hashlib.sha256(f"{masks.resolve()}\n{st.st_size}\n{st.st_mtime_ns}".encode()).hexdigest()[:32]
    name = "pannuke-labels" if rule == "neoplastic" else f"pannuke-{rule}"
    cached = cache_root() / "datasets" / f"{name}-{key}.npy"
    if cached.is_file():
        return np.load(cached)
    m = np.load(masks, mmap_mode="r")
    labels = np.zeros(len(m), dtype=np.int64)
    label = {"neoplastic": _neoplastic, "dominant": _dominant}[rule]
    for i in range(0, len(m), CHUNK):
        block = label(m, i)
        labels[i:i + len(block)] = block
    write_cached(cached, lambda fh: np.save(fh, labels))
    return labels


@dataclass
class PanNuke(Dataset):
    #: keep only patches of this tissue type (types.npy value), e.g. "Cervix"; "" keeps all
    tissue: str = ""
    #: how a patch's label comes from its mask: "neoplastic" (benign/malignant) or "dominant" (nucleus type)
    label_rule: str = "neoplastic"

    @property
    def layout(self) -> str:
        return f"{self.folder}/Fold {{1,2,3}}/{{images/foldN/images.npy,images/foldN/types.npy,masks/foldN/masks.npy}}"

    def records(self, base: Path) -> Iterable[Record]:
        present = [k for k in FOLDS if (base / f"Fold {k}").is_dir()]
        if not present:
            raise layout_error(self.id, base, f"{base}/Fold 1/images/fold1/images.npy (unzipped fold_1.zip), ...")
        for k in present:
            files = fold_files(k)
            missing = [f for f in files if not (base / f).is_file()]
            if missing:
                raise layout_error(self.id, base / f"Fold {k}", ", ".join(str(base / f) for f in files),
                                   f"{base / missing[0]} not found")
            images = np.load(base / files[0], mmap_mode="r")
            types = np.load(base / files[1], allow_pickle=False)
            labels = neoplastic_labels(base / files[2], self.label_rule)
            if not len(images) == len(types) == len(labels):
                raise DatasetNotFoundError(f"{self.id}: fold {k} arrays disagree: {len(images)} images, "
                                           f"{len(types)} types, {len(labels)} masks")
            for i, (tissue, label) in enumerate(zip(types.tolist(), labels.tolist())):
                if not self.tissue or tissue == self.tissue:
                    yield Record(f"{files[0]}#{i}", label, f"fold{k}", (("tissue", str(tissue)),))

    def open_image(self, base: Path, path: str) -> Image.Image:
        file, _, index = path.rpartition("#")
        row = np.asarray(_array(str(base / file))[int(index)])
        if row.dtype != np.uint8:
            row = np.clip(np.rint(row), 0, 255).astype(np.uint8)
        return Image.fromarray(row[..., :3]).convert("RGB")


@dataclass
class PanNukeNuclei(PanNuke):
    """Nucleus-type segmentation of PanNuke patches (see the module docstring)."""

    label_rule: str = "dominant"
    segmentation_window: int = 64

    def segmentation_truth(self, base: Path, path: str, grid_shape: tuple[int, int], cell_size0: int) -> np.ndarray:
        file, _, index = path.rpartition("#")
        masks = file.replace("/images/", "/masks/").replace("images.npy", "masks.npy")
        return mask_to_grid(pixel_classes(_array(str(base / masks))[int(index)]), grid_shape, int(cell_size0))


@hookimpl
def register_datasets(register):
    downloads = tuple(Download(f"{URL}/fold_{k}.zip", f"fold_{k}.zip", f"sha256:{SHA256[k]}", extract_to="PanNuke")
                      for k in FOLDS)
    common = dict(folder="PanNuke", classes=CLASSES, url=URL, splits=("fold1", "fold2", "fold3"), eval_split=None,
                  downloads=downloads)
    register(PanNuke(id="pannuke", title="PanNuke (benign/malignant)", prompt_file="pannuke.json",
                     tags={"organ": "multi", "stain": "H&E", "group": "general"}, expected_files=7901, **common))
    register(PanNuke(id="pannuke-cervix", title="PanNuke cervix (benign/malignant)",
                     prompt_file="pannuke-cervix.json", tissue="Cervix",
                     tags={"organ": "cervix", "stain": "H&E", "group": "cervix"}, **common))
    nuclei = {**common, "classes": NUCLEI}
    register(PanNukeNuclei(
        id="pannuke-cervix-nuclei", title="PanNuke cervix nucleus types (segmentation)",
        prompt_file="pannuke-nuclei.json", tissue="Cervix", mpp=0.25,
        tags={"organ": "cervix", "stain": "H&E", "group": "cervix"},
        opt_out={"zeroshot": "its tile labels only pick items for segmentation (pannuke-cervix classifies tiles)",
                 "fewshot": "its tile labels only pick items for segmentation (pannuke-cervix classifies tiles)"},
        **nuclei))
