"""The leaderboard's tables as pandas frames: no Streamlit, no SQL, no HTML, so every rule here is unit-tested.

A *long* frame has one row per (model, dataset, task, prompt_mode, metric) with value, ci_low,
ci_high and ``source`` ("measured" from the results database, read by :mod:`pathboard.core.store.queries`;
"reported" from ``reported.csv``). ``comparison_table`` turns it into the papers' layout: rows are models,
columns are datasets + Avg.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pathboard.core.science.metrics import CAVEAT, headline_text, interval_caveat
from pathboard.core.store.queries import PACK

HEADLINE_METRICS = ["weighted_f1", "balanced_accuracy", "cohen_kappa", "quadratic_kappa", "accuracy"]
DEFAULT_METRIC, DEFAULT_TASK, DEFAULT_MODE = "weighted_f1", "zeroshot", "ensemble"


MODES = ["ensemble", "single"]


MODE_HELP = ("single: one prompt per class, the class's canonical name in the prompt set's single template "
             "(CONCH's 'CLASSNAME.'); ensemble: every synonym x every template, the normalised text embeddings "
             "averaged per class (CONCH's protocol)")


REPORTED_SELECTION = (DEFAULT_METRIC, DEFAULT_TASK, DEFAULT_MODE)  # the first published table's selection


REPORTED_CSV = Path(__file__).with_name("reported.csv")


REPORTED_SUFFIX = " (reported)"


STATS = ["value", "ci_low", "ci_high"]


MISSING = "–"


#: reported.csv's text columns: where a number was published (paper, table, split), the pathboard model
#: with the same weights (``model_id``, empty if none) and why, and how the published protocol compares
#: with pathboard's default one (``protocol_match``: differs or unknown; ``protocol_note``: how), and the
#: protocol pack that reruns the paper's own protocol (``pack``; empty if none does: the source does not
#: state enough of it)
REPORTED_TEXT = ["published_as", "source_note", "model_id", "model_note", "paper", "table", "split",
                 "protocol_match", "protocol_note", "pack"]


def load_reported(path: Path = REPORTED_CSV) -> pd.DataFrame:
    """The published numbers shipped with the package, as a long frame (no CIs were published)."""
    df = pd.read_csv(path)
    for col in REPORTED_TEXT:  # empty, not NaN, where a CSV leaves a field (or a whole column) out
        df[col] = df[col].fillna("").astype(str) if col in df else ""
    df["ci_low"] = df["ci_high"] = float("nan")
    df["source"] = "reported"
    return df


def reported_for(reported: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The published rows to set beside the measured ones of ``protocol``: under a protocol pack ("pack:ID"),
    only those measured under that pack (reported.csv's ``pack``), like beside like; every row otherwise."""
    if not protocol.startswith(PACK) or "pack" not in reported:
        return reported
    return reported[reported["pack"] == protocol.removeprefix(PACK)].reset_index(drop=True)


def default_metric(reported: pd.DataFrame, task: str) -> str:
    """The metric a table of ``task`` opens on: that of the first published row of the task (under a protocol
    pack, the paper's own: Quilt-1M's accuracy), else weighted F1."""
    rows = reported.loc[reported["task"] == task, "metric"] if len(reported) else []
    return str(rows.iloc[0]) if len(rows) else DEFAULT_METRIC


def task_metrics(df: pd.DataFrame, task: str) -> list[str]:
    """The metrics one task reports: the classification headline ones first, in their order, then the
    task's own (retrieval's recalls, segmentation's Dice, ...); per-class recalls are left out."""
    present = set(df.loc[df["task"] == task, "metric"])
    own = sorted(m for m in present - set(HEADLINE_METRICS) if not m.startswith("recall/"))
    return [m for m in HEADLINE_METRICS if m in present] + own


def dataset_order(df: pd.DataFrame) -> list[str]:
    """Datasets of ``df``: those with measured numbers first, then those with published numbers only; within
    each, the published table's columns in its order, then the rest sorted."""
    published = list(dict.fromkeys(load_reported()["dataset"]))
    present = set(df["dataset"])
    measured = set(df.loc[df["source"] == "measured", "dataset"]) if "source" in df.columns else present

    def ordered(ids: set) -> list[str]:
        return [d for d in published if d in ids] + sorted(ids - set(published))

    return ordered(present & measured) + ordered(present - measured)


def default_columns(df: pd.DataFrame, published_only: bool = False) -> list[str]:
    """The paper table's columns for the rows ``df`` (one task, metric and prompt mode): the datasets with a
    measured number, and only with ``published_only`` (or when nothing is measured) those that have published
    numbers alone: a column no measured model has leaves every measured row's Avg empty."""
    order = dataset_order(df)
    measured = set(df.loc[df["source"] == "measured", "dataset"])
    return order if published_only or not measured else [d for d in order if d in measured]


#: the longest column header the paper table shows; the full id is on hover
SHORT_ID = 24


