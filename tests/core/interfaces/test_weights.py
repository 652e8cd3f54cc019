"""Weight resolution: the Hugging Face cache offline, local folders, the config file, content fingerprints."""
import shutil

import pytest
from support.tiny import write_open_clip_dir

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.weights import Weights, overrides


def test_hub_models_resolve_from_the_cache_offline(tiny_hub):
    for id, repo in [("quiltnet-b32", "wisdomik--QuiltNet-B-32"), ("plip", "vinid--plip")]:
        w = plugins.get("model", id).resolve()
        assert w.path.parent.parent.name == f"models--{repo}" and w.origin.startswith("hf-cache:")


def test_missing_weights_say_what_to_fetch(tiny_hub):
    with pytest.raises(WeightsNotFoundError) as err:
        plugins.get("model", "openai-clip-b16").resolve()
    msg = str(err.value)
    assert "\n" not in msg and "hf download timm/vit_base_patch16_clip_224.openai" in msg
    assert "--weights openai-clip-b16=PATH" in msg and "HF_HUB_OFFLINE" in msg


def test_command_line_beats_config_file(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[weights]\nquiltnet-b32 = "{a}"\nplip = "{a}"\n')
    monkeypatch.setenv("PATHBOARD_CONFIG", str(cfg))
    found = overrides([f"plip={b}"])
    assert found["quiltnet-b32"] == (a, f"config {cfg}") and found["plip"] == (b, "--weights")
    with pytest.raises(PathboardError, match="expects ID=PATH"):
        overrides(["plip"])


def test_fingerprint_hashes_bytes_not_names(tmp_path):
    d = write_open_clip_dir(tmp_path / "m")
    fp = Weights(d, "x").fingerprint
    renamed = shutil.copytree(d, tmp_path / "renamed")
    assert Weights(renamed, "y").fingerprint == fp
    (renamed / "open_clip_pytorch_model.bin").write_bytes(b"different")
    assert Weights(renamed, "y").fingerprint != fp


PROBE = """
import json, sys
from huggingface_hub import try_to_load_from_cache
from pathboard.core.interfaces.weights import cached_file
asked = json.loads(sys.argv[1])
print(json.dumps([[cached_file(r, f), (lambda h: h if isinstance(h, str) else None)(try_to_load_from_cache(r, f))]
                  for r, f in asked]))
"""


@pytest.mark.parametrize("where", ["HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"])
def test_a_cached_file_is_found_as_huggingface_hub_finds_it(tmp_path, where):
    import json
    import os
    import subprocess
    import sys

    from pathboard.testing import hf_snapshot

    home = tmp_path / "cache" / "huggingface" if where == "XDG_CACHE_HOME" else tmp_path / "hf"
    (tmp_path / "w.bin").write_bytes(b"w")
    snap = hf_snapshot(home, "org/model", {"w.bin": tmp_path / "w.bin", "config.json": tmp_path / "w.bin"})
    (snap.parents[1] / ".no_exist" / snap.name).mkdir(parents=True)
    (snap.parents[1] / ".no_exist" / snap.name / "config.json").touch()  # the hub said it is absent: not cached
    bare = hf_snapshot(home, "org/norefs", {"w.bin": tmp_path / "w.bin"})
    shutil.rmtree(bare.parents[1] / "refs")  # no refs/main: neither finds the snapshot
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "XDG_CACHE"))}
    env[where] = str(tmp_path / "cache" if where == "XDG_CACHE_HOME" else home / "hub" if "CACHE" in where else home)
    asked = [["org/model", "w.bin"], ["org/model", "config.json"], ["org/model", "missing.bin"],
             ["org/norefs", "w.bin"], ["org/other", "w.bin"]]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(asked)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    answers = json.loads(out.stdout)
    assert [ours for ours, _ in answers] == [str(snap / "w.bin"), None, None, None, None]
    assert [ours for ours, _ in answers] == [theirs for _, theirs in answers]


def test_once_huggingface_hub_is_imported_its_cache_setting_decides(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from pathboard.core.interfaces.weights import cached_file
    from pathboard.testing import hf_snapshot

    (tmp_path / "w.bin").write_bytes(b"w")
    snap = hf_snapshot(tmp_path / "hf", "org/model", {"w.bin": tmp_path / "w.bin"})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # set after the import: downloads go to the constant
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    assert cached_file("org/model", "w.bin") == str(snap / "w.bin")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert cached_file("org/model", "w.bin") is None
