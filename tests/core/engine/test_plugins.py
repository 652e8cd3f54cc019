"""Built-ins and third-party plugins load through the same entry-point group and hooks."""
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from support.helpers import pathboard

from pathboard.core.engine import plugins

REPO = Path(__file__).resolve().parents[3]


def test_builtins_come_from_the_entry_point_group():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="pathboard")}
    assert {"models_quiltnet", "models_plip", "models_openai_clip", "datasets_crc", "tasks_zeroshot"} <= set(eps)
    assert all(ep.dist.name == "pathboard" for name, ep in eps.items() if name.startswith(("models_", "tasks_")))
    models = plugins.registry("model")
    assert {"quiltnet-b32", "openai-clip-b16", "plip"} <= set(models)
    assert models["plip"].plugin == "pathboard:models_plip"
    assert plugins.registry("task")["zeroshot"].plugin == "pathboard:tasks_zeroshot"


@pytest.mark.slow
@pytest.mark.subprocess
def test_third_party_distribution_is_listed_and_runs(tmp_path, tiny_hub, shared_data):
    target, source = tmp_path / "site", tmp_path / "src"
    shutil.copytree(REPO / "examples" / "pathboard-plugin-example", source)  # pip writes build/ beside it
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)],
                   check=True, capture_output=True)
    env = {"PYTHONPATH": str(target)}
    listed = pathboard("list", "models", env=env)
    assert listed.returncode == 0, listed.stderr
    line = next(l for l in listed.stdout.splitlines() if l.startswith("example-clip"))
    assert "[pathboard-plugin-example:example]" in line
    assert "example-clip" not in pathboard("list", "models").stdout  # only with the distribution installed

    # its weights are not in the cache: one line saying what to do
    missing = pathboard("run", "--models", "example-clip", "--datasets", "crc-val-he-7k",
                        "--data-root", shared_data, "--db", tmp_path / "x.duckdb", env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "hf download example-lab/example-clip" in missing.stderr

    weights = next((tiny_hub / "hub" / "models--wisdomik--QuiltNet-B-32" / "snapshots").iterdir())
    db = tmp_path / "r.duckdb"
    ran = pathboard("run", "--models", "example-clip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
                    "--db", db, "--weights", f"example-clip={weights}", "--workers", "0", env=env)
    assert ran.returncode == 0, ran.stderr
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT model, task, prompt_mode FROM leaderboard ORDER BY ALL").fetchall()
    assert rows == [("example-clip", "prompt-sensitivity", None), ("example-clip", "zeroshot", "ensemble"),
                    ("example-clip", "zeroshot", "single")]


@pytest.mark.subprocess
def test_a_plugin_whose_hook_raises_loses_only_its_own_entries(tmp_path):
    pkg = tmp_path / "broken_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from pathboard import hookimpl\n\n@hookimpl\ndef register_models(register):\n"
        "    raise RuntimeError('boom')\n")
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pathboard]\nbroken = broken_plugin\n")
    out = pathboard("list", "models", env={"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0
    assert "warning: plugin broken-plugin:broken failed to register models: RuntimeError: boom" in out.stderr
    assert "quiltnet-b32" in out.stdout
