"""KEP-CTP (local weights only) and KEEP (HF cache), pathboard's own modules, on tiny models in the real layouts."""
import os
import re
from pathlib import Path

import pytest
import torch
from support.model_contract import check_model
from support.tiny import hf_snapshot
from support.tiny_kep_keep import (
    CTP_TINY,
    DIM,
    GOLDEN,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TINY_BERT,
    timm054_layout,
    write_keep_files,
    write_kep_dir,
)

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.weights import Weights

# Key names of BertModel (transformers 4.34, which both repos pin / require; unchanged in 5.x).
BERT = ["embeddings.LayerNorm.bias", "embeddings.LayerNorm.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.word_embeddings.weight",
        *(f"encoder.layer.#.{m}.{p}" for m in ["attention.output.LayerNorm", "attention.output.dense",
                                               "attention.self.key", "attention.self.query", "attention.self.value",
                                               "intermediate.dense", "output.LayerNorm", "output.dense"]
          for p in ["bias", "weight"]),
        "pooler.dense.bias", "pooler.dense.weight"]


HEAD = ["visual_head.#.bias", "visual_head.#.weight"]


# The released KEP pytorch_model.bin: the KEP class of MAGIC-AI4Med/KEP inference/KEP_model.py (visual,
# visual_head, text = PATH_BERT(bert_model, mlp_embed), logit_scale; no text_head in the CTP model), whose
# visual is timm_ctp's swin_tiny_patch4_window7_224 with ConvStem. The visual names were listed from timm
# 0.5.4 (timm_ctp's base) building that model with KEP's ConvStem; the same names appear in TransPath issues
# #11/#32 (patch_embed.proj.0/1/3/4/6) and in timm-0.5.4 Swin load errors (attn_mask, relative_position_index).
KEP_KEYS = {
    *(f"visual.layers.#.blocks.#.{n}" for n in [
        "attn.proj.bias", "attn.proj.weight", "attn.qkv.bias", "attn.qkv.weight", "attn.relative_position_bias_table",
        "attn.relative_position_index", "attn_mask", "mlp.fc1.bias", "mlp.fc1.weight", "mlp.fc2.bias",
        "mlp.fc2.weight", "norm1.bias", "norm1.weight", "norm2.bias", "norm2.weight"]),
    "visual.layers.#.downsample.norm.bias", "visual.layers.#.downsample.norm.weight",
    "visual.layers.#.downsample.reduction.weight", "visual.norm.bias", "visual.norm.weight",
    "visual.patch_embed.norm.bias", "visual.patch_embed.norm.weight", "visual.patch_embed.proj.#.bias",
    "visual.patch_embed.proj.#.num_batches_tracked", "visual.patch_embed.proj.#.running_mean",
    "visual.patch_embed.proj.#.running_var", "visual.patch_embed.proj.#.weight",
    *HEAD, *(f"text.bert_model.{k}" for k in BERT), "text.mlp_embed.#.bias", "text.mlp_embed.#.weight", "logit_scale",
}


# Astaxanthin/KEEP model.safetensors: KEEPModel of the repo's modeling_keep.py (visual = timm
# vit_large_patch16_224 with init_values, num_classes=0; LayerScale renamed to .weight by its
# RenameLayerScale; visual_head; text = BertModel; logit_scale).
KEEP_KEYS = {
    "visual.cls_token", "visual.pos_embed", "visual.patch_embed.proj.bias", "visual.patch_embed.proj.weight",
    *(f"visual.blocks.#.{n}" for n in [
        "attn.proj.bias", "attn.proj.weight", "attn.qkv.bias", "attn.qkv.weight", "ls1.weight", "ls2.weight",
        "mlp.fc1.bias", "mlp.fc1.weight", "mlp.fc2.bias", "mlp.fc2.weight", "norm1.bias", "norm1.weight",
        "norm2.bias", "norm2.weight"]),
    "visual.norm.bias", "visual.norm.weight", *HEAD, *(f"text.{k}" for k in BERT), "logit_scale",
}


def bert_ids(model, prompt):
    return model.tokenizer(prompt)["input_ids"]


def patterns(keys) -> set[str]:
    return {re.sub(r"\.\d+(?=\.|$)", ".#", k) for k in keys}


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


@pytest.fixture(scope="module")
def kep_dir(tmp_path_factory) -> Path:
    return write_kep_dir(tmp_path_factory.mktemp("kep") / "KEP-CTP_OpenPath")


@pytest.fixture(scope="module")
def keep_hub(tmp_path_factory) -> Path:
    """Astaxanthin/KEEP in the session's offline HF cache, under its real file names."""
    src = write_keep_files(tmp_path_factory.mktemp("keep") / "KEEP")
    return hf_snapshot(Path(os.environ["HF_HOME"]), "Astaxanthin/KEEP", {f.name: f for f in src.iterdir()})


@pytest.mark.slow
def test_kep_ctp_contract(kep_dir, shared_data, tmp_path):
    check_model("kep-ctp", size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, dim=DIM, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=bert_ids, golden=GOLDEN, weights=kep_dir)


@pytest.mark.slow
def test_keep_contract_from_hf_cache(keep_hub, shared_data, tmp_path):
    model = check_model("keep", size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, dim=DIM, shared_data=shared_data,
                        tmp_path=tmp_path, tokenize=bert_ids, golden=GOLDEN)
    assert model.logit_scale == pytest.approx(25.0, rel=1e-5)  # the checkpoint's exp(logit_scale): 1/0.04


