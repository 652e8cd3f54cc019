"""TITAN, PRISM and their patch encoders through their plugins: the stand-ins (pathboard.testing) in the real
on-disk layouts, loaded by the production loaders from the HF cache with HF_HUB_OFFLINE=1 and trust_remote_code."""
import numpy as np
import pytest
import torch
from PIL import Image

from pathboard.core.engine import plugins
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.weights import Weights
from pathboard.testing import check_slide_model

pytestmark = pytest.mark.usefixtures("slide_hub")


def tile():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8))


def test_titan_from_the_hf_cache_runs_its_hub_code():
    spec = plugins.get("model", "titan")
    weights = spec.resolve()
    assert weights.origin == "hf-cache:MahmoodLab/TITAN"
    assert {"modeling_titan.py", "configuration_titan.py"} <= {f.name for f in weights.files()}  # fingerprinted
    encoder = check_slide_model(spec, features_dim=24)
    assert encoder.logit_scale == 1.0  # TITAN's zero_shot() applies no temperature
    assert spec.patch_encoder == "conch-v1.5" and (spec.tiling.size, spec.tiling.magnification) == (512, 20.0)


def test_titan_reads_one_batched_slide_and_zero_shots_through_its_projection():
    encoder = check_slide_model(plugins.get("model", "titan"), features_dim=24)
    feats = np.random.default_rng(2).normal(size=(5, 24)).astype(np.float32)
    coords = np.arange(10).reshape(5, 2) * 1024
    with pytest.raises(ValueError, match=r"expected \(1, N, C\) features"):  # the hub code's own contract
        encoder.model.encode_slide_from_patch_features(torch.tensor(feats), torch.tensor(coords), 1024)
    raw = encoder.encode_slide(feats, coords, 1024)  # the representation: before the projection
    projected = raw @ encoder.model.vision_encoder.proj.detach().numpy()
    np.testing.assert_allclose(encoder.to_text(raw), projected / np.linalg.norm(projected), rtol=1e-5)
    assert not np.allclose(encoder.to_text(raw), raw / np.linalg.norm(raw), atol=1e-3)


def test_titan_reads_where_the_tiles_are():
    encoder = check_slide_model(plugins.get("model", "titan"), features_dim=24)
    feats = np.random.default_rng(1).normal(size=(6, 24)).astype(np.float32)
    grid = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]) * 1024
    moved = grid.copy()
    moved[0] = [10 * 1024, 10 * 1024]
    assert not np.allclose(encoder.encode_slide(feats, grid, 1024), encoder.encode_slide(feats, moved, 1024))


def test_conch_v15_gives_raw_features_as_titan_reads_them():
    spec = plugins.get("model", "conch-v1.5")
    assert spec.resolve().origin == "hf-cache:MahmoodLab/TITAN"  # from TITAN's own repository: return_conch()
    model = spec.load(spec.resolve(), Runtime.create("cpu"))
    x = model.encode_images(torch.stack([model.preprocess(tile())] * 2))
    assert x.shape == (2, 24) and x.dtype == torch.float32
    assert not torch.allclose(x.norm(dim=-1), torch.ones(2))  # not L2-normalised: TITAN reads raw features


def test_prism_over_virchow():
    virchow = plugins.get("model", "virchow")
    model = virchow.load(virchow.resolve(), Runtime.create("cpu"))
    x = model.encode_images(torch.stack([model.preprocess(tile())]))
    assert x.shape == (1, 64)  # class token and mean patch token, side by side, as PRISM reads them
    encoder = check_slide_model(plugins.get("model", "prism"), features_dim=64)
    assert encoder.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)


def test_a_local_folder_is_a_copy_of_the_repository(tmp_path):
    spec = plugins.get("model", "titan")
    with pytest.raises(Exception, match="no config.json in"):
        spec.resolve(Weights(tmp_path, "--weights"))
