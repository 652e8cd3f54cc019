"""A rerun scores only what changed: cells whose embeddings, protocol and task version are unchanged are
neither scored nor written again; a changed option or prompt set rescores exactly the cells it touches."""
from __future__ import annotations

import copy
import dataclasses
import json
from types import SimpleNamespace

import pytest
from support.helpers import q

from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.engine.uptodate import cell_key
from pathboard.core.store.database import Store


@pytest.fixture()
def cfg(tmp_path, tiny_hub, shared_data, fresh_cache):
    return RunConfig(models="quiltnet-b32", datasets="crc-val-he-7k", tasks="zeroshot,prompt-sensitivity",
                     prompt_modes="single", data_root=str(shared_data), db=str(tmp_path / "pb.duckdb"), workers=0,
                     options={"prompt-sensitivity.draws": 2, "prompt-sensitivity.sizes": "1,2"})


def rows(db) -> int:
    return q(db, "SELECT count(*) FROM results_all")[0][0]


def scored(summary) -> set[str]:
    return {c["task"] for c in summary.cells}


def test_an_identical_rerun_scores_and_writes_nothing(cfg):
    first = execute(plan(cfg), cfg)
    assert first.up_to_date == 0 and scored(first) == {"zeroshot", "prompt-sensitivity"}
    before = rows(cfg.db)
    again = execute(plan(cfg), cfg)
    assert again.up_to_date == 2 and again.cells == [] and again.stored == 0 and again.image_forwards == 0
    assert rows(cfg.db) == before
    # the rerun is recorded, as a run that stored nothing
    cells = "(SELECT count(DISTINCT (task, prompt_mode)) FROM cells c WHERE c.run_id = r.run_id)"
    assert q(cfg.db, f"SELECT status, {cells} FROM runs r ORDER BY started_at") == [("finished", 2), ("finished", 0)]
    assert first.stored == 2  # cells (each with all its variants), not result rows
    # --rescore scores every cell again (from the embedding cache)
    cfg.rescore = True
    forced = execute(plan(cfg), cfg)
    assert scored(forced) == {"zeroshot", "prompt-sensitivity"} and forced.image_forwards == 0
    assert rows(cfg.db) == 2 * before


def test_a_changed_option_or_prompt_set_rescores_exactly_the_cells_it_touches(cfg, tmp_path):
    execute(plan(cfg), cfg)
    cfg.options = {**cfg.options, "prompt-sensitivity.draws": 3}
    changed = execute(plan(cfg), cfg)
    assert scored(changed) == {"prompt-sensitivity"} and changed.up_to_date == 1
    # back to the first options: the newest cell of that protocol is still the first run's
    cfg.options = {**cfg.options, "prompt-sensitivity.draws": 2}
    assert execute(plan(cfg), cfg).up_to_date == 2
    # new prompts touch both tasks, which both read them
    classes = plan(cfg).datasets["crc-val-he-7k"].classes
    (tmp_path / "prompts.json").write_text(json.dumps({"classes": {c: [f"tissue {c}"] for c in classes},
                                                       "templates": ["an image of CLASSNAME."]}))
    cfg.prompts = (f"crc-val-he-7k={tmp_path / 'prompts.json'}",)
    assert scored(execute(plan(cfg), cfg)) == {"zeroshot", "prompt-sensitivity"}


def test_the_key_follows_weights_precision_manifest_and_task_version(cfg):
    p = plan(cfg)
    cell = next(c for c in p.cells if c.task.id == "zeroshot")
    key = cell_key(cell, p, "fp32")
    assert key == cell_key(cell, plan(cfg), "fp32")  # stable across plans
    assert cell_key(cell, p, "fp16") != key
    p.weights[cell.model.id] = SimpleNamespace(fingerprint="other")  # other weights under the same id
    assert cell_key(cell, p, "fp32") != key
    p = plan(cfg)
    manifest = p.manifests["crc-val-he-7k"]
    p.manifests["crc-val-he-7k"] = type("Changed", (), {"hash": manifest.hash + "x"})()
    assert cell_key(cell, p, "fp32") != key
    p = plan(cfg)
    released = dataclasses.replace(cell, task=copy.copy(cell.task))
    object.__setattr__(released.task, "plugin_version", "999")  # a new release of the task's distribution
    assert cell_key(released, p, "fp32") != key


def test_the_key_follows_how_near_duplicate_groups_are_found(cfg, monkeypatch):
    """LC25000's groups are found after planning, so the manifest's hash cannot cover them: the grouping's version
    is in the key of a near-duplicates dataset's cells, and only theirs."""
    from pathboard.core.science import grouping

    cfg.datasets = "crc-val-he-7k,lc25000-lung"
    p = plan(cfg)
    lung, crc = (next(c for c in p.cells if c.task.id == "zeroshot" and c.dataset.id == d)
                 for d in ("lc25000-lung", "crc-val-he-7k"))
    keys = cell_key(lung, p, "fp32"), cell_key(crc, p, "fp32")
    monkeypatch.setattr(grouping, "VERSION", grouping.VERSION + 1)
    assert cell_key(lung, p, "fp32") != keys[0] and cell_key(crc, p, "fp32") == keys[1]


def test_a_run_killed_before_comparing_leaves_comparisons_the_next_run_recomputes(cfg):
    cfg.models = "quiltnet-b32,plip"
    cfg.tasks, cfg.options = "zeroshot", {}
    execute(plan(cfg), cfg)
    compared = q(cfg.db, "SELECT count(*) FROM comparisons")[0][0]
    assert compared > 0
    store = Store(cfg.db)  # as if the run died after storing its cells: no comparisons, and no finish
    store._write([("DELETE FROM comparisons", []), ("UPDATE runs SET finished_at = NULL, status = 'interrupted'",
                                                    [])])
    again = execute(plan(cfg), cfg)
    assert again.up_to_date == 2 and again.cells == []
    assert q(cfg.db, "SELECT count(*) FROM comparisons")[0][0] == compared
