"""The leaderboard's Overview table as CSV, Markdown and LaTeX: for its download buttons and for
``pathboard export``. Plain pandas on the tables of :mod:`pathboard.leaderboard.frames`; no Streamlit,
no plugins, no torch.

Every exporter takes a :func:`frames.comparison_table` (column MultiIndex (stat, column), index (model,
source)). CSV keeps every float at full precision (it reads back to the same numbers); Markdown and
LaTeX round to ``digits`` and mark the best value per column in bold as the leaderboard does.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import duckdb
import pandas as pd

from pathboard.core.errors import PathboardError
from pathboard.core.store import queries
from pathboard.leaderboard import frames

FORMATS = ["csv", "markdown", "latex"]
LATEX_MISSING = "--"  # an en dash in LaTeX, whatever the input encoding


def resolve_protocol(db: str | Path, protocol: str) -> str:
    """``protocol`` as :func:`queries.load_measured` takes it: "default", a protocol pack ("pack:ID" or just ID), a
    protocol hash listed by
    :func:`queries.protocol_choices`, or a unique prefix of one (the selector shows the first 8 characters)."""
    choices = queries.protocol_choices(db)
    if protocol in choices:
        return protocol
    if queries.PACK + protocol in choices:  # a pack by its id alone, as `pathboard run --protocol` takes it
        return queries.PACK + protocol
    hits = [h for h in choices if h != "default" and protocol and h.startswith(protocol)]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(h if h == "default" else h[:12] for h in choices)
    why = "is the prefix of several" if hits else "is not one of the database's protocols"
    raise PathboardError(f"protocol {protocol!r} {why}; protocols: {known}")


def annotated(long: pd.DataFrame, catalog: dict, metric: str, task: str, mode: str, datasets: list[str],
              include_reported: bool = True) -> pd.DataFrame:
    """:func:`frames.comparison_table` with what belongs beside it in ``attrs``: ``sizes`` (each measured
    column's n, :func:`frames.column_sizes`) and ``notes`` (what Avg is over, which columns are samples, what
    a named headline is: :func:`frames.table_notes`), for the Overview and every export."""
    table = frames.comparison_table(long, metric, task, mode, datasets, include_reported)
    rows = frames.select(long, metric, task, mode, datasets, include_reported)
    sizes = frames.column_sizes(rows, catalog)
    caveats = frames.interval_caveats(rows, table)
    pooling = frames.poolings(rows, task, catalog)
    said = [f"Pooling (one score per slide): {'; '.join(f'{m}: {how}' for m, how in pooling.items())}."] \
        if pooling else []  # the exports carry it too, under the table
    table.attrs.update(sizes=sizes, caveats=caveats, notes=frames.table_notes(rows, datasets, sizes, caveats) + said,
                       pooling=pooling)
    return table


def overview(db: str | Path, task: str = frames.DEFAULT_TASK, metric: str = frames.DEFAULT_METRIC,
             mode: str = frames.DEFAULT_MODE, datasets: list[str] | None = None, include_reported: bool = True,
             protocol: str = "default", run: str | None = None, published_only: bool = False) -> pd.DataFrame:
    """The table the leaderboard's Overview shows for this selection: the measured cells of ``db`` of one
    protocol (of one ``run`` only, if given; else every cell's newest result) beside the published ones,
    models x (datasets + Avg), annotated (:func:`annotated`). ``datasets`` defaults to the Overview's
    columns: every dataset with a measured number, and with ``published_only`` also those with published
    numbers only.

    Raises PathboardError (one line) for a missing or unreadable database, an unknown protocol, a task or
    metric with no numbers (naming those there are), or a dataset the selection has no numbers for.
    """
    if not Path(db).is_file():
        raise PathboardError(f"no results database at {db}; run `pathboard run` first or pass --db")
    try:
        chosen = resolve_protocol(db, protocol)
        if run is not None and run not in set(queries.load_runs(db)["run_id"]):
            raise PathboardError(f"no run {run} in {db}; `pathboard runs --db {db}` lists them")
        measured = queries.load_measured(db, chosen) if run is None else queries.load_run(db, run, chosen)
    except duckdb.Error as exc:
        raise PathboardError(f"cannot read {db}: {str(exc).splitlines()[0]}") from None
    long = pd.concat([measured, frames.reported_for(frames.load_reported(), chosen)],
                     ignore_index=True)  # as the app builds it
    tasks = sorted(set(long["task"]))
    if task not in tasks:
        raise PathboardError(f"nothing to export for task {task!r}; tasks: {', '.join(tasks)}")
    metrics = frames.task_metrics(long, task)
    if metric not in set(long.loc[long["task"] == task, "metric"]):
        raise PathboardError(f"nothing to export for metric {metric!r} of task {task!r}; "
                             f"its metrics: {', '.join(metrics) or 'none'}")
    rows = frames.select(long, metric, task, mode, include_reported=include_reported)
    available = frames.dataset_order(rows)
    if not available:
        shown = "measured or published" if include_reported else "measured"
        raise PathboardError(f"nothing to export: no {shown} {metric} of task {task!r} in {mode} prompt mode; "
                             f"prompt modes with numbers: {', '.join(_modes(long, metric, task)) or 'none'}")
    if datasets is None:
        datasets = frames.default_columns(rows, published_only)
    unknown = [d for d in datasets if d not in available]
    if unknown:
        raise PathboardError(f"no {metric} of task {task!r} ({mode}) for dataset(s) {', '.join(unknown)}; "
                             f"datasets: {', '.join(available)}")
    return annotated(long, queries.load_catalog(db), metric, task, mode, list(datasets), include_reported)


def _modes(long: pd.DataFrame, metric: str, task: str) -> list[str]:
    rows = long[(long["metric"] == metric) & (long["task"] == task)]
    return frames.MODES if rows["prompt_mode"].isna().any() else [m for m in frames.MODES
                                                                   if m in set(rows["prompt_mode"])]


def _columns(table: pd.DataFrame) -> list[str]:
    return list(table["value"].columns) if len(table.columns) else []


def _cells(table: pd.DataFrame):
    """(model label, source, [(column, value, low, high)]) per row, in the table's order."""
    columns = _columns(table)
    for key in table.index:
        model, source = key
        yield model, source, [(c, *(float(table[stat].at[key, c]) for stat in frames.STATS)) for c in columns]


def _caveat(table: pd.DataFrame, key, column: str) -> str:
    """Why the interval of ``table``'s cell is no ordinary 95% CI ("" when it is, or nothing says)."""
    caveats = table.attrs.get("caveats")
    if caveats is None or key not in caveats.index or column not in caveats.columns:
        return ""
    return caveats.at[key, column]


def _missing(x: float) -> bool:
    return x is None or math.isnan(x)


def to_csv(table: pd.DataFrame, ci: bool = True) -> str:
    """One line per model (reported rows keep their " (reported)" label): ``model``, then per column
    (datasets, Avg) ``DATASET`` and, with ``ci``, ``DATASET_ci_low`` and ``DATASET_ci_high``. Floats at
    full precision (``float(text)`` gives the table's number back); missing numbers are empty."""
    header = ["model"]
    for c in _columns(table):
        header += [c, f"{c}_ci_low", f"{c}_ci_high"] if ci else [c]
    rows = []
    for model, _, cells in _cells(table):
        line = [model]
        for _, value, low, high in cells:
            line += [value, low, high] if ci else [value]
        rows.append(line)
    out = io.StringIO()
    pd.DataFrame(rows, columns=header).to_csv(out, index=False, lineterminator="\n", na_rep="")
    return out.getvalue()


def _number(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def _text(value: float, low: float, high: float, ci: bool, digits: int, missing: str) -> tuple[str, str]:
    """(value, "[low, high]" or "") as text."""
    if _missing(value):
        return missing, ""
    interval = ""
    if ci and not (_missing(low) or _missing(high)):
        interval = f"[{_number(low, digits)}, {_number(high, digits)}]"
    return _number(value, digits), interval


def to_markdown(table: pd.DataFrame, ci: bool = True, lower: bool = False, digits: int = 3) -> str:
    """A GitHub pipe table: ``model`` then a right-aligned column per dataset and Avg; cells like
    ``0.612 [0.581, 0.642]`` (the bare value without ``ci`` or where no CI was published), the best value
    per column (the lowest when ``lower``) in ``**bold**``, missing numbers as "–"; the table's notes (each
    column's n, what Avg is over, named headlines) in a paragraph under it."""
    best = frames.best_per_column(table, lower) if len(table) else None
    columns = _columns(table)

    def esc(text: str) -> str:
        return text.replace("|", r"\|")

    lines = ["| " + " | ".join(["model", *(esc(frames.short_id(c)) for c in columns)]) + " |",
             "| " + " | ".join([":---", *["---:"] * len(columns)]) + " |"]
    for key, (model, _, cells) in zip(table.index, _cells(table)):
        out = [esc(model)]
        for column, value, low, high in cells:
            number, interval = _text(value, low, high, ci, digits, frames.MISSING)
            if best.at[key, column]:
                number = f"**{number}**"
            if interval and _caveat(table, key, column):
                interval += "†"
            out.append(f"{number} {interval}" if interval else number)
        lines.append("| " + " | ".join(out) + " |")
    under = notes(table)
    return "\n".join(lines) + "\n" + ("\n" + " ".join(under) + "\n" if under else "")


def notes(table: pd.DataFrame) -> list[str]:
    """The table's notes (:func:`annotated`), with each column's n for the formats that show no header line."""
    sizes = table.attrs.get("sizes", {})
    counted = [f"{frames.short_id(c)}: {frames.size_label(sizes[c])}" for c in _columns(table)
               if c in sizes and frames.size_label(sizes[c])]
    return ([f"Items evaluated: {'; '.join(counted)}."] if counted else []) + list(table.attrs.get("notes", []))


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}"}  # the last three: OT1


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, to be typeset as is."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_number(x: str) -> str:
    return "$-$" + x[1:] if x.startswith("-") else x  # a minus sign, not a hyphen


def to_latex(table: pd.DataFrame, ci: bool = True, lower: bool = False, digits: int = 3,
             caption: str | None = None, label: str | None = None) -> str:
    """A complete ``table`` environment: a booktabs ``tabular`` (``\\toprule``, ``\\midrule``,
    ``\\bottomrule``; one more ``\\midrule`` between measured and reported rows), the best value per
    column (the lowest when ``lower``) in ``\\textbf{}``, with ``ci`` the interval after the value as
    ``{\\scriptsize [lo, hi]}``, reported rows in ``\\textit{}``, missing numbers as "--". Model and
    dataset names are escaped, long ids shortened (:func:`frames.short_id`); ``caption`` and ``label`` are
    LaTeX, used as given (without ``caption``, the table's notes are its caption). Needs
    ``\\usepackage{booktabs}``."""
    best = frames.best_per_column(table, lower) if len(table) else None
    columns = _columns(table)
    out = [r"\begin{table}[ht]", r"\centering"]
    under = notes(table)
    if caption is None and under:
        caption = latex_escape(" ".join(under))
    if caption is not None:
        out.append(rf"\caption{{{caption}}}")
    if label is not None:
        out.append(rf"\label{{{label}}}")
    out += [rf"\begin{{tabular}}{{l{'r' * len(columns)}}}", r"\toprule",
            " & ".join(["Model", *(latex_escape(frames.short_id(c)) for c in columns)]) + r" \\", r"\midrule"]
    previous = None
    for key, (model, source, cells) in zip(table.index, _cells(table)):
        if previous is not None and source != previous:
            out.append(r"\midrule")
        previous = source
        italic = (lambda s: rf"\textit{{{s}}}") if source == "reported" else (lambda s: s)
        row = [italic(latex_escape(model))]
        for column, value, low, high in cells:
            number, interval = _text(value, low, high, ci, digits, LATEX_MISSING)
            number = number if _missing(value) else _latex_number(number)
            if best.at[key, column]:
                number = rf"\textbf{{{number}}}"
            cell = italic(number)
            if interval:
                low_text, high_text = (_latex_number(_number(x, digits)) for x in (low, high))
                dagger = r"$^\dagger$" if _caveat(table, key, column) else ""
                cell += rf" {{\scriptsize [{low_text}, {high_text}]{dagger}}}"
            row.append(cell)
        out.append(" & ".join(row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def export(table: pd.DataFrame, fmt: str, ci: bool = True, lower: bool = False, digits: int = 3) -> str:
    """``table`` in one of FORMATS (csv, markdown, latex)."""
    if fmt == "csv":
        return to_csv(table, ci)
    if fmt == "markdown":
        return to_markdown(table, ci, lower, digits)
    if fmt == "latex":
        return to_latex(table, ci, lower, digits)
    raise PathboardError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
