"""A run with other prompts is another protocol: it never changes the default table."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from support.helpers import pathboard

from pathboard.core.engine import plugins
from pathboard.core.store.queries import load_measured
from pathboard.leaderboard import frames

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_a_prompts_run_does_not_change_the_default_table(tmp_path, tiny_hub, shared_data, fresh_cache, monkeypatch):
    db = tmp_path / "pb.duckdb"
    monkeypatch.setenv("PATHBOARD_DB", str(db))
    base = ["run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
            "--db", db, "--tasks", "zeroshot", "--prompt-modes", "single", "--workers", "0"]
    assert pathboard(*base).returncode == 0
    default = load_measured(db).set_index(["model", "metric"])["value"]
    custom = tmp_path / "custom.json"
    classes = plugins.get("dataset", "crc-val-he-7k").classes
    custom.write_text(json.dumps({"templates": ["a photo of CLASSNAME."],
                                  "classes": {c: [f"tissue type {c.lower()}"] for c in classes}}))
    out = pathboard(*base, "--prompts", f"crc-val-he-7k={custom}")
    assert out.returncode == 0, out.stderr
    after = load_measured(db).set_index(["model", "metric"])["value"]
    assert after.equals(default)  # the default table is the default protocol's, whatever ran last
    everything = load_measured(db, "all")
    assert everything["protocol_hash"].nunique() == 2 and len(everything) == 2 * len(default)
    con = duckdb.connect(str(db), read_only=True)
    flags = con.execute("SELECT DISTINCT default_protocol, protocol->>'$.prompts' FROM cells ORDER BY 1").fetchall()
    assert flags == [(False, "custom"), (True, "built-in")]
    # comparisons pair the two models within each protocol, never across
    pairs = con.execute("SELECT DISTINCT a.protocol_hash = b.protocol_hash FROM comparisons k "
                        "JOIN cells a ON a.cell_id = k.cell_a JOIN cells b ON b.cell_id = k.cell_b").fetchall()
    assert pairs == [(True,)]
    assert con.execute("SELECT count(DISTINCT a.protocol_hash) FROM comparisons k "
                       "JOIN cells a ON a.cell_id = k.cell_a").fetchone() == (2,)

    # the leaderboard shows the default protocol first; the other is chosen in the sidebar
    from streamlit.testing.v1 import AppTest

    app = Path(frames.__file__).with_name("app.py")
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()  # the app reads $PATHBOARD_DB
    assert any("single: one prompt per class" in c.value for c in at.caption)  # the mode is defined on the page
    at.radio(key="mode").set_value("single").run()
    choices = at.sidebar.selectbox(key="protocol").options
    assert len(choices) == 2 and choices[0].startswith("default") and "custom prompts" in choices[1]
    shown = " ".join(h.proto.body for h in at.get("html"))
    value = lambda model: f"{default[(model, 'weighted_f1')]:.3f}"  # noqa: E731
    assert value("plip") in shown and value("quiltnet-b32") in shown
    custom_values = everything[~everything["default_protocol"].astype(bool) & (everything["metric"] == "weighted_f1")]
    at.sidebar.selectbox(key="protocol").set_value(custom_values["protocol_hash"].iloc[0]).run()
    other = " ".join(h.proto.body for h in at.get("html"))
    assert all(f"{v:.3f}" in other for v in custom_values["value"])


def test_a_protocol_pack_run_records_the_pack_in_every_cell(tmp_path, tiny_hub, shared_data):
    """`--protocol keep` on TCGA-RCC slides in their GDC layout: KEEP's prompts, screening and tile vote at 256 px;
    every cell names the pack, is not the default protocol, and a rerun scores nothing; a default run does."""
    from support.layouts import write_tcga

    root, _ = write_tcga(tmp_path / "data", shared_data / "slides" / "CMU-1-Small-Region.svs")
    db = tmp_path / "pb.duckdb"
    base = ["run", "--models", "quiltnet-b32", "--data-root", root, "--db", db, "--workers", "0"]
    out = pathboard(*base, "--protocol", "keep", "--datasets", "tcga-rcc")
    assert out.returncode == 0, out.stderr
    assert "protocol pack keep: KEEP zero-shot cancer subtyping" in out.stderr
    assert not [line for line in out.stderr.splitlines() if line.startswith("skipped")], out.stderr
    con = duckdb.connect(str(db), read_only=True)
    cells = con.execute("SELECT task, prompt_mode, pack, default_protocol, protocol FROM cells "
                        "WHERE coalesce(variant, '') = ''").fetchall()
    assert [(t, m, p, d) for t, m, p, d, _ in cells] == [("zeroshot-wsi", "ensemble", "keep", False)]
    protocol = json.loads(cells[0][4])
    assert protocol["pack"] == "keep" and protocol["options"]["pooling"] == "screened-vote"
    assert protocol["options"]["tile_size"] == 256
    assert protocol["task"]["candidates"] == 22 * 3 ** 4 and protocol["task"]["vote_only_classes"] == ["Normal"]
    n, = con.execute("SELECT n FROM leaderboard WHERE metric = 'balanced_accuracy'").fetchone()
    con.close()
    assert n == 3  # the two KIRC and one KIRP diagnostic slides
    again = pathboard(*base, "--protocol", "keep", "--datasets", "tcga-rcc")
    assert again.returncode == 0 and "nothing new: 1 cell(s) up to date" in again.stderr, again.stderr
    outside = pathboard(*base, "--protocol", "keep", "--datasets", "tcga-cesc")
    assert outside.returncode != 0 and "not part of protocol pack keep" in outside.stderr
    assert "Traceback" not in outside.stderr
    default = pathboard(*base, "--datasets", "tcga-rcc", "--tasks", "zeroshot-wsi", "--prompt-modes", "ensemble")
    assert default.returncode == 0 and "1 cell(s) stored" in default.stderr, default.stderr  # another protocol
    assert set(load_measured(db)["pack"].fillna("")) == {""}  # the default table holds no pack cell
    assert set(load_measured(db, "pack:keep")["pack"]) == {"keep"}
