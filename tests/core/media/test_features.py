"""TRIDENT-layout features: read as TRIDENT writes them, refused in one line when they are not the model's."""
import h5py
import numpy as np
import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.media.features import FeatureFolder, folder_name, write_features
from pathboard.core.media.tiling import Tiling
from pathboard.testing import write_trident_features

TITAN = Tiling(size=512, mpp=None, magnification=20.0)


def test_trident_files_are_read_as_they_are(tmp_path):
    feats, coords = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32), np.arange(10).reshape(5, 2) * 1024
    folder = write_trident_features(tmp_path, "TCGA-AA-0001-01Z-00-DX1.ABC", feats, coords, 1024, encoder="conch_v15")
    assert folder.relative_to(tmp_path).as_posix() == "20x_512px_0px_overlap/features_conch_v15"
    found = FeatureFolder.open(folder)
    assert (found.encoder, found.magnification, found.patch_size) == ("conch_v15", 20.0, 512)
    read, where, info, key = found.read("TCGA-CESC/uuid/TCGA-AA-0001-01Z-00-DX1.ABC.svs")
    np.testing.assert_array_equal(read, feats)
    np.testing.assert_array_equal(where, coords)
    assert info["size0"] == 1024 and key.startswith("features:")
    assert found.mismatch("titan", "conch_v15", TITAN) is None
    with pytest.raises(FileNotFoundError, match="expected TCGA-BB"):
        found.read("TCGA-CESC/uuid/TCGA-BB-0002-01Z-00-DX1.DEF.svs")


def test_another_encoder_or_magnification_is_refused_in_one_line(tmp_path):
    coords = np.zeros((2, 2))
    virchow = FeatureFolder.open(write_trident_features(tmp_path, "s", np.zeros((2, 4)), coords, 448, encoder="virchow",
                                                        patch_size=224))
    line = virchow.mismatch("titan", "conch_v15", TITAN)
    assert "holds virchow features at 20x, 224 px; titan reads conch_v15 features at 20x, 512 px" in line
    low = FeatureFolder.open(write_trident_features(tmp_path / "b", "s", np.zeros((2, 4)), coords, 2048,
                                                    encoder="conch_v15", magnification=10.0))
    assert "holds conch_v15 features at 10x, 512 px; titan reads conch_v15 features at 20x, 512 px" in \
        low.mismatch("titan", "conch_v15", TITAN)
    assert "\n" not in line


def test_clam_style_files_without_names_say_what_is_missing(tmp_path):
    (tmp_path / "h5_files").mkdir()
    with h5py.File(tmp_path / "h5_files" / "s.h5", "w") as fh:
        fh.create_dataset("features", data=np.zeros((1, 3, 4)))  # CLAM: [1, T, D]
        fh.create_dataset("coords", data=np.zeros((3, 2)))
    with pytest.raises(PathboardError, match="cannot tell which patch encoder made these features"):
        FeatureFolder.open(tmp_path / "h5_files")
    with pytest.raises(PathboardError, match="holds no .h5 files"):
        FeatureFolder.open(tmp_path)
    with pytest.raises(PathboardError, match="no such folder"):
        FeatureFolder.open(tmp_path / "nope")


def test_pathboard_writes_what_it_reads(tmp_path):
    path = tmp_path / folder_name(TITAN, "conch_v15") / "slide.h5"
    feats = np.ones((3, 6), dtype=np.float32)
    write_features(path, feats, np.arange(6).reshape(3, 2), 1024, encoder="conch_v15", tiling=TITAN)
    found = FeatureFolder.open(path.parent)
    assert (found.encoder, found.magnification, found.patch_size) == ("conch_v15", 20.0, 512)
    read, coords, info, _ = found.read("x/slide.svs")
    np.testing.assert_array_equal(read, feats)
    assert info["size0"] == 1024 and coords.shape == (3, 2)


def test_a_broken_file_is_one_line_for_its_slide(tmp_path):
    folder = write_trident_features(tmp_path, "good", np.ones((2, 4)), np.zeros((2, 2)), 1024, encoder="conch_v15")
    found = FeatureFolder.open(folder)
    with h5py.File(folder / "nofeatures.h5", "w") as fh:
        fh.create_dataset("coords", data=np.zeros((2, 2)))
    with pytest.raises(PathboardError, match="nofeatures.h5 has no 'features' dataset"):
        found.read("x/nofeatures.svs")
    write_trident_features(tmp_path, "empty", np.zeros((0, 4)), np.zeros((0, 2)), 1024, encoder="conch_v15")
    with pytest.raises(PathboardError, match="empty.h5: no tiles"):
        found.read("x/empty.svs")
    write_trident_features(tmp_path, "ragged", np.zeros((3, 4)), np.zeros((2, 2)), 1024, encoder="conch_v15")
    with pytest.raises(PathboardError, match="3 feature rows for 2 coordinates"):
        found.read("x/ragged.svs")
    feats = np.ones((3, 4), dtype=np.float32)
    feats[1] = np.nan
    write_trident_features(tmp_path, "nan", feats, np.arange(6).reshape(3, 2), 1024, encoder="conch_v15")
    read, coords, info, _ = found.read("x/nan.svs")
    assert len(read) == 2 and coords.tolist() == [[0, 1], [4, 5]] and info["nonfinite_tiles"] == 1


def test_overlapping_tiles_are_another_tiling(tmp_path):
    folder = tmp_path / "20x_512px_128px_overlap" / "features_conch_v15"
    folder.mkdir(parents=True)
    with h5py.File(folder / "s.h5", "w") as fh:
        fh.create_dataset("features", data=np.zeros((1, 4)))
        fh.create_dataset("coords", data=np.zeros((1, 2))).attrs["patch_size_level0"] = 1024
    found = FeatureFolder.open(folder)
    assert (found.magnification, found.patch_size, found.overlap) == (20.0, 512, 128)
    assert "overlap by 128 px; titan reads tiles that overlap by 0 px" in found.mismatch("titan", "conch_v15", TITAN)
