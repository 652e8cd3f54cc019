"""Exports of the leaderboard's Overview table: CSV, Markdown, LaTeX, and ``pathboard export``."""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from support.databases import PUBLISHED, make_db, make_vs_db, rows
from support.helpers import pathboard
from support.imports import imported_after

from pathboard.cli import cli
from pathboard.core.errors import PathboardError
from pathboard.core.science.metrics import Metric
from pathboard.core.store import queries
from pathboard.core.store.database import Store
from pathboard.leaderboard import export, frames

# (model, value, lo, hi) of a lower-is-better metric on crc-val-he-7k
ECE = [("quiltnet-b32", 0.081, 0.062, 0.101), ("plip", 0.143, 0.121, 0.166)]


@pytest.fixture()
def db(tmp_path) -> Path:
    return make_db(tmp_path / "results.duckdb")


@pytest.fixture()
def ece_db(db) -> Path:
    store = Store(db)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    for model, value, lo, hi in ECE:
        cell = {"model": model, "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": "ensemble",
                "weights_fingerprint": "abc", "prompt_hash": "def", "manifest_hash": "ghi", "n_items": 32,
                "n_failed": 0, "device": "cpu", "precision": "fp32"}
        store.add_cell(run_id, cell, [Metric("ece", value, lo, hi, 32)])
    return db


def app_table(db, task=frames.DEFAULT_TASK, metric=frames.DEFAULT_METRIC, mode=frames.DEFAULT_MODE,
              include_reported=True, published_only=False) -> pd.DataFrame:
    """The Overview's table, built the way app.py builds it (default selection: the measured datasets, and
    with ``published_only`` those with published numbers only)."""
    long = pd.concat([queries.load_measured(db), frames.load_reported()], ignore_index=True)
    rows = frames.select(long, metric, task, mode, include_reported=include_reported)
    columns = frames.default_columns(rows, published_only)
    return export.annotated(long, queries.load_catalog(db), metric, task, mode, columns, include_reported)


#: the columns with published-only datasets opted in: the measured one first
COLUMNS = ["crc-val-he-7k", "wsss4luad", "sicapv2"]


def odd_table() -> pd.DataFrame:
    """Floats that print with many digits, a missing cell, and names LaTeX must escape."""
    df = rows(cells={("my_model #1 & 50%", "d_1"): 0.1 + 0.2, ("my_model #1 & 50%", "d2"): 1 / 3,
                     ("b|c", "d_1"): 2 / 3})
    return frames.comparison_table(df)


def data_lines(markdown: str) -> list[list[str]]:
    """The cells of each line of a pipe table (header and alignment row included)."""
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in markdown.strip().splitlines()
            if line.startswith("|")]  # the notes under the table are a paragraph


