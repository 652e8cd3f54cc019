"""CONCH through its plugin: a tiny CoCa in the real layouts (HF cache of the gated MahmoodLab/conch,
a local pytorch_model.bin), its own byte-level BPE tokenizer, and the one-line failures."""
import importlib
import json
import sys

import huggingface_hub.constants
import pytest
import torch
from support.helpers import pathboard
from support.model_contract import check_model
from support.tiny import OPENAI_MEAN, OPENAI_STD, hf_snapshot

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.weights import Weights

# conch-fork's conch_byte_level_bpe_uncased.json: <start_of_text>=1, <end_of_text>=2, <pad>=0; the first
# word carries the byte-level prefix space ("Ġan" = 285; "an" = 294 is what transformers 4.48-4.57 give)
GOLDEN = ("an H&E image of adipose tissue.", [1, 285, 310, 12, 75, 4064, 290, 4411, 582, 20, 2])


def conch_ids(model, prompt):
    from pathboard.plugins.models.conch import tokenize

    ids = tokenize(model.tokenizer, [prompt])[0].tolist()
    return ids[: ids.index(2) + 1]


@pytest.fixture(scope="module")
def occ():
    return pytest.importorskip("conch.open_clip_custom")


@pytest.fixture(scope="module")
def checkpoint(occ, tmp_path_factory):
    from support.tiny_openclip_hf import write_conch_checkpoint

    return write_conch_checkpoint(tmp_path_factory.mktemp("conch") / "pytorch_model.bin")


@pytest.fixture(scope="module")
def conch_hub(tiny_hub, checkpoint):
    hf_snapshot(tiny_hub, "MahmoodLab/conch", {"pytorch_model.bin": checkpoint})
    return tiny_hub


@pytest.mark.slow
def test_conch_from_the_hf_cache(conch_hub, shared_data, tmp_path):
    w = plugins.get("model", "conch").resolve()
    assert w.origin == "hf-cache:MahmoodLab/conch" and w.path.name == "pytorch_model.bin"
    model = check_model("conch", size=448, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                        tmp_path=tmp_path, tokenize=conch_ids, golden=GOLDEN)
    # zero-shot image features are the contrastive (attention-pooled, projected) ones
    x = torch.randn(1, 3, 448, 448)
    want = torch.nn.functional.normalize(model.model.visual(x)[0], dim=-1)
    torch.testing.assert_close(model.encode_images(x), want)


@pytest.mark.slow
def test_conch_local_checkpoint(checkpoint, shared_data, tmp_path):
    """--weights conch=FILE (any name) through the CLI; --weights conch=DIR holding pytorch_model.bin."""
    local = tmp_path / "my-conch.bin"
    local.write_bytes(checkpoint.read_bytes())
    check_model("conch", size=448, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=conch_ids, golden=GOLDEN, weights=local)
    spec = plugins.get("model", "conch")
    w = spec.resolve(Weights(checkpoint.parent, "--weights"))
    assert w.path == checkpoint
    spec.load(w, Runtime.create("cpu"))
    with pytest.raises(WeightsNotFoundError, match=f"no pytorch_model.bin in {tmp_path}"):
        spec.resolve(Weights(tmp_path, "--weights"))


def test_tokenisation_is_128_with_the_pad_appended(occ, monkeypatch):
    from pathboard.plugins.models.conch import tokenize, tokenizer

    tok = tokenizer(occ)

    def no(*a, **k):
        raise AssertionError("batch_encode_plus is gone in transformers 5")

    monkeypatch.setattr(type(tok), "batch_encode_plus", no, raising=False)
    ids = tokenize(tok, ["an H&E image of adipose tissue.", "tumor " * 300])
    assert ids.shape == (2, 128) and ids.dtype == torch.long
    assert ids[0, :11].tolist() == GOLDEN[1] and set(ids[0, 11:].tolist()) == {0}
    assert ids[1, 0] == 1 and ids[1, 126] == 2 and ids[1, 127] == 0  # truncated to 127, end kept, pad appended
    # what conch's own tokenize() intended, which itself cannot run on transformers 5
    if not hasattr(tok, "batch_encode_plus") or type(tok).batch_encode_plus is no:
        with pytest.raises((AttributeError, AssertionError)):
            occ.tokenize(tok, ["x"])


