"""Models whose text tower is a Hugging Face transformer (BiomedCLIP, QuiltNet-B-16 and -B-16-PMB):
tiny models in the real HF-cache layouts, loaded by the production open_clip adapter."""
import json
import os
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
from support.model_contract import check_model
from support.tiny import OPENAI_MEAN, OPENAI_STD, hf_snapshot
from support.tiny_openclip_hf import (
    BIOMEDBERT,
    PUBMEDBERT,
    write_bert_repo,
    write_bert_tower_dir,
    write_quiltnet_b16_dir,
)

from pathboard.core.engine import plugins
from pathboard.core.errors import WeightsNotFoundError
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.weights import Weights

BIOMEDCLIP = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"


# the WordPiece vocab of tiny_openclip_hf, BiomedBERT's special-token ids
BERT_GOLDEN = ("an H&E image of adipose tissue.", [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 3])


# open_clip's bundled CLIP BPE (QuiltNet-B-16 has no HF text tower)
CLIP_GOLDEN = ("an H&E image of adipose tissue.", [49406, 550, 327, 261, 324, 2867, 539, 2486, 4230, 15368, 269, 49407])


# what wisdomik/QuiltNet-B-16-PMB ships as config.json beside the open_clip files: not the BERT's
PMB_OWN_CONFIG = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512}


def bert_ids(model, prompt):
    ids = model.tokenizer([prompt])[0].tolist()
    assert len(ids) == 256 and ids[-1] == 0  # context 256, padded
    return ids[: ids.index(3) + 1]


def clip_ids(model, prompt):
    ids = model.tokenizer([prompt])[0].tolist()
    return ids[: ids.index(49407) + 1]


def snapshot(hf_home: Path, repo: str, d: Path) -> Path:
    return hf_snapshot(hf_home, repo, {f.name: f for f in d.iterdir()})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    w = tmp_path_factory.mktemp("bert-towers")
    return {
        "biomedclip": write_bert_tower_dir(w / "biomedclip", BIOMEDBERT),
        "pmb": write_bert_tower_dir(w / "pmb", PUBMEDBERT, seed=1, extra={"config.json": PMB_OWN_CONFIG}),
        "local": write_bert_tower_dir(w / "local", BIOMEDBERT, seed=2, bert_config=True),
        "bert": write_bert_repo(w / "bert"),
        "quiltnet-b16": write_quiltnet_b16_dir(w / "quiltnet-b16"),
    }


@pytest.fixture(scope="module")
def bert_hub(tiny_hub, built):
    """The three models and BiomedBERT (its config only) in the session's HF cache, under their real ids."""
    snapshot(tiny_hub, BIOMEDCLIP, built["biomedclip"])
    snapshot(tiny_hub, "wisdomik/QuiltNet-B-16-PMB", built["pmb"])
    snapshot(tiny_hub, "wisdomik/QuiltNet-B-16", built["quiltnet-b16"])
    snapshot(tiny_hub, BIOMEDBERT, built["bert"])
    return tiny_hub


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    """A different, empty HF cache, for this process and the CLI it starts."""
    hf_home = tmp_path / "hf"
    (hf_home / "hub").mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    return hf_home


@pytest.mark.slow
def test_biomedclip(bert_hub, shared_data, tmp_path):
    model = check_model("biomedclip", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                        tmp_path=tmp_path, tokenize=bert_ids, golden=BERT_GOLDEN)
    # the BERT config came from BiomedBERT's own cache entry; the tokenizer from BiomedCLIP's snapshot
    assert "models--microsoft--BiomedCLIP" in str(model.tokenizer.tokenizer.name_or_path)


@pytest.mark.slow
def test_quiltnet_b16_pmb(bert_hub, shared_data, tmp_path):
    """The config names PubMedBERT by its old id; the cache holds it under the new one. The repo's own
    config.json (a CLIP config) must not be taken for the BERT's."""
    check_model("quiltnet-b16-pmb", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=bert_ids, golden=BERT_GOLDEN)