def balanced(latex: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", latex.replace("\\\\", "")):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def invoke(*args) -> str:
    result = CliRunner().invoke(cli, ["export", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("include_reported", [True, False])
def test_overview_is_the_app_table(db, include_reported):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", include_reported=include_reported)
    pd.testing.assert_frame_equal(table, app_table(db, include_reported=include_reported))
    assert list(table["value"].columns) == ["crc-val-he-7k", "Avg"]  # the measured columns: Avg on every row
    assert table["value"]["Avg"].loc[:, "measured"].notna().all()
    assert len(table) == 2 + len(PUBLISHED) * include_reported
    assert table.attrs["notes"][0].startswith("Avg: the mean over the 1 dataset(s) shown (crc-val-he-7k)")
    wide = export.overview(db, "zeroshot", "weighted_f1", "ensemble", include_reported=include_reported,
                           published_only=True)
    pd.testing.assert_frame_equal(wide, app_table(db, include_reported=include_reported, published_only=True))
    assert list(wide["value"].columns) == (["crc-val-he-7k", "wsss4luad", "sicapv2"] if include_reported
                                           else ["crc-val-he-7k"]) + ["Avg"]


def test_overview_datasets_and_mode(db):
    table = export.overview(db, "zeroshot", "cohen_kappa", "single", datasets=["crc-val-he-7k"])
    assert list(table.index) == [("quiltnet-b32", "measured"), ("plip", "measured")]
    assert table["value"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.41)


@pytest.mark.parametrize("make", ["db", "odd"])
def test_csv_round_trips_the_values_exactly(db, make):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", published_only=True) if make == "db" \
        else odd_table()
    text = export.to_csv(table)
    columns = list(table["value"].columns)
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["model"] + [f"{c}{s}" for c in columns for s in ("", "_ci_low", "_ci_high")]
    assert [line[0] for line in lines[1:]] == list(table.index.get_level_values("model"))
    for line, key in zip(lines[1:], table.index):
        for i, (column, stat) in enumerate((c, s) for c in columns for s in frames.STATS):
            want = table[stat].at[key, column]
            assert (line[i + 1] == "") if math.isnan(want) else (float(line[i + 1]) == want), (key, column, stat)
    back = pd.read_csv(io.StringIO(text)).set_index("model")
    for column in columns:
        got = back[column].to_numpy()
        assert list(got[~pd.isna(got)]) == list(table["value"][column].dropna())
    if make == "db":
        assert back.at["VirCLIP (reported)", "crc-val-he-7k"] == 0.909
        assert math.isnan(back.at["VirCLIP (reported)", "crc-val-he-7k_ci_low"])
        avg = back.at["VirCLIP (reported)", "Avg"]
        assert avg == table["value"].at[("VirCLIP (reported)", "reported"), "Avg"] and avg != round(avg, 3)


def test_csv_without_ci_has_only_the_values(db):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", published_only=True)
    back = pd.read_csv(io.StringIO(export.to_csv(table, ci=False)))
    assert list(back.columns) == ["model", *COLUMNS, "Avg"]
    assert back.set_index("model").at["plip", "crc-val-he-7k"] == 0.655


def test_markdown_bolds_the_best_per_column_with_the_right_shape(db):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", published_only=True)
    markdown = export.to_markdown(table)
    lines = data_lines(markdown)
    assert lines[0] == ["model", *COLUMNS, "Avg"]
    assert markdown.endswith("\n\nItems evaluated: crc-val-he-7k: n = 32. Avg: the mean over the 3 dataset(s) "
                             "shown (crc-val-he-7k, wsss4luad, sicapv2), for rows with a value in every one.\n")
    assert lines[1] == [":---"] + ["---:"] * 4
    assert len(lines) == 2 + len(table) and {len(line) for line in lines} == {5}
    assert [line[0] for line in lines[2:]] == list(table.index.get_level_values("model"))
    body = {line[0]: line[1:] for line in lines[2:]}
    assert body["plip"] == ["0.655 [0.623, 0.688]", "–", "–", "–"]  # measured on CRC only: no Avg
    assert body["VirCLIP (reported)"] == ["**0.909**", "**0.762**", "0.439", "0.703"]
    assert body["ConText-L-14-336px (reported)"][2:] == ["**0.668**", "**0.718**"]
    bold = [[cell.startswith("**") for cell in line[1:]] for line in lines[2:]]
    assert bold == frames.best_per_column(table).to_numpy().tolist()
    assert sum(map(sum, bold)) == 4  # one best per column


def test_markdown_measured_only_and_no_ci(db):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", include_reported=False)
    md = export.to_markdown(table)
    assert "| plip | **0.655** [0.623, 0.688] | **0.655** |" in md
    assert "| quiltnet-b32 | 0.612 [0.581, 0.642] | 0.612 |" in md
    bare = export.to_markdown(table, ci=False)
    assert "[" not in bare and "| plip | **0.655** | **0.655** |" in bare
    assert "| plip | **0.66** [0.62, 0.69] |" in export.to_markdown(table, digits=2)


def test_markdown_escapes_pipes_in_labels():
    lines = data_lines(export.to_markdown(odd_table()))
    assert {len(line) for line in lines} == {4} and "b\\|c" in [line[0] for line in lines]


def test_a_lower_is_better_metric_bolds_the_minimum(ece_db):
    assert frames.lower_is_better("ece")
    table = export.overview(ece_db, "zeroshot", "ece", "ensemble")
    assert list(table.index.get_level_values("source")) == ["measured", "measured"]  # nothing published
    md = export.to_markdown(table, lower=True)
    assert "| quiltnet-b32 | **0.081** [0.062, 0.101] | **0.081** |" in md
    assert "| plip | 0.143 [0.121, 0.166] | 0.143 |" in md
    assert r"\textbf{0.081}" in export.to_latex(table, lower=True)
    assert "**0.143**" in export.to_markdown(table)  # the default is the maximum
    assert invoke("--db", ece_db, "--metric", "ece") == md  # the CLI knows ece is lower-is-better
    assert r"\textbf{0.081}" in invoke("--db", ece_db, "--metric", "ece", "--format", "latex")


def test_latex_is_a_booktabs_table_with_the_best_in_bold(db):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", published_only=True)
    tex = export.to_latex(table, caption="Weighted F1, zero-shot", label="tab:wf1")
    lines = tex.strip().splitlines()
    assert lines[0] == r"\begin{table}[ht]" and lines[-1] == r"\end{table}"
    assert r"\caption{Weighted F1, zero-shot}" in lines and r"\label{tab:wf1}" in lines
    assert r"\begin{tabular}{lrrrr}" in lines
    rules = [line for line in lines if line in (r"\toprule", r"\midrule", r"\bottomrule")]
    assert rules == [r"\toprule", r"\midrule", r"\midrule", r"\bottomrule"]  # one between measured and reported
    rows_ = [line for line in lines if line.endswith(r"\\")]
    assert len(rows_) == 1 + len(table) and all(line.count(" & ") == 4 for line in rows_)
    assert rows_[0] == r"Model & crc-val-he-7k & wsss4luad & sicapv2 & Avg \\"
    assert r"plip & 0.655 {\scriptsize [0.623, 0.688]} & -- & -- & -- \\" in lines
    assert (r"\textit{VirCLIP (reported)} & \textit{\textbf{0.909}} & \textit{\textbf{0.762}} & \textit{0.439} "
            r"& \textit{0.703} \\") in lines
    assert tex.count(r"\textbf{") == 4 and r"\textbf{0.718}" in tex and r"\textbf{0.668}" in tex
    assert balanced(tex)
    default = export.to_latex(table)  # without a caption of its own, the table's notes are its caption
    assert r"\caption{Items evaluated: crc-val-he-7k: n = 32. Avg: the mean over the 3 dataset(s)" in default
    assert r"\caption" not in export.to_latex(odd_table())


def test_latex_escapes_names_and_drops_cis_on_request():
    table = odd_table()
    tex = export.to_latex(table)
    assert r"my\_model \#1 \& 50\%" in tex and "my_model" not in tex
    assert r"Model & d2 & d\_1 & Avg \\" in tex and r"b\textbar{}c & -- & " in tex
    assert r"\textbf{0.667} {\scriptsize [0.617, 0.717]}" in tex  # b|c's 2/3 is d_1's best
    assert balanced(tex)
    for line in tex.splitlines():
        if line.endswith(r"\\"):
            assert len(re.findall(r"(?<!\\)&", line)) == 3, line
    bare = export.to_latex(table, ci=False)
    assert r"\scriptsize" not in bare and "[" not in bare.replace("[ht]", "") and balanced(bare)
    negative = frames.comparison_table(rows(cells={("a", "d"): -0.25}))
    assert r"\textbf{$-$0.250} {\scriptsize [$-$0.300, $-$0.200]}" in export.to_latex(negative)


def test_latex_escape_covers_every_special_character():
    assert export.latex_escape(r"a_b%c&d#e$f{g}h~i^j\k|l<m>") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k\textbar{}l\textless{}m"
        r"\textgreater{}")


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_cli_writes_the_functions_table(db, fmt):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble")
    assert invoke("--db", db, "--format", fmt) == export.export(table, fmt)
    chosen = export.overview(db, "zeroshot", "cohen_kappa", "single", ["crc-val-he-7k"], include_reported=False)
    assert invoke("--db", db, "--format", fmt, "--metric", "cohen_kappa", "--mode", "single",
                  "--datasets", "crc-val-he-7k", "--no-reported", "--no-ci") == export.export(chosen, fmt, ci=False)


def test_cli_default_is_markdown_and_defaults_are_the_leaderboards(db):
    assert invoke("--db", db) == export.to_markdown(app_table(db))
    text = CliRunner().invoke(cli, ["export", "--help"]).stdout
    for default in (frames.DEFAULT_TASK, frames.DEFAULT_METRIC, frames.DEFAULT_MODE):
        assert f"default: {default}" in text


def test_cli_no_ci_drops_the_intervals(db):
    back = pd.read_csv(io.StringIO(invoke("--db", db, "--format", "csv", "--no-ci")))
    assert not [c for c in back.columns if "_ci_" in c]
    assert "[" not in invoke("--db", db, "--no-ci")
    assert r"\scriptsize" not in invoke("--db", db, "--format", "latex", "--no-ci")
    assert "[0.623, 0.688]" in invoke("--db", db)


def test_cli_protocol_hash_and_prefix(tmp_path):
    db = make_vs_db(tmp_path / "vs.duckdb")
    args = ["--db", db, "--task", "zeroshot-wsi", "--metric", "balanced_accuracy", "--no-reported", "--format", "csv"]
    default = pd.read_csv(io.StringIO(invoke(*args))).set_index("model")
    assert default.at["conch", "tcga-nsclc"] == 0.912
    custom_hash = "c0ffee00" * 8
    assert custom_hash in queries.protocol_choices(db)
    for given in (custom_hash, "c0ffee00"):
        custom = pd.read_csv(io.StringIO(invoke(*args, "--protocol", given))).set_index("model")
        assert list(custom.index) == ["conch"] and custom.at["conch", "tcga-nsclc"] == 0.930


@pytest.mark.subprocess
def test_cli_output_file_and_empty_database(db, tmp_path):
    out = tmp_path / "table.tex"
    result = pathboard("export", "--db", db, "--format", "latex", "--output", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    assert out.read_text(encoding="utf-8") == export.to_latex(app_table(db))
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    published = invoke("--db", store.path, "--format", "csv")
    assert pd.read_csv(io.StringIO(published))["model"].str.endswith(" (reported)").all()


@pytest.mark.parametrize("args,words", [
    (["--task", "nope"], ["task 'nope'", "zeroshot", "zeroshot-wsi", "segmentation"]),
    (["--metric", "nope"], ["metric 'nope'", "weighted_f1", "cohen_kappa"]),
    (["--task", "segmentation", "--metric", "dice", "--mode", "single"], ["single", "prompt modes", "ensemble"]),
    (["--datasets", "crc-val-he-7k,nope"], ["nope", "datasets: crc-val-he-7k, wsss4luad, sicapv2"]),
    (["--protocol", "zzz"], ["protocol 'zzz'", "default"]),
])
def test_cli_errors_name_what_exists(db, args, words):
    result = CliRunner().invoke(cli, ["export", "--db", str(db), *args])
    assert isinstance(result.exception, PathboardError), result.output
    message = str(result.exception)
    assert "\n" not in message and all(w in message for w in words), message


@pytest.mark.subprocess
def test_cli_errors_are_one_line_without_traceback(db, tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not a database\n" * 100)
    for args, words in [(["--db", tmp_path / "missing.duckdb"], ["no results database", "missing.duckdb"]),
                        (["--db", bad], ["bad.duckdb", "not a DuckDB database"]),
                        (["--db", db, "--metric", "nope"], ["weighted_f1, cohen_kappa"])]:
        result = pathboard("export", *args)
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert all(w in lines[0] for w in words) and "Traceback" not in result.stderr


@pytest.mark.subprocess
def test_export_imports_no_model_library_and_the_cli_no_pandas(db):
    assert imported_after(f"from pathboard.leaderboard import export\nexport.overview({str(db)!r})") == []
    assert imported_after("import pathboard.cli\nimport sys\nassert 'pandas' not in sys.modules") == []
    with pytest.raises(PathboardError, match="unknown export format"):
        export.export(odd_table(), "html")


def test_exports_mark_an_interval_that_is_no_ordinary_ci(db):
    table = export.overview(db, "zeroshot", "weighted_f1", "ensemble", include_reported=False)
    assert table.attrs["caveats"].eq("").all().all()  # 32 items a cell: ordinary intervals
    table.attrs["caveats"].at[("plip", "measured"), "crc-val-he-7k"] = "over 2 unit(s) only"
    assert "| plip | **0.655** [0.623, 0.688]† | **0.655** |" in export.to_markdown(table)
    assert r"{\scriptsize [0.623, 0.688]$^\dagger$}" in export.to_latex(table)
