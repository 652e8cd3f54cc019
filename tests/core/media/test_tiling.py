"""Tissue tiling of the real OpenSlide test slide at two resolutions and with overlap; broken and
unresolved slides are one-line errors."""
import pytest
from PIL import Image

from pathboard.core.errors import PathboardError
from pathboard.core.media.tiling import Tiling, open_slide, slide_mpp, tile_grid

CMU = "slides/CMU-1-Small-Region.svs"  # 2220 x 2967 px at 0.499 µm/px, one level


@pytest.mark.parametrize("mpp, size", [(0.5, 224), (1.0, 224), (0.5, 448)])
def test_tiling_the_real_slide_at_two_resolutions(shared_data, mpp, size):
    slide = open_slide(shared_data / CMU)
    assert slide_mpp(slide) == (0.499, "openslide.mpp-x")
    grid = tile_grid(slide, Tiling(size=size, mpp=mpp))
    side = round(size * mpp / 0.499)
    assert grid.size0 == side and grid.level == 0 and grid.read_size == side
    most = (2220 // side) * (2967 // side)
    # the tissue is a diagonal strip over about 30% of the region (checked on the thumbnail and mask)
    assert 0.25 * most <= len(grid.coords) <= 0.6 * most
    assert (grid.coords % side == 0).all() and (grid.coords[:, 0] + side <= 2220).all()
    assert 0.2 < grid.tissue_fraction < 0.45


def test_overlap_multiplies_the_tile_count(shared_data):
    slide = open_slide(shared_data / CMU)
    plain = tile_grid(slide, Tiling(mpp=1.0))
    overlapping = tile_grid(slide, Tiling(mpp=1.0, overlap=0.75))
    assert 8 * len(plain.coords) < len(overlapping.coords) < 20 * len(plain.coords)


def test_broken_and_unresolved_slides_are_one_line_errors(shared_data, tmp_path):
    with pytest.raises(PathboardError, match="cannot open slide broken.svs") as err:
        open_slide(shared_data / "slides" / "broken.svs")
    assert "\n" not in str(err.value)
    plain = tmp_path / "photo.png"
    Image.new("RGB", (600, 400), (200, 80, 150)).save(plain)
    with pytest.raises(PathboardError, match="has no resolution metadata"):
        tile_grid(open_slide(plain), Tiling(), name="photo.png")


def test_a_thumbnail_is_read_from_the_slide_once_then_from_the_cache(shared_data, tmp_path, monkeypatch):
    import numpy as np

    from pathboard.core.media import tiling

    monkeypatch.setenv("PATHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tiling, "_RECENT", {})
    reads = []
    real = tiling._thumbnail_of
    monkeypatch.setattr(tiling, "_thumbnail_of", lambda *a: reads.append(a[1]) or real(*a))
    slide = open_slide(shared_data / CMU)
    direct = tile_grid(slide, Tiling())
    cached = tile_grid(slide, Tiling(), file=shared_data / CMU)  # the tissue mask from the cached thumbnail
    assert np.array_equal(direct.coords, cached.coords) and direct.tissue_fraction == cached.tissue_fraction
    assert reads == [tiling.THUMBNAIL] and len(list((tmp_path / "cache" / "thumbnails").glob("*.npy"))) == 1
    first, dims = tiling.thumbnail(shared_data / CMU)
    monkeypatch.setattr(tiling, "_RECENT", {})  # another process: only the file is left
    again, dims_again = tiling.thumbnail(shared_data / CMU)
    assert reads == [tiling.THUMBNAIL] and dims == dims_again == (2220, 2967)
    assert np.array_equal(np.asarray(first), np.asarray(again))  # lossless
    # a PNG thumbnail an earlier release cached is read as it is: no slide read, the same pixels
    (saved,) = (tmp_path / "cache" / "thumbnails").glob("*.npy")
    again.save(saved.with_suffix(".png"))
    saved.unlink()
    monkeypatch.setattr(tiling, "_RECENT", {})
    old, dims_old = tiling.thumbnail(shared_data / CMU)
    assert reads == [tiling.THUMBNAIL] and dims_old == dims and np.array_equal(np.asarray(old), np.asarray(first))


def test_a_tile_grid_is_computed_once_per_slide_and_tiling(shared_data, tmp_path, monkeypatch):
    import numpy as np

    from pathboard.core.media import tiling

    monkeypatch.setenv("PATHBOARD_CACHE", str(tmp_path / "cache"))
    calls = []
    real = tiling._tile_grid
    monkeypatch.setattr(tiling, "_tile_grid", lambda *a: calls.append(a[1]) or real(*a))
    slide = open_slide(shared_data / CMU)
    first = tile_grid(slide, Tiling(), file=shared_data / CMU)
    again = tile_grid(slide, Tiling(), file=shared_data / CMU)  # another model: read back
    other = tile_grid(slide, Tiling(mpp=1.0), file=shared_data / CMU)  # another tiling: its own
    assert calls == [Tiling(), Tiling(mpp=1.0)]
    assert np.array_equal(first.coords, again.coords) and first.coords.dtype == again.coords.dtype == np.int64
    assert (first.level, first.read_size, first.size0, first.slide_mpp, first.mpp_source, first.tissue_fraction) == (
        again.level, again.read_size, again.size0, again.slide_mpp, again.mpp_source, again.tissue_fraction)
    assert len(other.coords) < len(first.coords)


@pytest.mark.parametrize("damage", [b"", b"not a zip at all", "truncated"])
def test_a_damaged_cached_grid_or_thumbnail_is_made_again(shared_data, tmp_path, monkeypatch, damage):
    import numpy as np

    from pathboard.core.media import tiling

    monkeypatch.setenv("PATHBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tiling, "_RECENT", {})
    slide = open_slide(shared_data / CMU)
    good = tile_grid(slide, Tiling(), file=shared_data / CMU)
    for cached in [*(tmp_path / "cache" / "tilings").glob("*.npz"), *(tmp_path / "cache" / "thumbnails").glob("*")]:
        data = cached.read_bytes()
        cached.write_bytes(data[: len(data) // 2] if damage == "truncated" else damage)
    monkeypatch.setattr(tiling, "_RECENT", {})
    again = tile_grid(slide, Tiling(), file=shared_data / CMU)
    assert np.array_equal(good.coords, again.coords)
    assert tiling.thumbnail(shared_data / CMU)[1] == (2220, 2967)
