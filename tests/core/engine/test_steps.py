"""A plugin that breaks the plugin API's contract is named in one line, and costs only its own cells."""
from pathlib import Path

import duckdb
import pytest
from support.helpers import pathboard

LABKIT = '''
from pathboard.api import Inputs, Metric, Task, hookimpl


class Centroid(Task):  # written against plugin API 1: score() returned a list of metrics
    id = "labkit-centroid"
    title = "Centroid accuracy"

    def score(self, ctx):
        return [Metric("accuracy", 0.5, 0.4, 0.6, 10)]


class Inputless(Task):  # inputs() must give an Inputs
    id = "labkit-inputs"
    title = "A task whose inputs are a dict"

    def inputs(self, dataset, manifest):
        return {"images": {dataset.id: ""}}

    def score(self, ctx):
        raise AssertionError("never scored")


@hookimpl
def register_tasks(register):
    register(Centroid())
    register(Inputless())
    register({"id": "labkit-dict"})  # not a Task at all
'''


def install(tmp_path: Path) -> dict:
    """A distribution ``pathboard-labkit`` 0.1.0 on PYTHONPATH, as pip would leave it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "labkit.py").write_text(LABKIT)
    info = tmp_path / "pathboard_labkit-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pathboard-labkit\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[pathboard]\nlabkit = labkit\n")
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_task_that_returns_the_old_shape_is_one_line_and_the_pairs_other_cells_are_stored(tmp_path, tiny_hub,
                                                                                          shared_data):
    env = install(tmp_path / "site")
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
                    "--tasks", "zeroshot,labkit-centroid,labkit-inputs", "--db", db, "--workers", "0", env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    wanted = ("error: task labkit-centroid (pathboard-labkit 0.1.0): score() returned list; since plugin API 2 it "
              "returns TaskResult (docs/writing-a-plugin.md#tasks)")
    assert lines.count(wanted) == 1, out.stderr  # once, though it failed in both prompt modes
    assert lines.count("error: task labkit-inputs (pathboard-labkit 0.1.0): inputs() returned dict; since plugin "
                       "API 2 it returns Inputs (docs/writing-a-plugin.md#tasks)") == 1, out.stderr
    assert ("warning: register_tasks of pathboard-labkit:labkit (pathboard-labkit 0.1.0) registered a dict, "
            "ignored; since plugin API 2 it registers a Task (docs/writing-a-plugin.md#tasks)") in lines
    assert lines[-1] == ("error: failed: task labkit-inputs in 2 cell(s); task labkit-centroid in 2 cell(s) (above); "
                         "the other cells are stored")
    stored = duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT task, prompt_mode FROM leaderboard ORDER BY ALL").fetchall()
    assert stored == [("zeroshot", "ensemble"), ("zeroshot", "single")]  # the pair's other cells
    status = duckdb.connect(str(db), read_only=True).execute("SELECT status FROM runs").fetchall()
    assert status == [("finished with errors",)]