def short_id(dataset: str, width: int = SHORT_ID) -> str:
    """A header for ``dataset``: a ``folder:`` or ``slides-csv:`` set by its last path part
    (``folder:…/lung``), and any id longer than ``width`` cut with "…"."""
    kind, sep, path = dataset.partition(":")
    if sep and kind in ("folder", "slides-csv") and "/" in path.rstrip("/"):
        dataset = f"{kind}:…/{Path(path.rstrip('/')).name}"
    return dataset if len(dataset) <= width else dataset[:width - 1] + "…"


def _number(x) -> int | None:
    return None if x is None or pd.isna(x) else int(x)  # None, NaN or pandas' NA (a column of NULLs)


def column_sizes(rows: pd.DataFrame, catalog: dict | None = None) -> dict[str, dict]:
    """{dataset: {"n": items evaluated, "found": items under the data root, "full": items of the full set
    or None}} for each dataset with measured rows in ``rows`` (one task, metric, prompt mode): the largest n
    of its models. ``full`` comes from the run's catalog (the dataset's ``expected_files``)."""
    catalog = (catalog or {}).get("datasets", {})
    measured = rows[rows["source"] == "measured"]
    out = {}
    for dataset, of in measured.groupby("dataset", sort=False):
        n = pd.to_numeric(of["n"], errors="coerce").max()
        found = pd.to_numeric(of.get("n_items", pd.Series(dtype=float)), errors="coerce").max()
        out[dataset] = {"n": _number(n), "found": _number(found),
                        "full": _number(catalog.get(dataset, {}).get("expected_files"))}
    return out


def partial(size: dict) -> bool:
    """Whether a column's numbers come from a sample: fewer items found than the full set has."""
    return size.get("full") is not None and size.get("found") is not None and size["found"] < size["full"]


def size_label(size: dict) -> str:
    """``n = 32 of 7,180`` for a sample of the full set, ``n = 96`` otherwise ("" when n is unknown)."""
    if size.get("n") is None:
        return ""
    return f"n = {size['n']:,} of {size['full']:,}" if partial(size) else f"n = {size['n']:,}"


#: what a "†" beside an interval means, under a table
CAVEAT_NOTE = f"{CAVEAT} (hover for which)."