def test_tokenizer_keeps_the_prefix_space_of_its_file(occ, monkeypatch):
    """transformers 4.48-4.57 rewrite the byte-level pre-tokenizer to add_prefix_space=False; pathboard
    restores the file's, so the ids are those CONCH was trained with on any version."""
    from tokenizers import pre_tokenizers

    from pathboard.plugins.models.conch import tokenize, tokenizer

    original = occ.get_tokenizer

    def like_transformers_4_5x():
        tok = original()
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        return tok

    monkeypatch.setattr(occ, "get_tokenizer", like_transformers_4_5x)
    assert tokenize(like_transformers_4_5x(), [GOLDEN[0]])[0, 1] == 294  # the damage
    assert tokenize(tokenizer(occ), [GOLDEN[0]])[0, :11].tolist() == GOLDEN[1]


def test_published_checkpoint_loads_as_conch_vit_b16(occ):
    """The architecture read from a checkpoint of the published shapes is the upstream name, with or
    without the caption decoder; a tiny one keeps the published heads, image size and vocabulary."""
    from support.tiny_openclip_hf import conch_tiny_config

    from pathboard.plugins.models.conch import architecture

    cfg = json.loads((occ.factory.CFG_DIR / "conch_ViT-B-16.json").read_text())
    cfg.pop("custom_text")
    with torch.device("meta"):
        full = occ.CoCa(**cfg).state_dict()
    assert sum(v.numel() for k, v in full.items() if "attn_mask" not in k) / 1e6 == pytest.approx(395, abs=1)
    assert architecture(occ, full) == "conch_ViT-B-16"
    assert architecture(occ, {k: v for k, v in full.items() if not k.startswith("text_decoder.")}) == "conch_ViT-B-16"

    tiny = conch_tiny_config()
    with torch.device("meta"):
        got = architecture(occ, occ.CoCa(**{k: v for k, v in tiny.items() if k != "custom_text"}).state_dict())
    assert got == tiny and got["vision_cfg"]["image_size"] == 448 and got["text_cfg"]["vocab_size"] == 32007


def test_wrong_checkpoint_is_one_line(occ, tmp_path):
    bad = tmp_path / "pytorch_model.bin"
    torch.save({"visual.trunk.cls_token": torch.zeros(1, 1, 48)}, bad)
    spec = plugins.get("model", "conch")
    with pytest.raises(PathboardError, match="not a CONCH checkpoint") as err:
        spec.load(spec.resolve(Weights(bad, "--weights")), Runtime.create("cpu"))
    assert "\n" not in str(err.value)


def test_gated_weights_missing_say_the_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        plugins.get("model", "conch").resolve()
    msg = str(err.value)
    assert "\n" not in msg
    steps = ["huggingface.co/MahmoodLab/conch", "hf auth login", "hf download MahmoodLab/conch",
             "pytorch_model.bin", "--weights conch=PATH", "HF_HUB_OFFLINE"]
    assert all(s in msg for s in steps) and [msg.index(s) for s in steps[:3]] == sorted(msg.index(s) for s in steps[:3])
    card = plugins.get("model", "conch").card
    assert card.gated and card.license == "CC BY-NC-ND 4.0" and "Lu et al., Nature Medicine 2024" in card.paper
    assert (card.params, card.embed_dim, card.input_size) == ("395M", 512, 448)


def test_without_conch_it_registers_and_says_which_extra(monkeypatch, tmp_path):
    import pathboard.plugins.models.conch as plugin

    for name in [m for m in sys.modules if m == "conch" or m.startswith("conch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "conch", None)  # import conch -> ImportError
    plugin = importlib.reload(plugin)
    registered = []
    plugin.register_models(registered.append)
    assert [s.id for s in registered] == ["conch"]
    ckpt = tmp_path / "pytorch_model.bin"
    ckpt.write_bytes(b"x")
    spec = registered[0]
    with pytest.raises(PathboardError) as err:
        spec.load(spec.resolve(Weights(ckpt, "--weights")), Runtime.create("cpu"))
    assert "\n" not in str(err.value) and 'pip install "pathboard[conch]"' in str(err.value)
    monkeypatch.undo()
    importlib.reload(plugin)


@pytest.mark.slow
@pytest.mark.subprocess
def test_without_conch_the_cli_says_which_extra(tmp_path, shared_data):
    shim = tmp_path / "shim" / "conch"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named conch (test shim)')\n")
    ckpt = tmp_path / "pytorch_model.bin"
    ckpt.write_bytes(b"x")
    env = {"PYTHONPATH": str(shim.parent)}
    assert "conch" in pathboard("list", "models", env=env).stdout
    out = pathboard("run", "--models", "conch", "--weights", f"conch={ckpt}", "--datasets", "crc-val-he-7k",
                    "--data-root", shared_data, "--db", tmp_path / "x.duckdb", env=env)
    assert 'pip install "pathboard[conch]"' in out.stderr and "Traceback" not in out.stderr
