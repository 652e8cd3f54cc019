"""The Streamlit app (AppTest): its defaults and widgets, the database from the environment or argv,
one-line errors, the runs view, run filters, shareable links and reruns after a run wrote."""
from __future__ import annotations

from support.databases import APP, PUBLISHED_COLUMNS, app_test, make_db, make_vs_db, table_html

from pathboard.core.science.metrics import Metric
from pathboard.core.store import queries
from pathboard.core.store.database import Store


def vs_html(at) -> list[str]:
    return [h.value for h in at.html if "pathboard-vs-published" in h.value]


def test_app_defaults_and_mode_toggle(monkeypatch, db):
    at = app_test(monkeypatch, argv_db=db)
    assert at.selectbox(key="metric").value == "weighted_f1"
    assert at.selectbox(key="task").value == "zeroshot"
    assert at.radio(key="mode").value == "ensemble"
    assert at.checkbox(key="reported").value is True
    assert at.multiselect(key="datasets").value == ["crc-val-he-7k"]  # the measured datasets: Avg on every row
    html = table_html(at)
    assert "0.612 [0.58, 0.64]" in html and "0.655 [0.62, 0.69]" in html
    assert "VirCLIP (reported)" in html and "<b>0.909</b>" in html
    assert "wsss4luad" not in html and any("Avg: the mean over the 1 dataset(s) shown" in c.value for c in at.caption)
    at.checkbox(key="published_only").check().run()  # published-only columns on request, measured ones first
    assert at.multiselect(key="datasets").value == ["crc-val-he-7k"] + [c for c in PUBLISHED_COLUMNS
                                                                         if c != "crc-val-he-7k"]
    at.checkbox(key="published_only").uncheck().run()
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


def test_app_measured_vs_published(monkeypatch, tmp_path):
    db = make_vs_db(tmp_path / "vs.duckdb")
    at = app_test(monkeypatch, argv_db=db)
    assert not vs_html(at)  # weighted F1 on crc-val-he-7k: plip and quiltnet-b32 have no published row
    at.selectbox(key="task").set_value("zeroshot-wsi").run()
    assert not at.exception and at.selectbox(key="metric").value == "balanced_accuracy"
    assert at.multiselect(key="datasets").value == ["tcga-brca", "tcga-nsclc"]  # measured; RCC, EBRAINS opt-in
    main = table_html(at)
    assert "KEEP (reported)" in main and "<b>0.912 [0.88, 0.94]</b>" in main  # conch beats KEEP's .902
    (html,) = vs_html(at)
    assert "<b>-0.028</b>" in html and "<b>+0.011</b>" in html and "<b>-0.037</b>" in html
    assert "is protocol pack keep (pathboard run --protocol keep)" in html and "biomedclip" not in html
    assert any("Measured vs published" in h.value for h in at.subheader)
    assert any("Zhou et al." in c.value for c in at.caption)

    at.radio(key="mode").set_value("single").run()
    (html,) = vs_html(at)
    assert "published ensemble prompts, measured single" in html and "<b>-0.051</b>" in html

    at.radio(key="mode").set_value("ensemble").run()
    at.selectbox(key="protocol").set_value("c0ffee00" * 8).run()
    (html,) = vs_html(at)
    assert "measured under a custom protocol" in html and "<b>+0.029</b>" in html

    at.checkbox(key="reported").uncheck().run()
    assert not vs_html(at)


