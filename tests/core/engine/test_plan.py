"""The plan names every cell and what it reads before anything runs, and says what it skips and why."""
import pytest

from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.errors import PathboardError


def cfg(shared_data, **given):
    return RunConfig(**{"models": "quiltnet-b32", "datasets": "crc-val-he-7k,lc25000-lung",
                        "data_root": str(shared_data), **given})


def test_cells_are_models_x_datasets_x_tasks_x_modes_one_model_at_a_time(tiny_hub, shared_data):
    p = plan(cfg(shared_data, models="quiltnet-b32,plip"))
    cells = [(c.model.id, c.dataset.id, c.task.id, c.prompt_mode) for c in p.cells]
    assert len(cells) == len(set(cells))
    assert [m for m, *_ in cells] == sorted([m for m, *_ in cells], key=["quiltnet-b32", "plip"].index)
    per_model = {(d, t, mode) for m, d, t, mode in cells if m == "plip"}
    assert per_model == {("crc-val-he-7k", "zeroshot", "single"), ("crc-val-he-7k", "zeroshot", "ensemble"),
                         ("crc-val-he-7k", "prompt-sensitivity", None), ("lc25000-lung", "zeroshot", "single"),
                         ("lc25000-lung", "zeroshot", "ensemble"), ("lc25000-lung", "prompt-sensitivity", None),
                         ("lc25000-lung", "fewshot", None)}
    fewshot = next(c for c in p.cells if c.task.id == "fewshot")
    assert dict(fewshot.inputs.images) == {"lc25000-lung": ""} and fewshot.inputs.tiles is None
    # few-shot on CRC-VAL-HE-7K trains on NCT-CRC-HE-100K, which is not here: skipped, by default, with the reason
    assert any(s.startswith("fewshot on crc-val-he-7k trains on nct-crc-he-100k") for s in p.skip_lines())
    assert p.describe() == ["  crc-val-he-7k: prompt-sensitivity, zeroshot (single/ensemble) x 2 model(s)",
                            "  lc25000-lung: fewshot, prompt-sensitivity, zeroshot (single/ensemble) x 2 model(s)"]


def test_an_explicit_task_that_cannot_run_is_blocked_not_skipped(tiny_hub, shared_data):
    p = plan(cfg(shared_data, datasets="crc-val-he-7k", tasks="fewshot"))
    assert not p.cells and [(m, d) for m, d, _ in p.blocked] == [("quiltnet-b32", "crc-val-he-7k")]
    # a task that does not apply to what a dataset is: said once, naming the datasets
    slides = plan(cfg(shared_data, tasks="zeroshot-wsi,zeroshot"))
    assert any(line.startswith("zeroshot-wsi on crc-val-he-7k, lc25000-lung: it is patch-level")
               for line in slides.skip_lines())


@pytest.mark.parametrize("given, message", [
    ({"prompt_modes": "single,triple"}, "unknown prompt mode 'triple'"),
    ({"weights": ("plip=/nonexistent",)}, r"weights for plip \(--weights\) not found at /nonexistent"),
    ({"assume_mpp": ("crc-val-he-7k=abc",)}, "write DATASET=MPP"),
    ({"assume_mpp": ("tcga-cesc=0.5",)}, "dataset tcga-cesc is not in this run"),
    ({"options": ("fewshot.methods=protoype",)}, "protoype"),
    ({"tasks": "zeroshots"}, "unknown task 'zeroshots'"),
])
def test_bad_input_fails_before_anything_runs(tiny_hub, shared_data, given, message):
    with pytest.raises(PathboardError, match=message):
        plan(cfg(shared_data, **given))


def test_options_reach_the_configured_tasks_and_not_the_registered_ones(tiny_hub, shared_data):
    p = plan(cfg(shared_data, datasets="lc25000-lung", tasks="fewshot", options=("fewshot.methods=prototype",)))
    assert {c.task.values["methods"] for c in p.cells} == {("prototype",)}
    again = plan(cfg(shared_data, datasets="lc25000-lung", tasks="fewshot"))
    assert {c.task.values["methods"] for c in again.cells} == {("prototype", "linear-probe")}


def test_what_all_names_but_is_not_here_is_one_line_each_for_models_and_datasets(tiny_hub, shared_data):
    p = plan(RunConfig(models="all", datasets="all", tasks="zeroshot", data_root=str(shared_data)))
    lines = p.skip_lines()
    models = [line for line in lines if "model(s) not here" in line]
    datasets = [line for line in lines if "dataset(s) not here" in line]
    assert models == ["12 model(s) not here (weights not found): biomedclip, conch, keep, kep-ctp, openai-clip-b16, "
                      "openai-clip-l14, pathgen-clip, pathgen-clip-l, quiltnet-b16, quiltnet-b16-pmb, virchow, "
                      "virclip; `pathboard doctor` says how to get each"]
    trust = [line for line in lines if "not allowed to run the model code" in line]
    assert trust == ["3 model(s) not allowed to run the model code of their weights repository: conch-v1.5, prism, "
                     "titan; allow them with --trust-remote-code conch-v1.5,prism,titan (or trust_remote_code in the "
                     "config file)"]
    assert len(datasets) == 1 and datasets[0].startswith(f"30 dataset(s) not here (folder not found under {shared_data}): ")
    assert not any(line.startswith(("conch: ", "nct-crc-he-100k: ")) for line in lines)  # no line of its own
    assert any(s.startswith("conch: ") for s in p.skipped)  # the run record keeps every reason