@pytest.mark.slow
def test_quiltnet_b16(bert_hub, shared_data, tmp_path):
    model = check_model("quiltnet-b16", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                        tmp_path=tmp_path, tokenize=clip_ids, golden=CLIP_GOLDEN)
    assert model.model.visual.conv1.kernel_size == (16, 16)
    assert type(model.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"  # not QuickGELU


def test_bert_towers_have_real_cards():
    for id, params in [("biomedclip", "196M"), ("quiltnet-b16-pmb", "196M"), ("quiltnet-b16", "150M")]:
        card = plugins.get("model", id).card
        assert (card.embed_dim, card.input_size, card.params, card.license) == (512, 224, params, "MIT")
    assert "Zhang" in plugins.get("model", "biomedclip").card.paper


@pytest.mark.slow
def test_self_contained_local_dir_needs_no_bert_repo(built, empty_hub, shared_data, tmp_path):
    """--weights DIR with the BERT config.json + vocab.txt + tokenizer_config.json beside the weights,
    and nothing at all in the HF cache."""
    assert not any(empty_hub.rglob("*.json"))
    check_model("biomedclip", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=bert_ids, golden=BERT_GOLDEN, weights=built["local"])


def test_local_dir_without_bert_config_says_what_to_fetch(built, empty_hub, tmp_path):
    spec = plugins.get("model", "biomedclip")
    with pytest.raises(WeightsNotFoundError) as err:
        spec.resolve(Weights(built["biomedclip"], "--weights"))
    msg = str(err.value)
    assert "\n" not in msg and BIOMEDBERT in msg and "config.json" in msg and str(built["biomedclip"]) in msg
    assert f"hf download {BIOMEDBERT} config.json --local-dir {built['biomedclip']}" in msg

    # its own non-BERT config.json is not taken for the BERT's; the fix goes into a subfolder ...
    with pytest.raises(WeightsNotFoundError, match=f"--local-dir {built['pmb']}/BiomedNLP-BiomedBERT"):
        spec.resolve(Weights(built["pmb"], "--weights"))
    # ... where it is then found
    pmb = shutil.copytree(built["pmb"], tmp_path / "pmb")
    (pmb / "BiomedNLP-BiomedBERT-base-uncased-abstract").mkdir()
    shutil.copy(built["local"] / "config.json", pmb / "BiomedNLP-BiomedBERT-base-uncased-abstract")
    spec = plugins.get("model", "quiltnet-b16-pmb")
    model = spec.load(spec.resolve(Weights(pmb, "--weights")), Runtime.create("cpu"))
    assert bert_ids(model, BERT_GOLDEN[0]) == BERT_GOLDEN[1]

    # and a local dir does not borrow from the HF cache, nor load the tokenizer from elsewhere
    bare = shutil.copytree(built["local"], tmp_path / "bare")
    for f in ["vocab.txt", "tokenizer.json", "tokenizer_config.json"]:
        (bare / f).unlink()
    with pytest.raises(WeightsNotFoundError) as err:
        spec.resolve(Weights(bare, "--weights"))
    assert f"hf download wisdomik/QuiltNet-B-16-PMB vocab.txt tokenizer_config.json --local-dir {bare}" in str(err.value)


@pytest.mark.subprocess
def test_hf_cache_without_bert_repo_is_one_line(built, empty_hub, shared_data, tmp_path):
    snapshot(empty_hub, BIOMEDCLIP, built["biomedclip"])
    with pytest.raises(WeightsNotFoundError) as err:
        plugins.get("model", "biomedclip").resolve()
    msg = str(err.value)
    assert "\n" not in msg and f"hf download {BIOMEDBERT} config.json" in msg
    assert "--weights biomedclip=DIR" in msg and "HF_HUB_OFFLINE" in msg

    from support.helpers import pathboard
    out = pathboard("run", "--models", "biomedclip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
                    "--db", tmp_path / "x.duckdb")
    assert out.returncode != 0 and f"hf download {BIOMEDBERT} config.json" in out.stderr
    assert "Traceback" not in out.stderr

    # once the BERT repo is cached (here under the old PubMedBERT id), it loads
    snapshot(empty_hub, PUBMEDBERT, built["bert"])
    spec = plugins.get("model", "biomedclip")
    model = spec.load(spec.resolve(), Runtime.create("cpu"))
    assert bert_ids(model, BERT_GOLDEN[0]) == BERT_GOLDEN[1]


def test_tokenizer_really_tokenizes_without_tokenizer_json(built, tmp_path, empty_hub):
    """vocab.txt + tokenizer_config.json alone (no tokenizer.json) give the same ids, none [UNK]."""
    d = shutil.copytree(built["local"], tmp_path / "slow")
    (d / "tokenizer.json").unlink()
    spec = plugins.get("model", "biomedclip")
    model = spec.load(spec.resolve(Weights(d, "--weights")), Runtime.create("cpu"))
    assert bert_ids(model, BERT_GOLDEN[0]) == BERT_GOLDEN[1]
    assert 1 not in bert_ids(model, "lymphocytes, tumor.")  # [UNK]


def test_real_open_clip_configs_keep_the_structure(built):
    """The tiny configs differ from the published ones only in sizes and the timm model name."""
    cfg = json.loads((built["biomedclip"] / "open_clip_config.json").read_text())
    text = cfg["model_cfg"]["text_cfg"]
    assert text == {"hf_model_name": BIOMEDBERT, "hf_tokenizer_name": BIOMEDBERT, "hf_proj_type": "mlp",
                    "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 256}
    assert set(cfg["model_cfg"]["vision_cfg"]) == {"timm_model_name", "timm_model_pretrained", "timm_pool",
                                                    "timm_proj", "image_size"}
    assert os.path.basename(json.loads((built["pmb"] / "open_clip_config.json").read_text())
                            ["model_cfg"]["text_cfg"]["hf_model_name"]) == "BiomedNLP-PubMedBERT-base-uncased-abstract"