def interval_caveats(rows: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """For each cell of ``table`` (:func:`comparison_table` of ``rows``), why its measured interval is not an
    ordinary 95% CI (:func:`~pathboard.core.science.metrics.interval_caveat`), "" where it is."""
    columns = [c for c in table["value"].columns if c != "Avg"] if len(table.columns) else []
    out = pd.DataFrame("", index=table.index, columns=list(table["value"].columns) if len(table.columns) else [])
    measured = rows[(rows["source"] == "measured") & rows["dataset"].isin(columns)]
    for r in measured.itertuples():
        caveat = interval_caveat(getattr(r, "units", None), getattr(r, "undefined", None))
        if caveat and (r.model, "measured") in out.index:
            out.at[(r.model, "measured"), r.dataset] = caveat
    return out


def table_notes(rows: pd.DataFrame, datasets: list[str], sizes: dict[str, dict],
                caveats: pd.DataFrame | None = None) -> list[str]:
    """The sentences that belong under a paper table of ``rows`` (one task, metric, prompt mode) with
    columns ``datasets``: what Avg is over, which columns are samples, and what a named headline is."""
    shown = [short_id(d) for d in datasets]
    notes = [f"Avg: the mean over the {len(datasets)} dataset(s) shown ({', '.join(shown)}), for rows with a "
             "value in every one."]
    samples = [f"{short_id(d)} ({size_label(sizes[d])})" for d in datasets if d in sizes and partial(sizes[d])]
    if samples:
        notes.append("Measured on a sample of the full set, beside published full-set numbers: "
                     + ", ".join(samples) + ".")
    measured = rows[(rows["source"] == "measured") & rows["dataset"].isin(datasets)]
    if "headline" in measured.columns:
        named = measured.dropna(subset=["headline"])
        for (headline, bootstrap), of in named.groupby(["headline", named["bootstrap"].fillna("")], sort=False):
            where = ", ".join(short_id(d) for d in dict.fromkeys(of["dataset"]))
            notes.append(f"{of['task'].iloc[0]} headline on {where}: {headline_text(headline, bootstrap)}.")
    if caveats is not None and (caveats != "").to_numpy().any():
        notes.append(CAVEAT_NOTE)
    return notes


def select(df: pd.DataFrame, metric: str, task: str, mode: str, datasets: list[str] | None = None,
           include_reported: bool = True) -> pd.DataFrame:
    """Rows of one metric/task/prompt mode. Rows without a prompt mode (tasks with no prompts)
    match either mode."""
    keep = (df["metric"] == metric) & (df["task"] == task)
    keep &= (df["prompt_mode"] == mode) | df["prompt_mode"].isna()
    if datasets is not None:
        keep &= df["dataset"].isin(datasets)
    if not include_reported:
        keep &= df["source"] != "reported"
    return df[keep]


def uses_prompts(df: pd.DataFrame, task: str) -> bool:
    """Whether ``task``'s rows have prompt modes (few-shot, retrieval of images by images ... have none)."""
    return bool(df.loc[df["task"] == task, "prompt_mode"].notna().any())


def row_label(model: str, source: str) -> str:
    return model + REPORTED_SUFFIX if source == "reported" else model


def comparison_table(df: pd.DataFrame, metric: str = DEFAULT_METRIC, task: str = DEFAULT_TASK,
                     mode: str = DEFAULT_MODE, datasets: list[str] | None = None,
                     include_reported: bool = True) -> pd.DataFrame:
    """Models x (datasets + Avg) for one metric, task and prompt mode.

    The columns are a MultiIndex (stat, column) with stat in value/ci_low/ci_high, so
    ``table["value"]`` is the plain paper table. The index is (model, source); reported models
    carry the suffix " (reported)". ``Avg`` is the mean of the row's values, only where the row
    has a value in every dataset column shown. Measured rows come first, best Avg first (then best
    mean of the values they have); reported rows follow in the published order.
    """
    rows = select(df, metric, task, mode, datasets, include_reported)
    columns = datasets if datasets is not None else dataset_order(rows)
    rows = rows.assign(model=[row_label(m, s) for m, s in zip(rows["model"], rows["source"])])
    order = list(dict.fromkeys(zip(rows["model"], rows["source"])))
    index = pd.MultiIndex.from_tuples(order, names=["model", "source"])
    stats = {}
    for stat in STATS:
        wide = rows.pivot_table(index=["model", "source"], columns="dataset", values=stat,
                                aggfunc="first", dropna=False) if len(rows) else pd.DataFrame()
        stats[stat] = wide.reindex(index=index, columns=columns).astype(float)
    values = stats["value"][columns]
    complete = values.notna().all(axis=1) & bool(columns)
    stats["value"]["Avg"] = values.mean(axis=1).where(complete)
    stats["ci_low"]["Avg"] = stats["ci_high"]["Avg"] = float("nan")
    table = pd.concat(stats, axis=1)
    measured = table[table.index.get_level_values("source") == "measured"]
    rank = pd.DataFrame({"avg": measured["value"]["Avg"],
                         "partial": measured["value"][columns].mean(axis=1)})
    rank = rank.sort_values(["avg", "partial"], ascending=False, kind="stable", na_position="last")
    return pd.concat([measured.loc[rank.index], table[table.index.get_level_values("source") != "measured"]])


#: how a patch model's cell of each slide task makes a slide's score or embedding from its tiles (the tasks'
#: defaults); a slide model's cells record ``pooling: slide-encoder`` instead, and KEEP's vote its own
TILE_POOLING = {"zeroshot-wsi": "MI-Zero top-50", "fewshot-wsi": "mean of tiles", "report-retrieval": "mean of tiles",
                "slide-retrieval": "mean of tiles"}
POOLING_NAMES = {"slide-encoder": "slide encoder", "screened-vote": "KEEP screened vote", "topk": "MI-Zero top-50"}


def poolings(rows: pd.DataFrame, task: str, catalog: dict | None = None) -> dict[str, str]:
    """Measured model -> how its cells of ``task`` pool a slide (``slide encoder over conch-v1.5``, ``MI-Zero
    top-50``, ``mean of tiles``); {} for a task that is not scored per slide, and where no cell records a pooling
    of its own (patch models pooled alike, or a database written before cells recorded it: the tables stay as
    they were)."""
    measured = rows[rows["source"] == "measured"] if "source" in rows else rows
    stored = measured["pooling"] if "pooling" in measured else pd.Series([None] * len(measured), index=measured.index)
    if not stored.notna().any():
        return {}
    models = (catalog or {}).get("models", {})
    out: dict[str, set] = {}
    for model, pooling in zip(measured["model"], stored):
        if isinstance(pooling, str) and pooling:
            label = POOLING_NAMES.get(pooling, pooling)
            encoder = models.get(model, {}).get("patch_encoder")
            if pooling == "slide-encoder" and encoder:
                label += f" over {encoder}"
        else:
            label = TILE_POOLING.get(task, "")
        out.setdefault(model, set()).add(label)
    labels = {model: " / ".join(sorted(x for x in found if x)) for model, found in out.items()}
    return labels if any(labels.values()) else {}


#: the metric a benchmark page shows for each task (ordinal datasets: quadratic κ for classification)
TASK_HEADLINE = {"zeroshot": "balanced_accuracy", "zeroshot-wsi": "balanced_accuracy", "fewshot": "balanced_accuracy",
                 "fewshot-wsi": "balanced_accuracy", "segmentation": "dice", "retrieval": "mean_recall",
                 "report-retrieval": "mean_recall"}


CLASSIFICATION = {"balanced_accuracy"}


METRIC_SHORT = {"balanced_accuracy": "bal. acc.", "quadratic_kappa": "κw", "dice": "Dice", "mean_recall": "mean R@K"}


def headline_metric(task: str, ordinal: bool, available: list[str]) -> str | None:
    metric = TASK_HEADLINE.get(task)
    if ordinal and metric in CLASSIFICATION and "quadratic_kappa" in available:
        return "quadratic_kappa"
    if metric in available:
        return metric
    return available[0] if available else None


def group_datasets(catalog: dict, measured: pd.DataFrame, group: str) -> list[str]:
    """The measured datasets that belong to ``group`` (groups as stored with the runs), in id order."""
    return sorted(d for d in set(measured["dataset"]) if group in catalog["datasets"].get(d, {}).get("groups", []))


def group_table(measured: pd.DataFrame, catalog: dict, group: str, mode: str = DEFAULT_MODE) -> pd.DataFrame:
    """Models x (dataset · task) for every dataset of ``group``, each column the task's headline metric
    (see TASK_HEADLINE) with its CI, in the layout of :func:`comparison_table` but without Avg: the
    columns hold different metrics. Prompt-free tasks (few-shot) match either mode."""
    rows = []
    for dataset in group_datasets(catalog, measured, group):
        ordinal = bool(catalog["datasets"].get(dataset, {}).get("ordinal"))
        of_set = measured[measured["dataset"] == dataset]
        for task in sorted(set(of_set["task"])):
            cells = of_set[(of_set["task"] == task) & ((of_set["prompt_mode"] == mode) | of_set["prompt_mode"].isna())]
            metric = headline_metric(task, ordinal, list(dict.fromkeys(cells["metric"])))
            picked = cells[cells["metric"] == metric]
            if len(picked):
                label = f"{dataset} · {task} ({METRIC_SHORT.get(metric, metric)})"
                rows.append(picked.assign(dataset=label, metric="headline", task="group"))
    if not rows:
        return pd.DataFrame()
    long = pd.concat(rows, ignore_index=True)
    columns = list(dict.fromkeys(long["dataset"]))
    table = comparison_table(long, "headline", "group", mode, columns, include_reported=False)
    return table.drop(columns="Avg", level=1)


def dataset_detail(measured: pd.DataFrame, dataset: str, mode: str = DEFAULT_MODE) -> pd.DataFrame:
    """One dataset's headline-variant numbers: a row per (task, metric), a column per model, as text
    with the CI. Per-class scores are left out."""
    per_class = measured["metric"].str.startswith(("recall/", "dice/", "precision/"))
    rows = measured[(measured["dataset"] == dataset) & ~per_class]
    rows = rows[(rows["prompt_mode"] == mode) | rows["prompt_mode"].isna()]
    if rows.empty:
        return pd.DataFrame()
    text = rows.assign(cell=[format_cell(v, lo, hi) for v, lo, hi in zip(rows["value"], rows["ci_low"],
                                                                          rows["ci_high"])])
    return text.pivot_table(index=["task", "metric"], columns="model", values="cell", aggfunc="first")


def lower_is_better(metric: str) -> bool:
    """Metrics where smaller is better: calibration errors, robustness drops and flip rates, spreads."""
    base = metric.split("/", 1)[0]
    return base in {"ece", "brier", "nll", "flip_rate"} or base.endswith("_drop") or metric.endswith("/iqr")


def best_per_column(table: pd.DataFrame, lower: bool = False) -> pd.DataFrame:
    """True where a cell holds its column's best value, the highest (the lowest when ``lower``); ties all
    win; blanks never do."""
    values = table["value"]
    return values.eq(values.min(axis=0) if lower else values.max(axis=0), axis=1) & values.notna()


def format_cell(value: float, low: float, high: float) -> str:
    """``0.762 [0.70, 0.81]``; the bare value when there is no CI; "–" when there is no value."""
    if value is None or math.isnan(value):
        return MISSING
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


def provenance(df: pd.DataFrame, metric: str, task: str, mode: str,
               datasets: list[str] | None = None) -> pd.DataFrame:
    """Where each measured number shown comes from: one row per measured (model, dataset)."""
    rows = select(df, metric, task, mode, datasets, include_reported=False)
    out = rows[["model", "dataset", "run_id", "created_at", "weights_fingerprint", "prompt_hash",
                "manifest_hash", "device", "precision", "n"]].copy()
    out["weights_fingerprint"] = out["weights_fingerprint"].astype(str).str[:12]
    return out.sort_values(["model", "dataset"]).reset_index(drop=True)


def reported_selections(reported: pd.DataFrame) -> list[tuple[str, ...]]:
    """The (metric, task, prompt mode) selections that have published rows, in the CSV's order (a task without
    prompts has no mode: the pair alone)."""
    modes = reported["prompt_mode"].where(reported["prompt_mode"].notna(), None)
    return list(dict.fromkeys((m, t, *([p] if isinstance(p, str) and p else []))
                              for m, t, p in zip(reported["metric"], reported["task"], modes)))


VS_COLUMNS = ["model", "dataset", "value", "ci_low", "ci_high", "prompt_mode", "default_protocol",
              "published_model", "published", "published_mode", "delta", "in_ci", "protocol", "differences",
              "paper", "table", "split", "protocol_note", "pack"]


def published_vs_measured(df: pd.DataFrame, metric: str = DEFAULT_METRIC, task: str = DEFAULT_TASK,
                          mode: str = DEFAULT_MODE, datasets: list[str] | None = None) -> pd.DataFrame:
    """Each measured number beside the published number of the same weights: one row per measured
    (model, dataset) whose model id is a reported row's ``model_id`` on the same dataset, task and metric.

    ``delta`` is measured minus published; ``in_ci`` whether the published value lies inside the
    measured 95% CI. A published row of the selected prompt mode is preferred, else one of the other mode
    is taken and the mismatch named. ``protocol`` (:func:`verdict`) is "same" only when the measured cell ran
    the protocol pack the published row names (reported.csv's ``pack``: the paper's own protocol) with the same
    prompt mode; otherwise "differs" or, where no pack reproduces the published protocol and its source does
    not state it, "unknown". ``differences`` names each difference.
    """
    measured = select(df, metric, task, mode, datasets, include_reported=False)
    reported = df[(df["source"] == "reported") & (df["metric"] == metric) & (df["task"] == task)]
    if "model_id" in reported:
        reported = reported[reported["model_id"].fillna("").astype(str) != ""]
    else:
        reported = reported.iloc[0:0]
    by_weights = {key: rows for key, rows in reported.groupby(["model_id", "dataset"], sort=False)} \
        if len(reported) else {}
    out = []
    for row in measured.itertuples(index=False):
        candidates = by_weights.get((row.model, row.dataset))
        if candidates is None:
            continue
        pack = getattr(row, "pack", None)
        pack = pack if isinstance(pack, str) else ""
        # the published row of the cell's own pack first (several papers may publish one model's number), then
        # one of its prompt mode
        fit = (candidates.get("pack", pd.Series("", index=candidates.index)).fillna("") == pack).astype(int) * 2 \
            + (candidates["prompt_mode"] == row.prompt_mode).astype(int)
        pub = candidates.loc[fit.sort_values(ascending=False, kind="stable").index[0]]
        default = getattr(row, "default_protocol", True)
        default = True if default is None or (isinstance(default, float) and math.isnan(default)) else bool(default)
        measured_mode = row.prompt_mode if isinstance(row.prompt_mode, str) else None
        verdict, differences = protocol_verdict(pub, measured_mode, default, pack)
        value, low, high, published = row.value, row.ci_low, row.ci_high, float(pub["value"])
        in_ci = bool(low <= published <= high) if not (math.isnan(low) or math.isnan(high)) else False
        out.append({"model": row.model, "dataset": row.dataset, "value": value, "ci_low": low, "ci_high": high,
                    "prompt_mode": measured_mode, "default_protocol": default, "published_model": pub["model"],
                    "published": published, "published_mode": pub["prompt_mode"], "delta": value - published,
                    "in_ci": in_ci, "protocol": verdict, "differences": differences, "paper": pub["paper"],
                    "table": pub["table"], "split": pub["split"], "protocol_note": pub["protocol_note"],
                    "pack": pub.get("pack", "")})
    frame = pd.DataFrame(out, columns=VS_COLUMNS)
    order = {d: i for i, d in enumerate(datasets or dataset_order(frame))}
    return frame.sort_values(["dataset", "model"], key=lambda c: c.map(order) if c.name == "dataset" else c,
                             kind="stable").reset_index(drop=True)


def protocol_verdict(pub, measured_mode: str | None, default: bool, pack: str) -> tuple[str, list[str]]:
    """("same" | "differs" | "unknown", the differences named) of one measured cell beside one published row:
    "same" only when the cell ran the protocol pack the row names (``pub["pack"]``) with the row's prompt mode."""
    differences = []
    if measured_mode is not None and pub["prompt_mode"] != measured_mode:
        differences.append(f"published {pub['prompt_mode']} prompts, measured {measured_mode}")
    paper = pub.get("pack", "") or ""
    if paper:
        if pack != paper:
            ran = f"protocol pack {pack}" if pack else \
                "pathboard's default protocol" if default else "a custom protocol (own prompts or task options)"
            differences.append(f"measured under {ran}; the paper's is protocol pack {paper} "
                               f"(pathboard run --protocol {paper})")
        return ("differs" if differences else "same"), differences
    if pack:
        differences.append(f"measured under protocol pack {pack}, which is not this source's")
    elif not default:
        differences.append("measured under a non-default protocol (custom prompts or task options)")
    if pub["protocol_match"] == "differs":
        differences.append("the published protocol is not pathboard's default, and no protocol pack reproduces it")
    else:
        differences.append("the published protocol is not fully stated, and no protocol pack reproduces it")
    return ("differs" if pub["protocol_match"] == "differs" or len(differences) > 1 else "unknown"), differences


def recall_datasets(df: pd.DataFrame, task: str, mode: str) -> list[str]:
    """Datasets with measured per-class recalls for one task and prompt mode."""
    rows = df[df["metric"].str.startswith("recall/")].assign(metric="recall")
    return dataset_order(select(rows, "recall", task, mode, include_reported=False))


def per_class_recall(df: pd.DataFrame, task: str, mode: str, dataset: str) -> pd.DataFrame:
    """Measured models x classes: the recall of each class on one dataset, as text with three decimals
    ("0.500", not 0.5 beside 0.25 beside 0), "–" where a model has none."""
    rows = df[df["metric"].str.startswith("recall/") & (df["dataset"] == dataset)]
    rows = select(rows.assign(metric="recall"), "recall", task, mode, include_reported=False)
    rows = rows.assign(cls=df.loc[rows.index, "metric"].str.removeprefix("recall/"))
    wide = rows.pivot_table(index="model", columns="cls", values="value", aggfunc="first")
    return wide.apply(lambda column: column.map(_fmt))


def between(comparisons: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of two cells that are both among ``measured``'s: those of the numbers shown, under
    the protocol and run chosen. A comparison of other cells (another protocol's prompts or options, an
    older or newer run) says nothing about the numbers on screen. Comparisons stored without cell ids
    (older databases) are kept."""
    if comparisons.empty or "cell_a" not in comparisons or "cell_id" not in measured:
        return comparisons
    shown = set(measured["cell_id"].dropna())
    keep = comparisons["cell_a"].isin(shown) & comparisons["cell_b"].isin(shown)
    return comparisons[keep | (comparisons["cell_a"].isna() & comparisons["cell_b"].isna())]


def comparison_rows(comparisons: pd.DataFrame, metric: str, task: str, mode: str,
                    datasets: list[str] | None = None) -> pd.DataFrame:
    """Winner, loser and the paired difference [95% CI] for one metric, task and prompt mode; the
    winner is whichever model the difference favours. Databases that store p-values add the raw
    two-sided bootstrap ``p`` and its Holm adjustment ``p (Holm)`` (across the view's family, see
    :func:`pathboard.core.science.compare.compare_cells`), and ``significant`` is then Holm p < 0.05; older
    ones say significant when the CI excludes zero. ``resampled`` says whether items or groups
    (patients, slides) were resampled, when known."""
    rows = comparisons[(comparisons["metric"] == metric) & (comparisons["task"] == task)
                       & (comparisons["prompt_mode"].fillna("").isin([mode, ""]))]
    if datasets is not None:
        rows = rows[rows["dataset"].isin(datasets)]
    with_p = "p_value" in rows.columns and rows["p_value"].notna().any()

    def p_text(p) -> str:  # 1,000 resamples resolve no p below 1/1001
        return "" if p is None or pd.isna(p) else f"{p:.3f}" if p >= 0.001 else "<0.001"

    with_groups = "n_groups" in rows.columns and rows["n_groups"].notna().any()
    out = []
    for r in rows.itertuples():
        flip = r.diff < 0
        better, worse = (r.model_b, r.model_a) if flip else (r.model_a, r.model_b)
        diff, low, high = (-r.diff, -r.ci_high, -r.ci_low) if flip else (r.diff, r.ci_low, r.ci_high)
        row = {"dataset": r.dataset, "better": better, "than": worse,
               "difference": f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"}
        if with_p:
            row["p"] = p_text(r.p_value)
            row["p (Holm)"] = p_text(getattr(r, "p_holm", None))
        row["significant"] = "yes" if r.significant else "no"
        row["n"] = r.n
        if with_groups:
            row["resampled"] = "items" if pd.isna(r.n_groups) else f"{int(r.n_groups)} groups"
        out.append(row)
    columns = ["dataset", "better", "than", "difference"] + (["p", "p (Holm)"] if with_p else []) \
        + ["significant", "n"] + (["resampled"] if with_groups else [])
    return pd.DataFrame(out, columns=columns)


# --- the analyses beyond a single number: prompt sensitivity, robustness, calibration


CALIBRATION_METRICS = ["ece", "brier", "nll", "auroc"]


def modes_present(rows: pd.DataFrame) -> list[str]:
    """The prompt modes (of MODES, in its order) that ``rows`` hold; every mode when they hold none."""
    present = [m for m in MODES if m in set(rows["prompt_mode"].dropna())]
    return present or list(MODES)


def _lookup(rows: pd.DataFrame) -> dict:
    """(variant, metric) -> the row's STATS, q1 and q3, so that a table's many look-ups cost a dict each."""
    fields = [c for c in ("value", "ci_low", "ci_high", "q1", "q3") if c in rows]
    out: dict = {}
    for v, m, *stats in zip(rows["variant"], rows["metric"], *(rows[f] for f in fields)):
        out.setdefault((v, m), dict(zip(fields, stats)))  # the first row wins, as a filter's .iloc[0] did
    return out


def _value(found: dict, variant: str, metric: str, field: str = "value"):
    return found.get((variant, metric), {}).get(field, float("nan"))


def _fmt(value, digits: int = 3) -> str:
    return MISSING if value is None or pd.isna(value) else f"{value:.{digits}f}"


def sensitivity_table(variants: pd.DataFrame, rankings: pd.DataFrame, metric: str = "balanced_accuracy"
                      ) -> pd.DataFrame:
    """Per dataset and model: ``metric`` over every prompt draw (median [q1, q3], min–max), the medians of
    each draw family, and how stable the model ranking is across the draws (Kendall τ, first-place share)."""
    out = []
    if len(rankings):
        rankings = rankings[(rankings["family"] == "") & (rankings["metric"] == metric)]
        ranked_of = {(d, m): r for d, m, r in zip(rankings["dataset"], rankings["model"],
                                                  rankings[["kendall_tau", "first_rate"]].itertuples(index=False))}
    else:
        ranked_of = {}
    for (dataset, model), of_pair in variants.groupby(["dataset", "model"], sort=True):
        rows = _lookup(of_pair)
        row = {"dataset": dataset, "model": model,
               "median [IQR]": f"{_fmt(_value(rows, '', metric))} [{_fmt(_value(rows, '', metric, 'q1'))}, "
                               f"{_fmt(_value(rows, '', metric, 'q3'))}]",
               "min–max": f"{_fmt(_value(rows, '', metric + '/min'))}–{_fmt(_value(rows, '', metric + '/max'))}",
               "draws": _fmt(_value(rows, "", "draws"), 0)}
        families = sorted({v for v in set(of_pair["variant"]) if v in ("templates", "synonyms") or
                           (v.startswith("subset=") and "/" not in v)}, key=_family_order)
        for family in families:
            row[f"{family} (median)"] = _fmt(_value(rows, family, metric))
        ranked = ranked_of.get((dataset, model))
        row["Kendall τ"] = _fmt(ranked.kendall_tau, 2) if ranked is not None else MISSING
        row["ranked first"] = f"{ranked.first_rate:.0%}" if ranked is not None else MISSING
        out.append(row)
    return pd.DataFrame(out)


def _family_order(name: str):
    return (0, 0) if name == "templates" else (1, 0) if name == "synonyms" else (2, int(name.split("=")[1]))


def robustness_table(variants: pd.DataFrame, dataset: str, mode: str = DEFAULT_MODE,
                     figure: str = "balanced_accuracy_drop") -> pd.DataFrame:
    """Models x perturbations of one dataset and prompt mode: ``figure`` (the drop in balanced accuracy
    from clean, the flip rate or the clean-vs-perturbed cosine) with its 95% CI, and the clean value."""
    rows = variants[(variants["dataset"] == dataset) & (variants["prompt_mode"].fillna("") == mode)]
    out = {}
    for model, of_model in rows.groupby("model", sort=True):
        found = _lookup(of_model)
        line = {"clean balanced accuracy": _fmt(_value(found, "", "balanced_accuracy"))}
        for variant in sorted(v for v in set(of_model["variant"]) if v.startswith("perturbation=")):
            if (variant, figure) in found:
                line[variant.split("=", 1)[1]] = format_cell(*(found[variant, figure][f] for f in STATS))
        out[model] = line
    return pd.DataFrame.from_dict(out, orient="index")


def calibration_table(measured: pd.DataFrame, task: str, mode: str = DEFAULT_MODE) -> pd.DataFrame:
    """Per dataset and model of a zero-shot task: ECE, Brier, NLL and AUROC with their 95% CIs."""
    rows = measured[(measured["task"] == task) & (measured["prompt_mode"] == mode)
                    & measured["metric"].isin(CALIBRATION_METRICS)]
    if rows.empty:
        return pd.DataFrame()
    text = rows.assign(cell=[format_cell(*stats) for stats in rows[STATS].itertuples(index=False)])
    table = text.pivot_table(index=["dataset", "model"], columns="metric", values="cell", aggfunc="first")
    return table[[m for m in CALIBRATION_METRICS if m in table.columns]]


def cost_table(costs: pd.DataFrame) -> pd.DataFrame:
    """Per model, from its newest measured embedding (a run that embedded something) on each device and
    precision: parameters, images/s and tiles/s (median over the datasets), peak memory, and the wall
    time of its datasets in that run."""
    if costs.empty:
        return pd.DataFrame()
    measured = costs[(costs["images"] > 0) | (costs["tiles"] > 0)]
    out = []
    for (model, device, precision), rows in measured.groupby(["model", "device", "precision"], sort=True):
        newest = rows[rows["run_id"] == rows["run_id"].iloc[-1]]
        params = costs.loc[costs["model"] == model, "params"].dropna()
        peak = newest["peak_memory_bytes"].dropna()
        out.append({"model": model, "device": device, "precision": precision,
                    "batch size": int(newest["batch_size"].iloc[-1]),
                    "parameters (M)": _fmt(params.iloc[-1] / 1e6, 1) if len(params) else MISSING,
                    "images/s": _fmt(newest["images_per_s"].median(), 1),
                    "tiles/s": _fmt(newest["tiles_per_s"].median(), 1),
                    "peak memory (GiB)": _fmt(peak.max() / 2**30, 2) if len(peak) else MISSING,
                    "memory measured as": newest["memory_kind"].iloc[-1],
                    "datasets": ", ".join(newest["dataset"]),
                    "wall (s)": _fmt(newest["wall_seconds"].sum(), 1),
                    "run": newest["run_id"].iloc[-1]})
    return pd.DataFrame(out)


def duration(seconds) -> str:
    """``42.0 s``, ``3 min 12 s``, ``1 h 04 min``; the missing mark for none."""
    if seconds is None or pd.isna(seconds):
        return MISSING
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run as people read it: its duration in human units, what it embedded counted in images and
    tiles (not batches), and every value as text (no raw None)."""
    def count(value) -> str:
        return MISSING if value is None or pd.isna(value) else f"{int(value):,}"

    return pd.DataFrame({
        "run": runs["run_id"], "started (UTC)": [MISSING if pd.isna(t) else t.strftime("%Y-%m-%d %H:%M:%S")
                                                  for t in runs["started_at"]],
        "status": runs["status"].fillna(MISSING), "duration": [duration(s) for s in runs["seconds"]],
        "cells stored": [count(v) for v in runs["cells"]], "skip reasons": [count(v) for v in runs["skipped"]],
        "unreadable files": [count(v) for v in runs["failed_files"]],
        "images embedded": [count(v) for v in runs.get("images", pd.Series([None] * len(runs)))],
        "tiles embedded": [count(v) for v in runs.get("tiles", pd.Series([None] * len(runs)))],
        "device": runs["device"].fillna(MISSING), "precision": runs["precision"].fillna(MISSING),
        "host": runs["host"].fillna(MISSING), "command": runs["command"].fillna("")})


def run_costs(costs: pd.DataFrame) -> pd.DataFrame:
    """One run's embedding cost per model and dataset, in human units; rates and memory only where
    something was embedded (a cached dataset claims no throughput)."""
    def rate(value) -> str:
        return MISSING if value is None or pd.isna(value) else f"{value:,.1f}"

    return pd.DataFrame({
        "model": costs["model"], "dataset": costs["dataset"], "images": [f"{int(v):,}" for v in costs["images"]],
        "tiles": [f"{int(v):,}" for v in costs["tiles"]], "images/s": [rate(v) for v in costs["images_per_s"]],
        "tiles/s": [rate(v) for v in costs["tiles_per_s"]],
        "peak memory": [MISSING if v is None or pd.isna(v) else f"{v / 2**30:.2f} GiB"
                        for v in costs["peak_memory_bytes"]],
        "wall": [duration(v) for v in costs["wall_seconds"]]})


def provenance_table(provenance: dict) -> pd.DataFrame:
    """A run's provenance as one text column (mixed types would not survive Arrow)."""
    return pd.DataFrame({"": [MISSING if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                              for v in provenance.values()]}, index=list(provenance))


# --- runs, highlighting and ties (the research-instrument views)


def tied_with_best(table: pd.DataFrame, comparisons: pd.DataFrame, metric: str, task: str, mode: str,
                   lower: bool = False) -> pd.DataFrame:
    """True where a measured model is not its column's best measured model, but the paired bootstrap
    comparison of the two on that dataset is not significant (Holm-adjusted, see
    :func:`pathboard.core.science.compare.compare_cells`): the two are tied. False elsewhere, and where no
    comparison was stored (it needs both models scored on the same items)."""
    values = table["value"]
    tied = pd.DataFrame(False, index=table.index, columns=values.columns)
    measured = values[values.index.get_level_values("source") == "measured"]
    rows = comparisons[(comparisons["metric"] == metric) & (comparisons["task"] == task)
                       & comparisons["prompt_mode"].fillna("").isin([mode, ""])] if len(comparisons) else comparisons
    shown = set(values.columns)
    significant = {}  # (dataset, model, model) -> significant, both ways round
    if len(rows):
        rows = rows[rows["dataset"].isin(shown)]
    for dataset, a, b, sig in zip(rows.get("dataset", []), rows.get("model_a", []), rows.get("model_b", []),
                                  rows.get("significant", [])):
        significant.setdefault((dataset, a, b), bool(sig))
        significant.setdefault((dataset, b, a), bool(sig))
    if not significant:
        return tied
    for column in values.columns:
        col = measured[column].dropna()
        if column == "Avg" or col.empty:
            continue
        best = col.idxmin() if lower else col.idxmax()
        top = col[best]
        for label, value in col.items():  # items(), not col[label]: a MultiIndex look-up per cell is slow
            if label != best and value != top and significant.get((column, best[0], label[0])) is False:
                tied.at[label, column] = True
    return tied