def test_zero_shot_on_a_folder_says_its_prompts_are_the_folder_names(tiny_hub, shared_data, tmp_path):
    import json
    import os

    folder = tmp_path / "set"
    for cls in ("TUM", "STR"):
        (folder / cls).mkdir(parents=True)
        for f in sorted((shared_data / "CRC-VAL-HE-7K" / cls).iterdir())[:2]:
            os.symlink(f, folder / cls / f.name)
    p = plan(RunConfig(models="quiltnet-b32", datasets=f"folder:{folder}", tasks="zeroshot"))
    assert p.prompt_notes() == [f"note: folder:{folder}: the prompts are its class names (STR, TUM); for real prompts "
                                f"put a prompts.json beside the class folders or pass --prompts folder:{folder}=FILE "
                                "(format: pathboard/prompts/crc100k.json)"]
    (folder / "prompts.json").write_text(json.dumps({"classes": {"STR": ["stroma"], "TUM": ["tumour"]},
                                                     "templates": ["an H&E image of CLASSNAME."]}))
    assert plan(RunConfig(models="quiltnet-b32", datasets=f"folder:{folder}", tasks="zeroshot")).prompt_notes() == []


def test_a_protocol_pack_fixes_datasets_tasks_prompts_options_and_modes(tiny_hub, shared_data):
    p = plan(cfg(shared_data, models="quiltnet-b32,plip", datasets="all", protocol="plip"))
    assert p.pack.id == "plip"
    cells = {(c.model.id, c.dataset.id, c.task.id, c.prompt_mode) for c in p.cells}
    assert cells == {(m, "crc-val-he-7k", "zeroshot", "single") for m in ("quiltnet-b32", "plip")}  # the one here
    assert p.prompts["crc-val-he-7k"].prompts("single", list(p.prompts["crc-val-he-7k"].classes))["TUM"] == \
        ["An H&E image patch of colorectal adenocarcinoma epithelium."]  # PLIP's own prompt
    assert any("digestpath" in line for line in p.skip_lines())  # its other datasets: not here, said so
    quilt = plan(cfg(shared_data, datasets="lc25000-lung", protocol="quilt"))
    assert {(c.task.id, c.prompt_mode) for c in quilt.cells} == {("zeroshot", "ensemble")}
    assert quilt.prompts["lc25000-lung"].templates[0] == "a histopathology slide showing CLASSNAME."


def test_a_protocol_pack_sets_its_task_options(tmp_path, tiny_hub, shared_data):
    from support.layouts import write_tcga

    root, _ = write_tcga(tmp_path, shared_data / "slides" / "CMU-1-Small-Region.svs")
    p = plan(RunConfig(models="quiltnet-b32", datasets="tcga-rcc", data_root=str(root), protocol="keep"))
    (cell,) = p.cells
    assert cell.task.values["pooling"] == "screened-vote" and cell.task.values["tile_size"] == 256
    assert set(p.prompts["tcga-rcc"].classes) == {"CCRCC", "PRCC", "CHRCC", "Normal"}


@pytest.mark.parametrize("given, message", [
    ({"protocol": "conhc"}, "unknown protocol 'conhc'.*conch"),
    ({"protocol": "plip", "prompts": ("x.json",)}, "--protocol plip fixes the prompts and task options"),
    ({"protocol": "keep", "options": ("tile_size=224",)}, "drop --option, or drop --protocol"),
    ({"protocol": "plip", "prompt_modes": "ensemble"}, "protocol pack plip scores single prompts only"),
    ({"protocol": "plip", "datasets": "lc25000-lung"}, "not part of protocol pack plip"),
    ({"protocol": "plip", "datasets": "crc-val-he-7k", "tasks": "fewshot"},
     "--tasks fewshot: not part of protocol pack plip"),
])
def test_what_a_pack_does_not_allow_is_one_line(tiny_hub, shared_data, given, message):
    with pytest.raises(PathboardError, match=message):
        plan(cfg(shared_data, **given))


def test_a_pack_whose_listed_slides_are_not_here_skips_the_dataset(tmp_path, tiny_hub, shared_data):
    from support.layouts import write_tcga

    root, _ = write_tcga(tmp_path, shared_data / "slides" / "CMU-1-Small-Region.svs")
    p = plan(RunConfig(models="quiltnet-b32", data_root=str(root), protocol="mi-zero"))
    assert not p.cells
    assert any(line.startswith("tcga-rcc: none of the 225 items protocol pack mi-zero lists is here")
               for line in p.skip_lines()), p.skip_lines()
