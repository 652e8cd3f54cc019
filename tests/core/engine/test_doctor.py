"""``pathboard doctor``: what is ready and what is not, without downloading or loading anything."""
import pytest
from support.helpers import pathboard

from pathboard.core.engine import plugins


@pytest.mark.subprocess
def test_doctor_reports_present_weights_and_data(tiny_hub, shared_data):
    out = pathboard("doctor", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k",
                    "--data-root", shared_data)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "ok   model quiltnet-b32" in lines and "ok   model plip" in lines
    assert any("weights" in l and "models--wisdomik--QuiltNet-B-32/snapshots" in l for l in lines)
    assert lines.count("       offline    yes") == 2
    assert "ok   dataset crc-val-he-7k" in lines
    assert "       files      32 files of 7180 expected (a partial copy: results will not match the papers)" in lines


@pytest.mark.subprocess
def test_doctor_fails_on_missing_weights_and_folders(tiny_hub, shared_data, tmp_path):
    out = pathboard("doctor", "--models", "openai-clip-b16,plip", "--datasets", "crc-val-he-7k,nct-crc-he-100k",
                    "--data-root", shared_data)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    text = out.stdout
    assert "FAIL model openai-clip-b16" in text and "ok   model plip" in text
    assert "weights    not found: run `hf download timm/vit_base_patch16_clip_224.openai`" in text
    assert "FAIL dataset nct-crc-he-100k" in text and f"{shared_data}/NCT-CRC-HE-100K" in text
    assert out.stderr.strip() == "error: 2 of 4 not ready: openai-clip-b16, nct-crc-he-100k"
    # --weights makes a model ready; nothing is downloaded or loaded either way
    snapshot = next((tiny_hub / "hub" / "models--wisdomik--QuiltNet-B-32" / "snapshots").iterdir())
    fixed = pathboard("doctor", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--data-root",
                      shared_data, "--weights", f"quiltnet-b32={snapshot}")
    assert fixed.returncode == 0 and f"weights    {snapshot} (--weights)" in fixed.stdout


def test_missing_dependency_is_named_with_its_install_hint(tiny_hub):
    from dataclasses import replace

    from pathboard.core.engine import plugins
    from pathboard.core.engine.doctor import check_model

    spec = replace(plugins.get("model", "quiltnet-b32"), requires=("torch", "no_such_module_xyz"),
                   install_hint='pip install "pathboard[xyz]"')
    spec.plugin = "test"
    check = check_model(spec, {})
    assert not check.ok
    assert 'imports    missing no_such_module_xyz (pip install "pathboard[xyz]")' in check.lines
    assert "offline    no" in check.lines


def test_doctor_without_arguments_says_what_is_ready_in_a_few_lines_and_succeeds(tiny_hub, shared_data):
    bare = pathboard("doctor")  # every model, every dataset, no data root
    assert bare.returncode == 0, bare.stderr
    lines = bare.stdout.splitlines()
    assert lines.count("datasets: 32 not checked: no data root (--data-root or PATHBOARD_DATA)") == 1
    assert not any("no data root" in line for line in lines[1:])  # said once, not once per dataset
    assert "ok   model quiltnet-b32" in lines and "ok   model plip" in lines
    # (other tests of the session may have put more tiny models in the shared HF cache: VirCLIP is never there)
    assert "-    model virclip: weights not found: weights for virclip are not published: pass --weights " \
           "virclip=PATH (`pathboard doctor --models virclip` says how to get it)" in lines
    ready = next(line for line in lines if line.startswith("models ready: "))
    assert "plip" in ready and "quiltnet-b32" in ready and ready.split()[3] == "of" and ready.split()[4] == "17"
    with_data = pathboard("doctor", "--data-root", shared_data)
    assert with_data.returncode == 0 and "datasets ready: 2 of 32 (crc-val-he-7k, lc25000-lung)" in with_data.stdout
    ready_models = int(next(line for line in with_data.stdout.splitlines()
                            if line.startswith("models ready: ")).split()[2])
    not_ready = [line for line in with_data.stdout.splitlines() if line.startswith("-    ")]
    assert len(not_ready) == (17 - ready_models) + (32 - 2)  # one line per model or dataset that is not here
    assert all(len(line) < 260 for line in with_data.stdout.splitlines())
    # what was named one by one must be ready
    named = pathboard("doctor", "--models", "virclip", "--datasets", "crc-val-he-7k", "--data-root", shared_data)
    assert named.returncode == 2 and named.stderr.strip().splitlines()[-1] == "error: 1 of 2 not ready: virclip"


def test_doctor_explains_a_slide_models_encoder_licence_and_remote_code():
    from pathboard.core.engine.doctor import access_lines

    titan = plugins.get("model", "titan")
    lines = access_lines(titan)
    assert lines[0] == "kind       slide encoder over conch-v1.5 tile features (20x, 512 px)"
    assert lines[1].startswith("licence    CC BY-NC-ND 4.0; gated: accept it at https://huggingface.co/MahmoodLab/TITAN")
    assert "not allowed: pass --trust-remote-code titan, or add trust_remote_code" in lines[2]
    assert access_lines(titan, frozenset({"titan"}))[2].endswith("from the local copy (allowed)")
    assert not any(line.startswith("code") for line in access_lines(plugins.get("model", "plip")))