def test_keep_local_dir_with_github_release_checkpoint(tmp_path):
    """--weights keep=DIR also takes the GitHub release's pytorch_model.bin instead of model.safetensors."""
    spec = plugins.get("model", "keep")
    local = write_keep_files(tmp_path / "KEEP_release", bin_file=True)
    model = spec.load(spec.resolve(Weights(local, "--weights")), Runtime.create("cpu"))
    x = torch.randn(2, 3, 224, 224)
    assert model.encode_images(x).shape == (2, DIM) and model.encode_texts(["adipose tissue."]).shape == (1, DIM)


def test_kep_ctp_needs_local_weights(tmp_path):
    spec = plugins.get("model", "kep-ctp")
    with pytest.raises(WeightsNotFoundError) as exc:
        spec.resolve()
    msg = one_line(exc)
    assert "drive.google.com" in msg and "MAGIC-AI4Med/KEP" in msg and "--weights kep-ctp=DIR" in msg
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(WeightsNotFoundError) as exc:
        spec.resolve(Weights(partial, "--weights"))
    assert "config.json, vocab.txt" in one_line(exc)


@pytest.mark.parametrize("model_id", ["kep-ctp", "keep"])
def test_renamed_key_is_a_one_line_error(model_id, tmp_path):
    spec = plugins.get("model", model_id)
    if model_id == "kep-ctp":
        local, ckpt = write_kep_dir(tmp_path / "kep"), "pytorch_model.bin"
        sd = torch.load(local / ckpt, weights_only=True)
        sd["text.mlp_embed.0.weights"] = sd.pop("text.mlp_embed.0.weight")
        torch.save(sd, local / ckpt)
    else:
        from safetensors.torch import load_file, save_file

        local, ckpt = write_keep_files(tmp_path / "keep"), "model.safetensors"
        sd = load_file(str(local / ckpt))
        sd["visual.blocks.1.ls2.scale"] = sd.pop("visual.blocks.1.ls2.weight")
        save_file(sd, str(local / ckpt))
    with pytest.raises(PathboardError) as exc:
        spec.load(spec.resolve(Weights(local, "--weights")), Runtime.create("cpu"))
    msg = one_line(exc)
    assert ckpt in msg and "missing keys" in msg and "unexpected keys" in msg
    assert ("text.mlp_embed.0.weight" in msg) if model_id == "kep-ctp" else ("visual.blocks.1.ls2.gamma" in msg)


def test_tiny_checkpoints_use_the_released_key_names(kep_dir, keep_hub):
    from safetensors.torch import load_file

    kep = torch.load(kep_dir / "pytorch_model.bin", weights_only=True)
    assert patterns(kep) == KEP_KEYS
    assert {k.split(".")[3] for k in kep if k.startswith("visual.patch_embed.proj.")} == {"0", "1", "3", "4", "6"}
    assert {int(k.split(".")[2]) for k in kep if ".downsample." in k} == {0, 1, 2}  # end of stages 0-2
    assert {m[2] for k in kep if (m := re.match(r"(visual_head|text\.mlp_embed)\.(\d+)\.", k))} == {"0", "2"}
    keep = load_file(str(keep_hub / "model.safetensors"))
    assert patterns(keep) == KEEP_KEYS


def test_full_size_modules_have_the_released_shapes():
    """The real architectures, built on the meta device: shapes the released code implies."""
    from transformers import BertConfig

    from pathboard.plugins.models._keep_modules import KEEP
    from pathboard.plugins.models._kep_modules import KEPCTP
    from pathboard.plugins.models.kep import from_timm054

    pubmedbert = dict(TINY_BERT, vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072)
    with torch.device("meta"):
        kep = KEPCTP(BertConfig(**pubmedbert))
        keep = KEEP({}, pubmedbert, 768)
    sd = kep.state_dict()
    assert sd["visual.patch_embed.proj.0.weight"].shape == (12, 3, 3, 3)
    assert sd["visual.patch_embed.proj.6.weight"].shape == (96, 24, 1, 1)
    assert sd["visual_head.0.weight"].shape == (512, 768) and sd["text.mlp_embed.0.weight"].shape == (512, 768)
    # the architecture is read back from a released-layout checkpoint's shapes: CTransPath's
    with torch.device("meta"):
        rebuilt = KEPCTP.for_checkpoint(from_timm054(timm054_layout(sd, (2, 2, 6, 2))), BertConfig(**TINY_BERT))
    assert [len(s.blocks) for s in rebuilt.visual.layers] == [2, 2, 6, 2]
    assert [s.blocks[0].attn.num_heads for s in rebuilt.visual.layers] == [3, 6, 12, 24]
    ksd = keep.state_dict()
    assert ksd["visual.pos_embed"].shape == (1, 197, 1024) and len(keep.visual.blocks) == 24
    assert ksd["visual_head.0.weight"].shape == (768, 1024) and ksd["visual_head.2.weight"].shape == (768, 768)
    assert keep.text.config.hidden_size == 768


def test_swin_layout_mapping_round_trips():
    from pathboard.plugins.models.kep import from_timm054

    sd = {k: torch.zeros(1) for k in ["visual.layers.1.downsample.reduction.weight", "visual.layers.3.downsample.norm.bias",
                                      "visual.layers.0.blocks.0.norm1.weight", "text.bert_model.pooler.dense.bias"]}
    released = timm054_layout(sd, CTP_TINY["depths"])
    assert "visual.layers.0.downsample.reduction.weight" in released and "visual.layers.2.downsample.norm.bias" in released
    assert set(from_timm054(released)) == set(sd)
