"""The published numbers shipped in reported.csv: the source tables' cells, their Avg, and ids of models,
datasets and tasks that exist."""
from __future__ import annotations

import pytest
from support.databases import KEEP_IDS, KEEP_MODELS, KEEP_SEGMENTATION, KEEP_SUBTYPING, PUBLISHED, PUBLISHED_COLUMNS

from pathboard.leaderboard import frames


def test_reported_csv_holds_the_published_cells_and_no_avg():
    rep = frames.load_reported()
    patch = rep[rep["pack"] == "vendor-table"]  # the first published table
    assert len(patch) == 3 * len(PUBLISHED)
    assert set(patch["dataset"]) == set(PUBLISHED_COLUMNS)  # no "Avg" column stored
    assert set(patch["prompt_mode"]) == {"ensemble"} and set(patch["metric"]) == {"weighted_f1"}
    assert set(rep["dataset"]) == (set(PUBLISHED_COLUMNS) | set(KEEP_SUBTYPING) | set(KEEP_SEGMENTATION)
                                   | set(QUILT_CHART) | {"lc25000-lung", "lc25000-colon", "tcga-rcc"}
                                   | {"tcga-ot", "ebrains"})  # TITAN's README: linear probe and slide retrieval
    crc = rep[rep["dataset"] == "crc-val-he-7k"]
    assert set(crc["published_as"]) == {"CRC-100K"}
    assert crc["source_note"].str.contains("CRC-VAL-HE-7K").all() and crc["split"].str.contains("CRC-VAL-HE-7K").all()
    for model, published in PUBLISHED.items():
        got = patch[patch["model"] == model].set_index("dataset")["value"]
        assert [got[d] for d in PUBLISHED_COLUMNS] == list(published[:3])


@pytest.mark.parametrize("task,metric,table", [("zeroshot-wsi", "balanced_accuracy", KEEP_SUBTYPING),
                                               ("segmentation", "dice", KEEP_SEGMENTATION)])
def test_reported_csv_holds_the_keep_readme_tables(task, metric, table):
    rep = frames.load_reported()
    rows = rep[(rep["task"] == task) & rep["paper"].str.startswith("Zhou et al.")]
    assert set(rows["metric"]) == {metric} and set(rows["prompt_mode"]) == {"ensemble"}
    assert rows["paper"].str.contains("arXiv:2412.13126").all()
    assert rows["table"].str.contains("MAGIC-AI4Med/KEEP").all()
    assert set(rows["protocol_match"]) == {"differs"} and (rows["protocol_note"] != "").all()
    for dataset, values in table.items():
        of_set = rows[rows["dataset"] == dataset]
        assert list(of_set["model"]) == KEEP_MODELS  # the README's column order
        assert list(of_set["value"]) == list(values)
        assert list(of_set["model_id"]) == KEEP_IDS
    if task == "zeroshot-wsi":  # KEEP's EBRAINS column is the 30 rare classes of UNI/CONCH
        assert set(rows.loc[rows["dataset"] == "ebrains-rare30", "published_as"]) == {"EBRAINS"}


#: Quilt-1M's zero-shot bar chart (aux/barchart_zeroshot.png): CLIP, BiomedCLIP, PLIP, QuiltNet, in %
QUILT_CHART = {"skincancer": (5, 25, 37, 45), "lc25000-lung": (61, 72, 79, 80), "lc25000-colon": (62, 91, 78, 93),
               "bach": (26, 55, 43, 41), "sicapv2": (39, 46, 45, 39)}


def test_reported_csv_holds_the_quilt_chart_and_biomedclips_table():
    rep = frames.load_reported()
    quilt = rep[rep["pack"] == "quilt"]
    assert set(quilt["metric"]) == {"accuracy"} and quilt["paper"].str.contains("Quilt-1M").all()
    for dataset, values in QUILT_CHART.items():
        of_set = quilt[quilt["dataset"] == dataset]
        assert list(of_set["model"]) == ["CLIP [Quilt-1M]", "BiomedCLIP [Quilt-1M]", "PLIP [Quilt-1M]",
                                         "QuiltNet [Quilt-1M]"]
        assert [round(v * 100) for v in of_set["value"]] == list(values)
        assert list(of_set["model_id"]) == ["", "biomedclip", "plip", "quiltnet-b32"]
    own = rep[rep["pack"] == "biomedclip"].set_index("dataset")
    assert own.loc["lc25000-lung", "value"] == 0.6523 and own.loc["lc25000-colon", "value"] == 0.9298
    assert own["table"].str.contains("Supplementary Table 5").all()


def test_every_published_row_names_its_source_and_a_pack_that_scores_it():
    from pathboard.core.engine import plugins

    rep = frames.load_reported()
    packs = plugins.registry("protocol")
    for row in rep[rep["pack"] != ""].itertuples():
        pack = packs[row.pack]  # a pack that exists, scoring the row's dataset and task with its metric
        assert row.task in pack.datasets[row.dataset].tasks and pack.datasets[row.dataset].metric == row.metric
    # KEEP's Dice and TITAN's README numbers: no pack reproduces them (their protocols are not fully published)
    assert set(rep.loc[rep["pack"] == "", "task"]) == {"segmentation", "fewshot-wsi", "slide-retrieval"}
    papers = {paper.split(",")[0] for paper in rep.loc[rep["pack"] != "vendor-table", "paper"]}
    assert len(papers) >= 4, papers  # KEEP, Quilt-1M, BiomedCLIP, MI-Zero


def test_reported_model_ids_datasets_and_tasks_are_plugins():
    from pathboard.core.engine import plugins

    rep = frames.load_reported()
    models = plugins.registry("model")
    assert set(rep["model_id"]) - {""} <= set(models)
    for row in rep.itertuples():
        assert row.task in plugins.applicable_tasks(plugins.get("dataset", row.dataset)), (row.dataset, row.task)
        assert row.paper and row.table and row.split and row.model_note  # every row says where it is from
        assert row.protocol_match in {"same", "differs", "unknown"}
    ids = rep.drop_duplicates("model").set_index("model")["model_id"]
    assert ids["CONCH"] == "conch" and ids["KEEP"] == "keep" and ids["QuiltNet"] == "quiltnet-b32"
    assert ids["ConText-L-14-336px"] == "" and ids["KEP(Quilt)"] == "" and ids["MI-Zero (Pub)"] == ""
    assert "assumption" in rep.loc[rep["model"] == "QuiltNet", "model_note"].iloc[0]


def test_load_reported_fills_missing_text_columns(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("model,dataset,task,prompt_mode,metric,value,published_as,source_note\n"
                   "X,d1,zeroshot,ensemble,weighted_f1,0.5,D1,a note\n")
    rep = frames.load_reported(old)
    assert rep.at[0, "model_id"] == "" and rep.at[0, "protocol_match"] == "" and rep.at[0, "source"] == "reported"


@pytest.mark.parametrize("model", PUBLISHED)
def test_computed_avg_of_reported_rows_equals_published_avg(model):
    table = frames.comparison_table(frames.load_reported())
    assert list(table["value"].columns) == PUBLISHED_COLUMNS + ["Avg"]
    avg = table["value"].at[(model + " (reported)", "reported"), "Avg"]
    assert avg == pytest.approx(PUBLISHED[model][3], abs=0.001)
