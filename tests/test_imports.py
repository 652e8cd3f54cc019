"""Registration, planning and the leaderboard import no model library: the CLI answers at once, and the
leaderboard shows titles and model cards stored with the runs, never importing the plugins."""
import os
import subprocess
import sys

import pytest
from support.imports import imported_after

from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store


@pytest.mark.subprocess
def test_registering_every_plugin_and_planning_a_run_import_no_model_library(tiny_hub, shared_data):
    assert imported_after(
        "from pathboard.core.engine import plugins\n"
        "for kind in ('model', 'dataset', 'task', 'factory'): plugins.registry(kind)\n"
        "from pathboard.core.engine.plan import RunConfig, plan\n"
        f"p = plan(RunConfig(models='quiltnet-b32,plip', datasets='crc-val-he-7k,lc25000-lung', "
        f"data_root={str(shared_data)!r}))\n"
        "assert len(p.cells) == 2 * 2 * 2 + 1 * 2 + 2 * 2, [(c.model.id, c.dataset.id, c.task.id) for c in p.cells]\n"
        "import pathboard.api") == []


@pytest.mark.subprocess
def test_leaderboard_starts_without_torch_and_shows_stored_cards(tmp_path):
    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", catalog={"models": {"m1": {"title": "Model One", "paper": "P",
                                                                     "license": "MIT", "url": "u"}},
                                                   "datasets": {"crc-val-he-7k": {"title": "CRC title"}}, "tasks": {}})
    cell = {"model": "m1", "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": "ensemble"}
    store.add_cell(run, cell, [Metric("weighted_f1", 0.5, 0.4, 0.6, 32)])
    code = ("from streamlit.testing.v1 import AppTest\n"
            "from pathlib import Path\nimport pathboard.leaderboard\n"
            "app = Path(pathboard.leaderboard.__file__).with_name('app.py')\n"
            "at = AppTest.from_file(str(app), default_timeout=120)\nat.run()\n"
            "assert not at.exception, at.exception\n"
            "html = ' '.join(h.proto.body for h in at.get('html'))\n"
            "assert 'CRC title' in html and '0.500' in html, html[:500]\n"
            "at.sidebar.radio(key='view').set_value('Models').run()\n"
            "assert not at.exception, at.exception\n"
            "models = at.dataframe[-1].value\n"
            "assert list(models['title']) == ['Model One'], models\n")
    out = subprocess.run([sys.executable, "-c", code + "import sys\nprint('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PATHBOARD_DB": str(db)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
