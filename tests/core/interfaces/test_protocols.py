"""Protocol packs as data: each packaged pack loads, names datasets, tasks, metrics and options that exist, and
its prompts cover its datasets' classes; a malformed pack is one line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.options import values_for
from pathboard.core.interfaces.protocols import ProtocolPack, packaged_protocols

PACKS = sorted(p.stem for p in packaged_protocols().glob("*.json"))


def test_at_least_six_packs_ship_and_register():
    assert len(PACKS) >= 6 and set(PACKS) <= set(plugins.registry("protocol"))
    assert {"conch", "keep", "pathgen", "quilt", "plip", "biomedclip", "mi-zero", "vendor-table"} <= set(PACKS)


@pytest.mark.parametrize("pack_id", PACKS)
def test_a_packaged_pack_names_what_exists(pack_id):
    pack = plugins.get("protocol", pack_id)
    assert pack.paper and pack.source and pack.intervals and pack.gaps and pack.doc == f"docs/protocols/{pack_id}.md"
    tasks = plugins.registry("task")
    for dataset_id, entry in pack.datasets.items():
        dataset = plugins.get("dataset", dataset_id)
        for task_id in entry.tasks:
            assert task_id in plugins.applicable_tasks(dataset), (dataset_id, task_id)
        if entry.prompts is not None:  # the paper's prompts name every class the dataset scores
            assert set(dataset.classes) <= set(entry.prompts.classes), dataset_id
            assert entry.prompts.source
        assert entry.metric and entry.split
    chosen = [tasks[t] for t in pack.tasks]
    values = values_for(chosen, dict(pack.options), tasks)  # every option is one its task declares
    for task in chosen:
        task.configure(values[task.id])


@pytest.mark.parametrize("change, message", [
    ({"prompt_modes": ["triple"]}, "prompt modes must be among"),
    ({"options": {"tile_size": 256}}, "write TASK.NAME"),
    ({"datasets": {}}, "at least one dataset"),
    ({"datasets": {"bach": {"tasks": ["zeroshot"], "metric": "accuracy", "prompts": "missing.json"}}},
     "prompt file missing.json found neither"),
    ({"id": None, "datasets": None}, "cannot read protocol pack"),
])
def test_a_malformed_pack_is_one_line(tmp_path, change, message):
    raw = {"id": "mine", "title": "Mine", "paper": "Me 2026", "source": "here",
           "datasets": {"bach": {"tasks": ["zeroshot"], "metric": "accuracy"}}}
    raw.update(change)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(PathboardError, match=message):
        ProtocolPack.load(path)


def test_a_third_party_pack_reads_its_own_prompt_files(tmp_path):
    (tmp_path / "bach.json").write_text(json.dumps({"templates": ["an H&E image of CLASSNAME."],
                                                    "classes": {c: [c.lower()] for c in
                                                                ("Normal", "Benign", "InSitu", "Invasive")}}))
    (tmp_path / "mine.json").write_text(json.dumps({
        "id": "mine", "title": "Mine", "paper": "Me 2026", "source": "here", "prompt_modes": ["single"],
        "datasets": {"bach": {"tasks": ["zeroshot"], "metric": "accuracy", "prompts": "bach.json"}}}))
    pack = ProtocolPack.load(tmp_path / "mine.json")
    assert pack.tasks == ("zeroshot",) and pack.datasets["bach"].prompts.templates == ["an H&E image of CLASSNAME."]
    assert pack.card()["datasets"]["bach"]["prompts"] == str(tmp_path / "bach.json")


def test_mi_zeros_fifty_prompt_sets_and_slide_list_load_as_published():
    pack = plugins.get("protocol", "mi-zero")
    entry = pack.datasets["tcga-rcc"]
    assert len(entry.prompts.sets) == 50 and len(entry.items) == 225
    first = entry.prompts.set_prompts(["CHRCC", "CCRCC", "PRCC"])[0]
    assert first["CHRCC"][0] == "there is chromophobe RCC." and len(first["CCRCC"]) == 5  # set 0: five templates
    assert entry.items[0] == "TCGA-BP-5001-01Z-00-DX1.05212dc9-c0cf-4fbb-96c3-f39f6ed67ca4"
    assert entry.prompts.hash("ensemble", ["CHRCC", "CCRCC", "PRCC"]) != \
        type(entry.prompts)(entry.prompts.classes, entry.prompts.templates).hash("ensemble", ["CHRCC", "CCRCC", "PRCC"])


def test_a_published_item_list_restricts_the_manifest():
    import numpy as np

    from pathboard.core.interfaces.dataset import Manifest
    from pathboard.core.interfaces.protocols import listed

    paths = ["KIRC/u1/TCGA-A0-0001-01Z-00-DX1.abc.svs", "KIRC/u2/TCGA-A0-0002-01Z-00-DX1.def.svs", "KIRP/x.svs"]
    m = Manifest(Path("/data"), paths, np.array([0, 0, 1]), [None] * 3, "h", [{"group": "a"}, {"group": "b"}, {}])
    sub, absent = listed(m, ("TCGA-A0-0001-01Z-00-DX1.abc", "TCGA-A0-0002-01Z-00-DX1", "TCGA-ZZ"))
    assert sub.paths == paths[:2] and sub.labels.tolist() == [0, 0] and sub.meta == [{"group": "a"}, {"group": "b"}]
    assert absent == ["TCGA-ZZ"] and sub.hash != m.hash and len(m) == 3  # by file stem or TCGA barcode