def open_link(monkeypatch, db, **params):
    """The app opened from a link carrying ``params`` in its query string."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr("sys.argv", ["app.py", "--db", str(db)])
    monkeypatch.delenv("PATHBOARD_DB", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _two_runs(path):
    """make_db, then a second run that re-scores plip (ensemble) to 0.700."""
    make_db(path)
    store = Store(path)
    run_id = store.start_run(command="pathboard run --models plip", device="cpu", precision="fp32")
    cell = {"model": "plip", "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": "ensemble",
            "weights_fingerprint": "abcdef0123456789abcdef", "prompt_hash": "def", "manifest_hash": "ghi",
            "n_items": 32, "n_failed": 0, "device": "cpu", "precision": "fp32"}
    store.add_cell(run_id, cell, [Metric("weighted_f1", 0.700, 0.650, 0.750, 32)])
    store.finish_run(run_id, "finished", 3, ["retrieval on crc-val-he-7k: it has no captions"],
                     {"crc-val-he-7k": {"ADI/x.tif": "UnidentifiedImageError: cannot identify image file"}})
    return path, run_id


def test_runs_view_lists_runs_and_one_runs_record(monkeypatch, tmp_path):
    db, second = _two_runs(tmp_path / "r.duckdb")
    runs = queries.load_runs(db)
    assert list(runs["run_id"])[0] == second and list(runs["failed_files"]) == [1, 0]
    at = open_link(monkeypatch, db, view="Runs")
    assert at.sidebar.radio(key="view").value == "Runs"
    (runs_frame, *rest) = [d.value for d in at.dataframe]
    assert list(runs_frame["run"]) == list(runs["run_id"]) and list(runs_frame["cells stored"]) == ["1", "4"]
    assert "image_forwards" not in runs_frame and runs_frame["duration"].str.endswith(" s").all()  # human units
    assert at.code[0].value == "pathboard run --models plip"
    page = " ".join(m.value for m in at.markdown)
    assert "retrieval on crc-val-he-7k: it has no captions" in page
    assert any("UnidentifiedImageError" in str(d.value["reason"].tolist()) for d in at.dataframe[1:])
    assert at.query_params["view"] == "Runs" and at.query_params["detail"] == second


def test_run_filter_shows_one_runs_numbers(monkeypatch, tmp_path):
    db, second = _two_runs(tmp_path / "r.duckdb")
    at = app_test(monkeypatch, argv_db=db)
    assert "0.700 [0.65, 0.75]" in table_html(at)  # the newest result of every cell
    first = [r for r in queries.load_runs(db)["run_id"] if r != second][0]
    at.sidebar.selectbox(key="run").set_value(first).run()
    html = table_html(at)
    assert "0.655 [0.62, 0.69]" in html and "0.700" not in html
    at.sidebar.selectbox(key="run").set_value(second).run()
    html = table_html(at)
    assert "0.700 [0.65, 0.75]" in html and "quiltnet" not in html


def test_a_link_reopens_the_same_view(monkeypatch, tmp_path):
    db = make_db(tmp_path / "r.duckdb")
    at = open_link(monkeypatch, db, metric="cohen_kappa", mode="single", reported="0", highlight="plip")
    assert at.selectbox(key="metric").value == "cohen_kappa" and at.radio(key="mode").value == "single"
    assert at.checkbox(key="reported").value is False and at.sidebar.selectbox(key="highlight").value == "plip"
    html = table_html(at)
    assert "(reported)" not in html and '<tr class="measured highlight"' in html
    assert "0.410 [0.36, 0.46]" in html  # plip's single-mode kappa
    at.radio(key="mode").set_value("ensemble").run()  # a change through the UI goes back into the URL
    assert at.query_params["mode"] == "ensemble" and at.query_params["metric"] == "cohen_kappa"
    assert at.query_params["highlight"] == "plip" and at.query_params["reported"] == "0"


def test_a_run_that_writes_the_database_shows_on_the_next_rerun(monkeypatch, tmp_path):
    """The app reads the database once per version of the file: a new result is shown on the next rerun,
    without restarting the server or clearing a cache."""

    db = make_db(tmp_path / "pb.duckdb")
    at = app_test(monkeypatch, argv_db=db)
    assert "late-model" not in table_html(at)
    store = Store(db)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    store.add_cell(run_id, {"model": "late-model", "dataset": "crc-val-he-7k", "task": "zeroshot",
                            "prompt_mode": "ensemble", "weights_fingerprint": "0123", "prompt_hash": "def",
                            "manifest_hash": "ghi", "n_items": 32, "n_failed": 0, "device": "cpu",
                            "precision": "fp32"}, [Metric("weighted_f1", 0.777, 0.7, 0.8, 32)])
    at.run()
    assert not at.exception
    assert ">late-model</td>" in table_html(at) and "0.777 [0.70, 0.80]" in table_html(at)
