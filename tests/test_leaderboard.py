"""The leaderboard: the table logic of pathboard.leaderboard.tables and the Streamlit app."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store
from pathboard.leaderboard import tables

APP = Path(tables.__file__).with_name("app.py")

# The published table (weighted F1, prompt ensemble, zero-shot), Avg column included.
PUBLISHED = {
    "VirCLIP": (0.762, 0.439, 0.909, 0.703),
    "ConText-L-14-336px": (0.738, 0.668, 0.748, 0.718),
    "LIPBaC-B-16": (0.693, 0.451, 0.623, 0.589),
    "ConText-B-32-Knowledge": (0.647, 0.485, 0.767, 0.633),
    "KEP(Quilt)ViT-B-32": (0.421, 0.526, 0.609, 0.519),
    "PathgenCLIP": (0.606, 0.506, 0.639, 0.584),
    "KEP(Quilt)": (0.527, 0.577, 0.656, 0.587),
    "CONCH": (0.608, 0.412, 0.774, 0.598),
}
PUBLISHED_COLUMNS = ["wsss4luad", "sicapv2", "crc-val-he-7k"]

# The KEEP README's tables (MAGIC-AI4Med/KEEP, "Performance Comparisons"): PLIP, QuiltNet, MI-Zero (Pub),
# CONCH, KEEP. Zero-shot WSI subtyping, balanced accuracy; CAMELYON16 zero-shot segmentation, Dice.
KEEP_MODELS = ["PLIP", "QuiltNet", "MI-Zero (Pub)", "CONCH", "KEEP"]
KEEP_IDS = ["plip", "quiltnet-b32", "", "conch", "keep"]
KEEP_SUBTYPING = {
    "tcga-brca": (0.519, 0.500, 0.633, 0.727, 0.774),
    "tcga-nsclc": (0.699, 0.667, 0.753, 0.901, 0.902),
    "tcga-rcc": (0.735, 0.755, 0.908, 0.921, 0.926),
    "ebrains-rare30": (0.096, 0.093, 0.325, 0.371, 0.456),
}
KEEP_SEGMENTATION = {"camelyon16": (0.253, 0.157, 0.186, 0.292, 0.361)}

# (model, dataset, mode) -> balanced accuracy (value, lo, hi) of zero-shot WSI subtyping, for make_vs_db
SLIDES = {
    ("keep", "tcga-nsclc", "ensemble"): (0.874, 0.831, 0.912),
    ("conch", "tcga-nsclc", "ensemble"): (0.912, 0.880, 0.940),
    ("conch", "tcga-brca", "ensemble"): (0.690, 0.650, 0.720),
    ("conch", "tcga-nsclc", "single"): (0.850, 0.810, 0.889),
    ("biomedclip", "tcga-nsclc", "ensemble"): (0.611, 0.560, 0.660),  # no published row of its weights
}
CUSTOM = ("conch", "tcga-nsclc", "ensemble", (0.930, 0.900, 0.955))  # scored with custom prompts

# (model, mode) -> weighted_f1 (value, lo, hi) and cohen_kappa value on crc-val-he-7k.
MEASURED = {
    ("quiltnet-b32", "ensemble"): ((0.612, 0.581, 0.642), 0.55),
    ("quiltnet-b32", "single"): ((0.571, 0.538, 0.603), 0.49),
    ("plip", "ensemble"): ((0.655, 0.623, 0.688), 0.60),
    ("plip", "single"): ((0.498, 0.462, 0.531), 0.41),
}


def make_db(path: Path) -> Path:
    """Two measured models on crc-val-he-7k, both prompt modes, without any model."""
    store = Store(path)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    for (model, mode), ((value, lo, hi), kappa) in MEASURED.items():
        cell = {"model": model, "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": mode,
                "weights_fingerprint": "abcdef0123456789abcdef", "prompt_hash": "def", "manifest_hash": "ghi",
                "n_items": 32, "n_failed": 0, "device": "cpu", "precision": "fp32"}
        store.add_cell(run_id, cell, [Metric("weighted_f1", value, lo, hi, 32),
                                      Metric("cohen_kappa", kappa, kappa - 0.05, kappa + 0.05, 32),
                                      Metric("recall/TUM", value + 0.1, value, value + 0.2, 32)])
    return path


def make_vs_db(path: Path) -> Path:
    """make_db plus zero-shot WSI subtyping cells (SLIDES) of models with published rows in the KEEP
    table, and one CONCH cell under a non-default protocol (custom prompts)."""
    make_db(path)
    store = Store(path)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    cells = [(key, stats, True) for key, stats in SLIDES.items()] + [(CUSTOM[:3], CUSTOM[3], False)]
    for (model, dataset, mode), (value, lo, hi), default in cells:
        cell = {"model": model, "dataset": dataset, "task": "zeroshot-wsi", "prompt_mode": mode,
                "weights_fingerprint": "0123456789abcdef0123", "prompt_hash": "p" if default else "custom",
                "manifest_hash": "m", "n_items": 150, "n_failed": 0, "device": "cpu", "precision": "fp32",
                "protocol_hash": "default" if default else "c0ffee00" * 8, "default_protocol": default,
                "protocol": '{"prompts": "%s"}' % ("built-in" if default else "custom")}
        store.add_cell(run_id, cell, [Metric("balanced_accuracy", value, lo, hi, 150)])
    return path


@pytest.fixture()
def db(tmp_path) -> Path:
    return make_db(tmp_path / "results.duckdb")


@pytest.fixture()
def long(db) -> pd.DataFrame:
    return pd.concat([tables.load_measured(db), tables.load_reported()], ignore_index=True)


def rows(**cells) -> pd.DataFrame:
    """A measured long frame from {(model, dataset): value} (ensemble, zeroshot, weighted_f1)."""
    return pd.DataFrame([{"model": m, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                          "source": "measured"} for (m, d), v in cells["cells"].items()])


# --- the shipped published table ---------------------------------------------------------------

def test_reported_csv_holds_the_published_cells_and_no_avg():
    rep = tables.load_reported()
    patch = rep[rep["task"] == "zeroshot"]  # the first published table
    assert len(patch) == 3 * len(PUBLISHED)
    assert set(patch["dataset"]) == set(PUBLISHED_COLUMNS)  # no "Avg" column stored
    assert set(patch["prompt_mode"]) == {"ensemble"} and set(patch["metric"]) == {"weighted_f1"}
    assert set(rep["dataset"]) == set(PUBLISHED_COLUMNS) | set(KEEP_SUBTYPING) | set(KEEP_SEGMENTATION)
    crc = rep[rep["dataset"] == "crc-val-he-7k"]
    assert set(crc["published_as"]) == {"CRC-100K"}
    assert crc["source_note"].str.contains("CRC-VAL-HE-7K").all() and crc["split"].str.contains("CRC-VAL-HE-7K").all()
    for model, published in PUBLISHED.items():
        got = patch[patch["model"] == model].set_index("dataset")["value"]
        assert [got[d] for d in PUBLISHED_COLUMNS] == list(published[:3])


@pytest.mark.parametrize("task,metric,table", [("zeroshot-wsi", "balanced_accuracy", KEEP_SUBTYPING),
                                               ("segmentation", "dice", KEEP_SEGMENTATION)])
def test_reported_csv_holds_the_keep_readme_tables(task, metric, table):
    rep = tables.load_reported()
    rows = rep[rep["task"] == task]
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


def test_reported_model_ids_datasets_and_tasks_are_plugins():
    from pathboard.core.engine import plugins

    rep = tables.load_reported()
    models = plugins.registry("model")
    assert set(rep["model_id"]) - {""} <= set(models)
    for row in rep.itertuples():
        assert row.task in plugins.get("dataset", row.dataset).tasks, (row.dataset, row.task)
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
    rep = tables.load_reported(old)
    assert rep.at[0, "model_id"] == "" and rep.at[0, "protocol_match"] == "" and rep.at[0, "source"] == "reported"


@pytest.mark.parametrize("model", PUBLISHED)
def test_computed_avg_of_reported_rows_equals_published_avg(model):
    table = tables.comparison_table(tables.load_reported())
    assert list(table["value"].columns) == PUBLISHED_COLUMNS + ["Avg"]
    avg = table["value"].at[(model + " (reported)", "reported"), "Avg"]
    assert avg == pytest.approx(PUBLISHED[model][3], abs=0.001)


# --- the comparison table -----------------------------------------------------------------------

def test_pivot_rows_are_models_columns_are_datasets_plus_avg(long):
    table = tables.comparison_table(long, include_reported=False)
    assert list(table.index) == [("plip", "measured"), ("quiltnet-b32", "measured")]  # best Avg first
    assert list(table["value"].columns) == ["crc-val-he-7k", "Avg"]
    assert table["value"].at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.612)
    assert table["ci_low"].at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.581)
    assert table["ci_high"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.688)
    assert table["value"].at[("plip", "measured"), "Avg"] == pytest.approx(0.655)


def test_measured_and_reported_rows_share_dataset_columns_and_stay_distinct(long):
    table = tables.comparison_table(long)
    assert list(table["value"].columns) == PUBLISHED_COLUMNS + ["Avg"]
    sources = table.index.get_level_values("source")
    assert list(sources[:2]) == ["measured", "measured"] and set(sources[2:]) == {"reported"}
    assert list(table.index[:2]) == [("plip", "measured"), ("quiltnet-b32", "measured")]  # no Avg: by value
    models = table.index.get_level_values("model")
    assert "VirCLIP (reported)" in models and "plip" in models and "VirCLIP" not in models
    assert table["value"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.655)
    assert table["value"].at[("VirCLIP (reported)", "reported"), "crc-val-he-7k"] == pytest.approx(0.909)
    # plip has no wsss4luad/sicapv2 value, so no Avg; every reported row has all three
    assert math.isnan(table["value"].at[("plip", "measured"), "Avg"])
    assert table["value"].loc[table.index.get_level_values("source") == "reported", "Avg"].notna().all()


def test_avg_only_when_every_shown_dataset_has_a_value():
    df = rows(cells={("a", "d1"): 0.5, ("a", "d2"): 0.7, ("b", "d1"): 0.9})
    table = tables.comparison_table(df)
    assert table["value"].at[("a", "measured"), "Avg"] == pytest.approx(0.6)
    assert math.isnan(table["value"].at[("b", "measured"), "Avg"])
    only_d1 = tables.comparison_table(df, datasets=["d1"])
    assert list(only_d1["value"].columns) == ["d1", "Avg"]
    assert only_d1["value"].at[("b", "measured"), "Avg"] == pytest.approx(0.9)
    assert only_d1["value"].at[("a", "measured"), "Avg"] == pytest.approx(0.5)


def test_mode_toggle_selects_the_prompt_mode(long):
    ensemble = tables.comparison_table(long, mode="ensemble", include_reported=False)["value"]
    single = tables.comparison_table(long, mode="single", include_reported=False)["value"]
    assert ensemble.at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.612)
    assert single.at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.571)
    assert list(single.index) == [("quiltnet-b32", "measured"), ("plip", "measured")]  # re-ranked


def test_rows_without_prompt_mode_show_in_either_mode():
    df = rows(cells={("probe", "d1"): 0.8}).assign(prompt_mode=None, task="linear")
    for mode in tables.MODES:
        table = tables.comparison_table(df, task="linear", mode=mode)
        assert table["value"].at[("probe", "measured"), "d1"] == pytest.approx(0.8)


@pytest.mark.parametrize("change", [{"mode": "single"}, {"metric": "cohen_kappa"}, {"task": "linear"},
                                    {"include_reported": False}])
def test_reported_rows_only_where_metric_task_and_mode_match(long, change):
    assert "reported" in tables.comparison_table(long).index.get_level_values("source")
    table = tables.comparison_table(long, **change)
    assert "reported" not in table.index.get_level_values("source")


def test_best_per_column_is_the_max_for_kappa_too(long):
    table = tables.comparison_table(long, metric="cohen_kappa")
    best = tables.best_per_column(table)
    assert best.at[("plip", "measured"), "crc-val-he-7k"]
    assert not best.at[("quiltnet-b32", "measured"), "crc-val-he-7k"]
    df = rows(cells={("a", "d1"): -0.2, ("b", "d1"): -0.1, ("c", "d1"): -0.1, ("a", "d2"): 0.3})
    best = tables.best_per_column(tables.comparison_table(df))
    assert best.at[("b", "measured"), "d1"] and best.at[("c", "measured"), "d1"]  # ties all win
    assert not best.at[("a", "measured"), "d1"]
    assert best.at[("a", "measured"), "d2"] and not best.at[("b", "measured"), "d2"]  # blanks never win


def test_best_per_column_spans_reported_rows(long):
    best = tables.best_per_column(tables.comparison_table(long))
    assert best.at[("VirCLIP (reported)", "reported"), "crc-val-he-7k"]
    assert best.at[("ConText-L-14-336px (reported)", "reported"), "Avg"]
    assert best.sum().tolist() == [1, 1, 1, 1]


def test_format_cell():
    assert tables.format_cell(0.7623, 0.7012, 0.8149) == "0.762 [0.70, 0.81]"
    assert tables.format_cell(0.909, float("nan"), float("nan")) == "0.909"
    assert tables.format_cell(float("nan"), float("nan"), float("nan")) == "–"


def test_html_bolds_the_best_and_marks_reported_rows(long):
    html = tables.to_html(tables.comparison_table(long, include_reported=False))
    assert "<b>0.655 [0.62, 0.69]</b>" in html
    assert "0.612 [0.58, 0.64]" in html and "<b>0.612" not in html
    assert "reported" not in html
    html = tables.to_html(tables.comparison_table(long), {"crc-val-he-7k": "CRC-VAL-HE-7K"})
    assert "<b>0.909</b>" in html and "<b>0.718</b>" in html  # VirCLIP on CRC, ConText-L Avg
    assert html.count('<tr class="reported"') == len(PUBLISHED)
    assert html.count('<tr class="measured"') == 2
    assert "VirCLIP (reported)" in html and 'title="CRC-VAL-HE-7K"' in html
    assert "0.655 [0.62, 0.69]" in html and "<b>0.655" not in html  # VirCLIP beats it now
    assert "–" in html  # measured rows have no wsss4luad value and no Avg


# --- measured vs published ----------------------------------------------------------------------

@pytest.fixture()
def vs_long(tmp_path) -> pd.DataFrame:
    db = make_vs_db(tmp_path / "vs.duckdb")
    return pd.concat([tables.load_measured(db), tables.load_reported()], ignore_index=True)


def test_measured_beside_published_with_delta(vs_long):
    vs = tables.published_vs_measured(vs_long, "balanced_accuracy", "zeroshot-wsi", "ensemble")
    assert list(zip(vs["model"], vs["dataset"])) == [("conch", "tcga-brca"), ("conch", "tcga-nsclc"),
                                                     ("keep", "tcga-nsclc")]  # biomedclip: no published row
    row = vs.set_index(["model", "dataset"]).loc[("keep", "tcga-nsclc")]
    assert row["published_model"] == "KEEP" and row["published"] == pytest.approx(0.902)
    assert row["delta"] == pytest.approx(0.874 - 0.902) and row["in_ci"]
    conch = vs.set_index(["model", "dataset"]).loc[("conch", "tcga-brca")]
    assert conch["delta"] == pytest.approx(0.690 - 0.727) and not conch["in_ci"]
    assert set(vs["protocol"]) == {"differs"}  # the KEEP README's protocol is not pathboard's
    assert all(d == ["the published protocol is not pathboard's default"] for d in vs["differences"])
    assert "arXiv:2412.13126" in vs.at[0, "paper"] and vs.at[0, "split"]


def test_vs_published_names_prompt_mode_and_protocol_mismatches(vs_long):
    single = tables.published_vs_measured(vs_long, "balanced_accuracy", "zeroshot-wsi", "single")
    assert list(single["model"]) == ["conch"]
    assert single.at[0, "published_mode"] == "ensemble" and single.at[0, "published"] == pytest.approx(0.901)
    assert "published ensemble prompts, measured single" in single.at[0, "differences"]
    assert single.at[0, "protocol"] == "differs"
    patch = tables.published_vs_measured(vs_long)  # weighted F1: plip and quiltnet-b32 have no published row
    assert patch.empty and list(patch.columns) == tables.VS_COLUMNS


def test_vs_published_flags_a_non_default_measured_protocol(tmp_path):
    db = make_vs_db(tmp_path / "vs.duckdb")
    custom = tables.load_measured(db, "c0ffee00" * 8)
    long = pd.concat([custom, tables.load_reported()], ignore_index=True)
    vs = tables.published_vs_measured(long, "balanced_accuracy", "zeroshot-wsi", "ensemble")
    assert len(vs) == 1 and vs.at[0, "value"] == pytest.approx(0.930) and not vs.at[0, "default_protocol"]
    assert vs.at[0, "differences"][0].startswith("measured under a non-default protocol")


def test_vs_published_unknown_and_same_protocols():
    df = pd.concat([rows(cells={("conch", "crc-val-he-7k"): 0.75}).assign(default_protocol=True),
                    tables.load_reported()], ignore_index=True)
    vs = tables.published_vs_measured(df)  # the first table states no prompts or split
    assert vs.at[0, "published"] == pytest.approx(0.774) and vs.at[0, "protocol"] == "unknown"
    assert vs.at[0, "in_ci"] and vs.at[0, "delta"] == pytest.approx(0.75 - 0.774)  # inside [0.70, 0.80]
    same = tables.load_reported().assign(protocol_match="same")
    vs = tables.published_vs_measured(pd.concat([rows(cells={("conch", "crc-val-he-7k"): 0.75}), same]))
    assert vs.at[0, "protocol"] == "same" and vs.at[0, "differences"] == []


def test_vs_published_html(vs_long):
    vs = tables.published_vs_measured(vs_long, "balanced_accuracy", "zeroshot-wsi", "ensemble")
    html = tables.vs_published_html(vs)
    assert "pathboard-leaderboard" not in html and 'class="pathboard-vs-published"' in html
    assert "0.874 [0.83, 0.91]" in html and "0.902" in html and "<b>-0.028</b>" in html
    assert "<b>+0.011</b>" in html and "<b>-0.037</b>" in html  # conch on nsclc and brca
    assert html.count('<tr class="vs-differs"') == 3
    assert "KEEP (ensemble)" in html and "CONCH (ensemble)" in html
    assert html.count("<li>") == 1 and "arXiv:2412.13126" in html and "Split:" in html and "Protocol:" in html


# --- reading the database -----------------------------------------------------------------------

def test_load_measured_errors_and_empty(tmp_path):
    with pytest.raises(PathboardError):
        tables.load_measured(tmp_path / "missing.duckdb")
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    assert tables.load_measured(store.path).empty


def test_provenance_lists_measured_rows_shown(long):
    prov = tables.provenance(long, "weighted_f1", "zeroshot", "single")
    assert list(prov["model"]) == ["plip", "quiltnet-b32"]
    assert set(prov["weights_fingerprint"]) == {"abcdef012345"}
    assert {"run_id", "created_at", "prompt_hash", "manifest_hash", "device", "precision", "n"} <= set(prov)


def test_per_class_recall(long):
    assert tables.recall_datasets(long, "zeroshot", "ensemble") == ["crc-val-he-7k"]
    recall = tables.per_class_recall(long, "zeroshot", "ensemble", "crc-val-he-7k")
    assert recall.at["plip", "TUM"] == pytest.approx(0.755)


# --- the Streamlit app --------------------------------------------------------------------------

def app_test(monkeypatch, argv_db=None, env_db=None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", ["app.py"] + (["--db", str(argv_db)] if argv_db else []))
    if env_db:
        monkeypatch.setenv("PATHBOARD_DB", str(env_db))
    else:
        monkeypatch.delenv("PATHBOARD_DB", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_html(at) -> str:
    (html,) = [h.value for h in at.html if "pathboard-leaderboard" in h.value]
    return html


def test_app_defaults_and_mode_toggle(monkeypatch, db):
    at = app_test(monkeypatch, argv_db=db)
    assert at.selectbox(key="metric").value == "weighted_f1"
    assert at.selectbox(key="task").value == "zeroshot"
    assert at.radio(key="mode").value == "ensemble"
    assert at.checkbox(key="reported").value is True
    assert at.multiselect(key="datasets").value == PUBLISHED_COLUMNS
    html = table_html(at)
    assert "0.612 [0.58, 0.64]" in html and "0.655 [0.62, 0.69]" in html
    assert "VirCLIP (reported)" in html and "<b>0.909</b>" in html
    assert not at.error and not any("No measured results" in i.value for i in at.info)

    at.radio(key="mode").set_value("single").run()
    assert not at.exception
    html = table_html(at)
    assert "0.571 [0.54, 0.60]" in html and "<b>0.498 [0.46, 0.53]</b>" not in html
    assert "<b>0.571 [0.54, 0.60]</b>" in html
    assert "0.612" not in html and "(reported)" not in html  # reported rows are ensemble only


def test_app_reported_checkbox_and_metric(monkeypatch, db):
    at = app_test(monkeypatch, argv_db=db)
    at.checkbox(key="reported").uncheck().run()
    html = table_html(at)
    assert "(reported)" not in html and "<b>0.655 [0.62, 0.69]</b>" in html
    assert at.multiselect(key="datasets").value == ["crc-val-he-7k"]
    at.selectbox(key="metric").set_value("cohen_kappa").run()
    html = table_html(at)
    assert "<b>0.600 [0.55, 0.65]</b>" in html and "0.550 [0.50, 0.60]" in html


def test_app_db_from_env_and_argv_wins(monkeypatch, db, tmp_path):
    at = app_test(monkeypatch, env_db=db)
    assert "0.612 [0.58, 0.64]" in table_html(at)
    at = app_test(monkeypatch, argv_db=db, env_db=tmp_path / "missing.duckdb")
    assert "0.612 [0.58, 0.64]" in table_html(at) and not at.error


def test_app_missing_db_is_one_line_error(monkeypatch, tmp_path):
    at = app_test(monkeypatch, argv_db=tmp_path / "missing.duckdb")
    assert len(at.error) == 1
    assert "missing.duckdb" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.info  # the error says it all
    assert "VirCLIP (reported)" in table_html(at)  # the published table still shows


def test_app_not_a_database_is_one_line_error(monkeypatch, tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not a database\n" * 100)
    at = app_test(monkeypatch, argv_db=bad)
    assert len(at.error) == 1 and "\n" not in at.error[0].value


def test_app_empty_db_shows_info_and_reported(monkeypatch, tmp_path):
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    at = app_test(monkeypatch, argv_db=store.path)
    assert len(at.info) == 1 and "No measured results" in at.info[0].value
    assert not at.error
    html = table_html(at)
    assert "VirCLIP (reported)" in html and "measured" not in html


def test_each_task_offers_its_own_metrics():
    df = pd.DataFrame({"task": ["zeroshot", "zeroshot", "zeroshot", "retrieval", "retrieval"],
                       "metric": ["weighted_f1", "recall/ADI", "cohen_kappa", "i2t_recall@1", "mean_recall"]})
    assert tables.task_metrics(df, "zeroshot") == ["weighted_f1", "cohen_kappa"]
    assert tables.task_metrics(df, "retrieval") == ["i2t_recall@1", "mean_recall"]


def vs_html(at) -> list[str]:
    return [h.value for h in at.html if "pathboard-vs-published" in h.value]


def test_app_measured_vs_published(monkeypatch, tmp_path):
    db = make_vs_db(tmp_path / "vs.duckdb")
    at = app_test(monkeypatch, argv_db=db)
    assert not vs_html(at)  # weighted F1 on crc-val-he-7k: plip and quiltnet-b32 have no published row
    at.selectbox(key="task").set_value("zeroshot-wsi").run()
    assert not at.exception and at.selectbox(key="metric").value == "balanced_accuracy"
    assert at.multiselect(key="datasets").value == ["tcga-brca", "tcga-nsclc", "tcga-rcc", "ebrains-rare30"]
    main = table_html(at)
    assert "KEEP (reported)" in main and "<b>0.912 [0.88, 0.94]</b>" in main  # conch beats KEEP's .902
    (html,) = vs_html(at)
    assert "<b>-0.028</b>" in html and "<b>+0.011</b>" in html and "<b>-0.037</b>" in html
    assert "the published protocol is not" in html and "biomedclip" not in html
    assert any("Measured vs published" in h.value for h in at.subheader)
    assert any("Zhou et al." in c.value for c in at.caption)

    at.radio(key="mode").set_value("single").run()
    (html,) = vs_html(at)
    assert "published ensemble prompts, measured single" in html and "<b>-0.051</b>" in html

    at.radio(key="mode").set_value("ensemble").run()
    at.selectbox(key="protocol").set_value("c0ffee00" * 8).run()
    (html,) = vs_html(at)
    assert "measured under a non-default protocol" in html and "<b>+0.029</b>" in html

    at.checkbox(key="reported").uncheck().run()
    assert not vs_html(at)
