"""Each perturbation against an independent computation on a real H&E patch (CRC-VAL-HE-7K)."""
import io
import pickle
import zlib

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from skimage.color import hed2rgb, rgb2hed

from pathboard.core.errors import PathboardError
from pathboard.core.science.perturb import DEFAULT, PERTURBATIONS, VERSION, PerturbedOpen, hed_jitter, item_rng, resolve

SEED, ITEM = 7, "TUM/TUM-TCGA-DRHQMTQA.png"


@pytest.fixture(scope="module")
def root(shared_data):
    return shared_data / "CRC-VAL-HE-7K"


@pytest.fixture(scope="module")
def patch(root) -> Image.Image:
    with Image.open(root / ITEM) as img:
        return img.convert("RGB")


def arr(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def drawn(name: str, seed: int = SEED, item: str = ITEM) -> dict:
    return PERTURBATIONS[name].draw(item_rng(seed, name, item))


def gaussian_numpy(image: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian convolution with scipy's "reflect" edges (numpy's "symmetric"), truncated at 4 sigma."""
    radius = int(4 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    h, w = image.shape[:2]
    padded = np.pad(image.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    rows = sum(k * padded[i:i + h] for i, k in enumerate(kernel))
    both = sum(k * rows[:, i:i + w] for i, k in enumerate(kernel))
    return np.clip(np.rint(both), 0, 255)


def test_registry_names_order_and_kinds():
    assert DEFAULT == ("jpeg-30", "jpeg-50", "jpeg-75", "blur-1", "blur-2", "hed-light", "hed-strong",
                       "brightness", "contrast", "rot90", "flip", "downscale-0.5")
    assert {p.kind for p in PERTURBATIONS.values()} == {"compression", "blur", "stain", "colour", "invariance",
                                                        "resolution"}
    assert PERTURBATIONS["jpeg-30"].title == "JPEG round trip at quality 30"
    assert PERTURBATIONS["hed-light"].key() == {"name": "hed-light", "version": VERSION}
    assert [p.name for p in resolve(["flip", "jpeg-50"])] == ["flip", "jpeg-50"]


def test_item_rng_is_the_documented_generator():
    expected = np.random.default_rng([3, zlib.crc32(b"hed-light"), zlib.crc32(b"a/b.png")]).random(5)
    assert np.array_equal(item_rng(3, "hed-light", "a/b.png").random(5), expected)


@pytest.mark.parametrize("name", DEFAULT)
def test_every_perturbation_changes_the_image_and_keeps_mode_and_size(name, patch):
    out = PERTURBATIONS[name](patch, SEED, ITEM)
    assert out.mode == "RGB" and out.size == patch.size
    assert not np.array_equal(arr(out), arr(patch))
    wide = patch.crop((0, 0, 224, 160))
    out = PERTURBATIONS[name](wide, SEED, ITEM)
    assert out.mode == "RGB" and out.size == ((160, 224) if name == "rot90" else (224, 160))


@pytest.mark.parametrize("quality", [30, 50, 75])
def test_jpeg_is_a_pil_round_trip(quality, patch):
    buffer = io.BytesIO()
    patch.save(buffer, format="JPEG", quality=quality)
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert np.array_equal(np.asarray(PERTURBATIONS[f"jpeg-{quality}"](patch, SEED, ITEM)), expected)


@pytest.mark.parametrize("sigma", [1, 2])
def test_blur_is_a_gaussian_convolution(sigma, patch):
    got = arr(PERTURBATIONS[f"blur-{sigma}"](patch, SEED, ITEM))
    assert np.abs(got - gaussian_numpy(np.asarray(patch), sigma)).max() <= 1


@pytest.mark.parametrize("name, sigma", [("hed-light", 0.05), ("hed-strong", 0.2)])
def test_hed_jitter_follows_tellez(name, sigma, patch):
    params = drawn(name)
    alpha, beta = np.asarray(params["alpha"]), np.asarray(params["beta"])
    assert alpha.shape == beta.shape == (3,)
    assert np.all((1 - sigma <= alpha) & (alpha <= 1 + sigma)) and np.all((-sigma <= beta) & (beta <= sigma))
    hed = rgb2hed(np.asarray(patch))
    for c in range(3):
        hed[..., c] = hed[..., c] * alpha[c] + beta[c]
    expected = np.round(np.clip(hed2rgb(hed), 0, 1) * 255)
    assert np.abs(arr(PERTURBATIONS[name](patch, SEED, ITEM)) - expected).max() <= 1


def test_hed_jitter_without_jitter_is_nearly_the_identity(patch):
    out = hed_jitter(patch, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert np.abs(arr(out) - arr(patch)).mean() < 2


@pytest.mark.parametrize("name, enhancer", [("brightness", ImageEnhance.Brightness),
                                            ("contrast", ImageEnhance.Contrast)])
def test_brightness_and_contrast_are_pil_enhancers(name, enhancer, patch):
    factor = drawn(name)["factor"]
    assert 0.7 <= factor <= 1.3
    expected = np.asarray(enhancer(patch).enhance(factor))
    assert np.array_equal(np.asarray(PERTURBATIONS[name](patch, SEED, ITEM)), expected)


def test_rot90_and_flip(patch):
    a = np.asarray(patch)
    assert np.array_equal(np.asarray(PERTURBATIONS["rot90"](patch, SEED, ITEM)), np.rot90(a))
    assert np.array_equal(np.asarray(PERTURBATIONS["flip"](patch, SEED, ITEM)), a[:, ::-1])


def test_downscale_is_bicubic_down_and_up(patch):
    expected = patch.resize((112, 112), Image.Resampling.BICUBIC).resize((224, 224), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(PERTURBATIONS["downscale-0.5"](patch, SEED, ITEM)), np.asarray(expected))


@pytest.mark.parametrize("name", ["hed-strong", "brightness"])
def test_draws_are_per_item_and_per_seed(name, patch):
    p = PERTURBATIONS[name]
    assert np.array_equal(np.asarray(p(patch, SEED, ITEM)), np.asarray(p(patch, SEED, ITEM)))
    assert drawn(name) == drawn(name)
    assert drawn(name, item="TUM/other.png") != drawn(name)
    assert drawn(name, seed=SEED + 1) != drawn(name)


def test_perturbed_open_pickles_and_matches_the_perturbation(root, patch):
    opener = pickle.loads(pickle.dumps(PerturbedOpen(None, "hed-strong", SEED)))
    expected = PERTURBATIONS["hed-strong"](patch, SEED, ITEM)
    assert np.array_equal(np.asarray(opener(root, ITEM)), np.asarray(expected))


def test_unknown_names_are_one_line_errors():
    with pytest.raises(PathboardError, match="nope") as info:
        resolve(["flip", "nope"])
    assert "\n" not in str(info.value)
    with pytest.raises(PathboardError, match="nope"):
        PerturbedOpen(None, "nope", SEED)
