"""The public surface: the examples import only pathboard.api and pathboard.testing, and a third-party
distribution built on them installs, passes its own tests and runs."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from support.helpers import pathboard

REPO = Path(__file__).resolve().parents[1]


EXAMPLE = REPO / "examples" / "pathboard-plugin-full"


PUBLIC = {"pathboard.api", "pathboard.testing"}


def test_the_examples_import_only_the_public_surface():
    for file in (REPO / "examples").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert not name.startswith("pathboard") or name in PUBLIC, f"{file.name} imports {name}"


@pytest.mark.slow
@pytest.mark.subprocess
def test_full_plugin_builds_installs_passes_its_tests_and_runs(tmp_path, shared_data, fresh_cache):
    target, source = tmp_path / "site", tmp_path / "src"
    shutil.copytree(EXAMPLE, source)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    env = {"PYTHONPATH": str(target)}

    # its own tests, against pathboard.testing's contract checks (not pathboard's tests/)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600,
                           env={**os.environ, **env, "PBFULL_DATA": str(shared_data)})
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    listed = pathboard("list", "tasks", env=env)
    assert "topk-zeroshot" in listed.stdout and "--option topk-zeroshot.k (int; default 2; 1..)" in listed.stdout
    sys.path.insert(0, str(target))
    try:
        from pbfull._net import save_random
        weights = save_random(tmp_path / "w.pt")
    finally:
        sys.path.remove(str(target))
    db = tmp_path / "pb.duckdb"
    ran = pathboard("run", "--models", "pbfull-tinynet", "--weights", f"pbfull-tinynet={weights}",
                    "--datasets", "pbfull-lung", "--tasks", "zeroshot,topk-zeroshot", "--option", "topk-zeroshot.k=2",
                    "--data-root", shared_data, "--db", db, "--workers", "0", env=env)
    assert ran.returncode == 0, ran.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT task, prompt_mode, metric, n, task_options FROM leaderboard "
                       "WHERE metric IN ('top2_accuracy', 'weighted_f1') ORDER BY ALL").fetchall()
    assert [(t, p, m, n) for t, p, m, n, _ in rows] == [
        ("topk-zeroshot", "ensemble", "top2_accuracy", 600), ("topk-zeroshot", "single", "top2_accuracy", 600),
        ("zeroshot", "ensemble", "weighted_f1", 600), ("zeroshot", "single", "weighted_f1", 600)]
    assert json.loads(rows[0][4]) == {"k": 2} and json.loads(rows[2][4]) == {}
    # per class, single mode embedded 1 prompt and the ensemble 2 synonyms x CONCH's 22 packaged templates,
    # once for both tasks
    texts = [json.loads(p.read_text()) for p in fresh_cache.rglob("meta.json")]
    assert sorted(m["texts"] for m in texts if "texts" in m) == [1, 1, 1, 44, 44, 44]

    bad = pathboard("run", "--models", "pbfull-tinynet", "--weights", f"pbfull-tinynet={weights}",
                    "--datasets", "pbfull-lung", "--tasks", "topk-zeroshot", "--option", "topk-zeroshot.k=zero",
                    "--data-root", shared_data, "--db", db, env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: option topk-zeroshot.k='zero': expected int"
