"""The dataset interface: manifests name missing files once, warn on empty class folders, and notice
content changes (by size and mtime, or hashing the content with ``--verify``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pathboard.core.errors import DatasetNotFoundError
from pathboard.core.interfaces.dataset import ImageFolderDataset

RNG = np.random.default_rng(0)


def folder_dataset(tmp_path: Path, per_class: int = 2) -> tuple[ImageFolderDataset, Path]:
    for cls in ("a", "b"):
        for i in range(per_class):
            path = tmp_path / "t" / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    return ImageFolderDataset(id="t", folder="t", classes=["a", "b"], url="x"), tmp_path


def test_broken_link_is_left_out_named_and_warned_once(tmp_path, capsys):
    ds, root = folder_dataset(tmp_path)
    (root / "t" / "a" / "vanished.png").symlink_to(root / "nowhere.png")
    m = ds.manifest(root)
    assert "a/vanished.png" not in m.paths and len(m) == 4
    assert m.missing == {"a/vanished.png": "file not found (vanished or a broken link)"}
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == ("warning: t: left out 1 missing file(s), e.g. a/vanished.png: "
                   "file not found (vanished or a broken link)\n")
    assert ds.open_image(m.root, m.paths[0]).mode == "RGB"


def test_all_missing_is_the_layout_error(tmp_path):
    (tmp_path / "t" / "a").mkdir(parents=True)
    (tmp_path / "t" / "a" / "x.png").symlink_to(tmp_path / "nowhere.png")
    ds = ImageFolderDataset(id="t", folder="t", classes=["a", "b"], url="x")
    with pytest.raises(DatasetNotFoundError, match="not in the official layout") as err:
        ds.manifest(tmp_path)
    assert "a/x.png" in str(err.value) and "\n" not in str(err.value)


def test_empty_class_folder_warns_and_goes_on(tmp_path, capsys):
    ds, root = folder_dataset(tmp_path)
    for p in (root / "t" / "b").iterdir():
        p.unlink()
    (root / "t" / "b" / "notes.txt").write_text("no images here")
    m = ds.manifest(root)
    assert len(m) == 2 and m.missing == {}
    assert capsys.readouterr().err == "warning: t: empty class folder(s): b\n"


def test_hash_notices_same_size_content_change_by_mtime(tmp_path):
    ds, root = folder_dataset(tmp_path)
    file = root / "t" / "a" / "0.png"
    st = file.stat()
    first = ds.manifest(root).hash
    assert ds.manifest(root).hash == first  # stable
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))  # same content, same mtime: same hash
    assert ds.manifest(root).hash == first
    data = bytearray(file.read_bytes())
    data[-20] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert file.stat().st_size == st.st_size
    assert ds.manifest(root).hash != first


def test_verify_hashes_the_content(tmp_path):
    ds, root = folder_dataset(tmp_path)
    file = root / "t" / "b" / "1.png"
    st = file.stat()
    plain, verified = ds.manifest(root).hash, ds.manifest(root, verify=True).hash
    assert plain != verified and ds.manifest(root, verify=True).hash == verified
    data = bytearray(file.read_bytes())
    data[-20] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime restored
    assert ds.manifest(root).hash == plain  # the cheap hash cannot see it
    assert ds.manifest(root, verify=True).hash != verified
