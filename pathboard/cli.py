"""The ``pathboard`` command."""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from pathboard.core.errors import PathboardError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="pathboard")
def cli():
    """Compare pathology vision-language models on pathology datasets."""


def _database(must_exist: bool):
    """A ``--db`` option checked by its content as it is parsed, before any work: a DuckDB file (or, for
    ``run``, nothing yet). A JSON, CSV or Parquet file, an empty file or a folder is one line."""
    def check(ctx, param, value):
        from pathboard.core.store.database import check_database

        return str(check_database(value, must_exist=must_exist))

    return click.option("--db", default="pathboard.duckdb", show_default=True, callback=check,
                        help="DuckDB results file" + ("" if must_exist else " (created if absent)"))


def _cache_dir(ctx, param, value):
    """--cache-dir is the one cache location of the whole process: embeddings, near-duplicate groups, weight
    hashes and dataset indexes (each reads ``paths.cache_root()``), and of the processes it starts."""
    if value:
        value = str(Path(value).expanduser().absolute())
        os.environ["PATHBOARD_CACHE"] = value
    return value


CACHE_DIR = click.option("--cache-dir", envvar="PATHBOARD_CACHE", callback=_cache_dir,
                         help="cache of embeddings, near-duplicate groups and weight hashes [env PATHBOARD_CACHE, "
                              "default ~/.cache/pathboard]")


#: older flags, kept as aliases of task options (``--mpp X`` is ``--option mpp=X``)
OPTION_ALIASES = {"mpp": "mpp", "magnification": "magnification", "tile_size": "tile_size",
                  "fewshot_methods": "fewshot.methods"}


@cli.command()
@click.option("--models", default="all", show_default=True, help="all, or comma-separated model ids")
@click.option("--datasets", default="all", show_default=True, help="all, comma-separated ids, or a group/organ tag")
@click.option("--tasks", default="", help="comma-separated task ids [default: every task that applies to each dataset]")
@click.option("--option", "-o", "options", multiple=True, metavar="[TASK.]NAME=VALUE",
              help="a task option (repeatable); NAME alone sets it for every task that has it. "
                   "`pathboard list tasks` shows them")
@click.option("--prompt-modes", default=None, help="single, ensemble or both [default: single,ensemble, or the "
              "protocol pack's]")
@click.option("--protocol", default=None, metavar="PACK",
              help="apply one paper's evaluation protocol: its datasets, tasks, prompts and options "
                   "(`pathboard list protocols`)")
@click.option("--data-root", envvar="PATHBOARD_DATA",
              help="folder holding the official dataset folders [env PATHBOARD_DATA]")
@_database(must_exist=False)
@CACHE_DIR
@click.option("--device", default=None, help="cpu, cuda[:N] or mps [default: cuda if available]")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=max(1, min(8, (os.cpu_count() or 2) // 2)),
              help="image decoding processes [default: half the cores, 1-8: decoding must not "
                                      "take the cores the forward pass runs on]")
@click.option("--weights", multiple=True, metavar="ID=PATH", help="local weights for a model (repeatable)")
@click.option("--prompts", multiple=True, metavar="[DATASET=]FILE", help="prompt-set JSON overriding the built-in one")
@click.option("--strict", is_flag=True, help="fail when a dataset of a group is absent, instead of skipping it")
@click.option("--verify", is_flag=True, help="hash every file's content into the manifest (slower), not only its "
              "size and modification time, so any changed file is re-embedded")
@click.option("--trust-remote-code", "trust_remote_code", multiple=True, metavar="ID,ID",
              help="let these models (TITAN, PRISM) run the model code of their weights repository, loaded from the "
                   "resolved local folder (also: trust_remote_code = [...] in the config file)")
@click.option("--features", multiple=True, metavar="[DATASET=]DIR",
              help="read slide models' tile features from a TRIDENT features folder "
                   "(<job>/20x_512px_0px_overlap/features_conch_v15) instead of embedding tiles (repeatable)")
@click.option("--assume-mpp", multiple=True, metavar="DATASET=MPP",
              help="tile DATASET's slides that lack resolution metadata as if scanned at MPP µm/px (recorded "
                   "with the cells; repeatable)")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads: torch's, and near-duplicate grouping's [default: every core this "
                   "process may use; on Ray: each task's CPUs]")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="where embedding and scoring run: this process, or tasks on a Ray cluster (pathboard[ray])")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT [default: start a local one]")
@click.option("--gpus-per-task", type=click.FloatRange(0, min_open=False), default=None,
              help="GPUs each embedding task asks Ray for; fractions share a GPU [default: 1 on CUDA, else 0]")
@click.option("--max-retries", type=click.IntRange(0), default=3, show_default=True,
              help="times Ray reruns a task whose worker died")
@click.option("--rescore", is_flag=True, help="score every cell again, even those whose stored numbers are up to "
              "date (same embeddings, protocol and task version)")
@click.option("--mpp", default=None, help="alias of --option mpp=X: slide tasks tile at this resolution (µm/px) [0.5]")
@click.option("--magnification", default=None, help="alias of --option magnification=X (taken as 10/mpp)")
@click.option("--tile-size", default=None, help="alias of --option tile_size=X: tile side in pixels [224]")
@click.option("--fewshot-methods", default=None, help="alias of --option fewshot.methods=X: prototype,linear-probe")
def run(options, **given):
    """Score models x datasets x tasks x prompt modes and store the results."""
    from pathboard.core.engine.plan import RunConfig, plan
    from pathboard.core.interfaces.options import parse_assignments

    values = {key: given.pop(flag) for flag, key in OPTION_ALIASES.items() if given.get(flag) is not None}
    for flag in OPTION_ALIASES:
        given.pop(flag, None)
    values.update(parse_assignments(options))  # --option wins over an alias flag
    cfg = RunConfig(**given, options=values)
    p = plan(cfg)
    if p.pack:
        click.echo(f"protocol pack {p.pack.id}: {p.pack.title} ({p.pack.paper}); every cell records it"
                   + (f"; {p.pack.doc} says what the paper left open" if p.pack.doc else ""), err=True)
    for reason in p.skip_lines():
        click.echo(f"skipped {reason}", err=True)
    for note in p.prompt_notes():
        click.echo(note, err=True)
    if not p.cells and not p.blocked and not p.broken:
        raise PathboardError("nothing to run: every requested cell was skipped (reasons above)")
    click.echo(f"{len(p.cells)} cell(s): {len({c.model.id for c in p.cells})} model(s) x "
               f"{len({c.dataset.id for c in p.cells})} dataset(s); will score:", err=True)
    for line in p.describe():
        click.echo(line, err=True)
    from pathboard.core import timing
    from pathboard.core.engine.run import execute

    summary = execute(p, cfg, command=shlex.join(["pathboard", *sys.argv[1:]]))
    flagged = False
    for cell in (c for c in summary.cells if not c.get("variant")):  # variants (few-shot k, ...): in the db
        m = cell["metrics"]
        shown = ["balanced_accuracy", "weighted_f1"]  # the names `export --metric` takes
        if not set(shown) <= set(m):  # a task with other metrics (retrieval): its first two
            shown = list(m)[:2]
        if p.pack and p.pack.datasets[cell["dataset"]].metric in m:  # the paper's metric first
            shown = list(dict.fromkeys([p.pack.datasets[cell["dataset"]].metric, *shown]))[:2]
        line = (f"{cell['model']:<18} {cell['dataset']:<16} {cell['task']:<10} {cell['prompt_mode'] or '-':<9} "
                + "  ".join(f"{name} {_with_interval(m[name])}" for name in shown) + _headline(cell))
        flagged |= "†" in line
        click.echo(line)
    if flagged:
        from pathboard.core.science.metrics import CAVEAT

        click.echo(CAVEAT, err=True)
    for cost in summary.costs:
        if cost["images_per_s"] or cost["tiles_per_s"]:
            rate = " ".join(f"{cost[k]:.1f} {unit}/s" for k, unit in (("images_per_s", "img"), ("tiles_per_s", "tile"))
                            if cost[k])
            peak = f", peak memory {cost['peak_memory_bytes'] / 2**30:.2f} GiB" if cost["peak_memory_bytes"] else ""
            click.echo(f"cost: {cost['model']} x {cost['dataset']}: {rate} on {cost['device']} {cost['precision']}"
                       f"{peak}", err=True)
    if summary.up_to_date and not (summary.stored or summary.pending or summary.errors):
        click.echo(f"nothing new: {summary.up_to_date} cell(s) up to date in {cfg.db} (run {summary.run_id}; "
                   "--rescore scores them again)", err=True)
        for line in timing.lines(summary.seconds):
            click.echo(line, err=True)
        return
    if summary.up_to_date:
        click.echo(f"{summary.up_to_date} cell(s) up to date, not scored again (--rescore scores them again)",
                   err=True)
    files = sum(len(v) for v in summary.failed_files.values())
    waiting = f" ({summary.pending} more wait in its journal)" if summary.pending else ""
    waited = f" after waiting {summary.waited_s:.0f} s for a reader" if summary.waited_s else ""
    images, tiles = (sum(c[k] for c in summary.costs) for k in ("images", "tiles"))
    click.echo(f"run {summary.run_id}: {summary.stored} cell(s) stored in {cfg.db}{waited}{waiting}; "
               f"{images} images and {tiles} tiles embedded, {files} unreadable file(s) skipped", err=True)
    for line in timing.lines(summary.seconds):  # where the time went, stage by stage
        click.echo(line, err=True)
    if summary.errors:
        failed = [f"{summary.failed_pairs} model x dataset pair(s)"] if summary.failed_pairs else []
        failed += [f"task {task} in {len(where)} cell(s)" for task, where in summary.failed_cells.items()]
        raise PathboardError(f"failed: {'; '.join(failed)} (above); the other cells are stored")


def _headline(cell: dict) -> str:
    """``  (prototype at k = 16 per class, median of 5 draws; CI over items)`` for a task that names what
    its headline is (few-shot); empty otherwise."""
    from pathboard.core.science.metrics import headline_text

    task = json.loads(cell.get("protocol") or "{}").get("task", {})
    text = headline_text(task.get("headline"), task.get("bootstrap"))
    return f"  ({text})" if text else ""


def _with_interval(m) -> str:
    """``0.812 [0.790, 0.833]`` (95% CI; ``[0.000, 1.000]†(over 2 unit(s) only)`` when it rests on too few
    patients, slides or items, or left out many resamples as undefined), ``0.812 (IQR 0.79–0.83)`` for a spread
    over draws, or the bare value."""
    from pathboard.core.science.metrics import interval_caveat

    if m.ci_low == m.ci_low and m.ci_high == m.ci_high:  # not NaN
        caveat = interval_caveat(getattr(m, "units", 0), getattr(m, "undefined", 0.0))
        return f"{m.value:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]" + (f"†({caveat})" if caveat else "")
    if m.q1 == m.q1 and m.q3 == m.q3:
        return f"{m.value:.3f} (IQR {m.q1:.3f}–{m.q3:.3f})"
    return f"{m.value:.3f}"


@cli.command(name="list")
@click.argument("kind", type=click.Choice(["models", "datasets", "tasks", "protocols"]))
@click.option("--data-root", envvar="PATHBOARD_DATA", help="show whether each dataset is present here")
@click.option("--details", is_flag=True, help="models: show each model card; protocols: each pack's paper and gaps")
def list_(kind, data_root, details):
    """List registered models, datasets, tasks or protocol packs, with the plugin that provides each."""
    from pathboard.core.engine import plugins

    items = plugins.registry(kind.rstrip("s"))
    for id, obj in items.items():
        if kind == "protocols":
            click.echo(f"{id:<20} {obj.describe()} [{obj.plugin}]")
            if details:
                for label, value in [("paper", obj.paper), ("source", obj.source), ("intervals", obj.intervals),
                                     ("docs", obj.doc), *(("assumes", gap) for gap in obj.gaps)]:
                    if value:
                        click.echo(f"    {label:<11} {value}")
            continue
        if kind == "models":
            extra = obj.card.title
        elif kind == "datasets":
            where = ""
            if data_root:
                where = "present" if (Path(data_root) / obj.folder).is_dir() else "missing"
            tasks = ",".join(sorted(plugins.applicable_tasks(obj))) or "-"
            extra = f"groups={','.join(sorted(obj.groups))} tasks={tasks} {where}"
        else:
            extra = f"{obj.title} (needs {', '.join(sorted(obj.needs))}{'' if obj.default else '; opt-in'})"
        click.echo(f"{id:<20} {extra:<60} [{obj.plugin}]")
        if kind == "tasks":
            for option in obj.options:
                click.echo(f"    --option {id}.{option.describe()}")
        if details and kind == "models":
            from pathboard.core.interfaces.slide_model import describe_tiling, is_slide_model

            card = obj.card
            reads = f"{obj.patch_encoder} tile features at {describe_tiling(obj.tiling)}" if is_slide_model(obj) else ""
            for label, value in [("reads", reads), ("paper", card.paper), ("licence", card.license),
                                 ("gated", "yes" if card.gated else "no"),
                                 ("parameters", card.params), ("embedding", card.embed_dim),
                                 ("input", f"{card.input_size} px" if card.input_size else ""),
                                 ("source", card.url), ("notes", card.notes)]:
                if value:
                    click.echo(f"    {label:<11} {value}")


@cli.command()
@click.option("--models", default="all", show_default=True, help="all, or comma-separated model ids")
@click.option("--datasets", default="all", show_default=True, help="all, comma-separated ids, or a group/organ tag")
@click.option("--data-root", envvar="PATHBOARD_DATA", help="folder holding the official dataset folders")
@click.option("--weights", multiple=True, metavar="ID=PATH", help="local weights for a model (repeatable)")
def doctor(models, datasets, data_root, weights):
    """Check that models (plugin, imports, weights, offline) and datasets (folder, files) are usable.

    Models and datasets named one by one get every detail, and any of them not ready fails the command;
    members of "all" or of a group that are not ready get one line each, and only the summary counts them."""
    from pathboard.core.engine.doctor import run_doctor
    from pathboard.core.engine.selection import select
    from pathboard.core.interfaces.dataset import data_root as resolve_root

    root = resolve_root(data_root) if data_root else None
    chosen_models, chosen_datasets = select("model", models), select("dataset", datasets)
    if root is None and not chosen_datasets.explicit:  # one line, not one per dataset
        checked = [d for d in chosen_datasets.items if d.id in chosen_datasets.parameterised]
        unchecked = len(chosen_datasets.items) - len(checked)
        click.echo(f"datasets: {unchecked} not checked: no data root (--data-root or PATHBOARD_DATA)")
        chosen_datasets = type(chosen_datasets)(checked, False, chosen_datasets.parameterised)
    checks = run_doctor(chosen_models.items, chosen_datasets.items, root, weights)
    explicit = {"model": chosen_models.explicit, "dataset": chosen_datasets.explicit}
    for check in checks:
        if check.ok or explicit[check.kind]:
            click.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.kind} {check.id}")
            for line in check.lines:
                click.echo(f"       {line}")
        else:  # a member of "all" or a group: what is wrong, in short; naming it alone shows how to get it
            click.echo(f"-    {check.kind} {check.id}: {check.reason} (`pathboard doctor --{check.kind}s {check.id}` "
                       "says how to get it)")
    for kind in ("model", "dataset"):
        mine = [c for c in checks if c.kind == kind]
        if mine:
            ready = [c.id for c in mine if c.ok]
            click.echo(f"{kind}s ready: {len(ready)} of {len(mine)}" + (f" ({', '.join(ready)})" if ready else ""))
    asked = [c.id for c in checks if not c.ok and explicit[c.kind]]
    if asked:
        raise PathboardError(f"{len(asked)} of {len(checks)} not ready: {', '.join(asked)}")
    if all(c.ok for c in checks):
        click.echo(f"all {len(checks)} ready", err=True)


@cli.group()
def data():
    """Get datasets in their official layout."""


@data.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--data-root", envvar="PATHBOARD_DATA", required=True, help="where the dataset folders go")
def download(ids, data_root):
    """Download, verify (pinned checksums) and unpack datasets; an interrupted download resumes."""
    from pathlib import Path

    from pathboard.core.engine import plugins
    from pathboard.core.media.download import download_dataset

    root = Path(data_root).expanduser()
    datasets = [plugins.get("dataset", id) for id in ids]
    for dataset in datasets:
        download_dataset(dataset, root)
        manifest = dataset.manifest(root)
        click.echo(f"{dataset.id}: {len(manifest)} items in {manifest.root}")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _cache(cache_dir):
    from pathlib import Path

    from pathboard.core.embedding.cache import EmbeddingCache
    from pathboard.core.paths import cache_root

    return EmbeddingCache(Path(cache_dir) if cache_dir else cache_root())


@cli.group()
def cache():
    """Show, check and clean the embedding cache."""


@cache.command(name="ls")
@CACHE_DIR
def cache_ls(cache_dir):
    """Size of the cache per model, dataset and kind of embedding."""
    store = _cache(cache_dir)
    rows = store.summary()
    if len(rows) <= 1:
        click.echo(f"the cache at {store.root} is empty")
        return
    click.echo(f"{'model':24} {'dataset':28} {'kind':8} {'entries':>8} {'size':>10}")
    for r in rows:
        if r["total"]:
            click.echo(f"{'total':24} {'':28} {'':8} {r['entries']:>8} {_size(r['bytes']):>10}  ({store.root})")
        else:
            click.echo(f"{r['model'] or '?':24} {r['dataset'] or '-':28} {r['kind']:8} {r['entries']:>8} "
                       f"{_size(r['bytes']):>10}")


@cache.command(name="export-features")
@click.option("--model", "model_id", required=True, help="a patch encoder, or a slide model (its patch encoder at its "
              "tiling: titan exports conch-v1.5 features at 20x, 512 px)")
@click.option("--datasets", required=True, help="comma-separated slide datasets")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="a TRIDENT job folder: writes <out>/<mag>x_<size>px_0px_overlap/features_<encoder>/<slide>.h5")
@click.option("--data-root", envvar="PATHBOARD_DATA", help="folder holding the datasets [env PATHBOARD_DATA]")
@click.option("--mpp", type=float, default=None, help="a patch model's tiling: µm per pixel (default 0.5)")
@click.option("--magnification", type=float, default=None, help="a patch model's tiling: magnification (wins)")
@click.option("--tile-size", type=int, default=None, help="a patch model's tiling: tile side in pixels (default 224)")
@click.option("--weights", multiple=True, metavar="ID=PATH", help="use these weights (repeatable)")
@click.option("--trust-remote-code", "trust_remote_code", multiple=True, metavar="ID,ID",
              help="let these models run the model code of their weights repository")
@click.option("--device", default=None, help="cpu, cuda[:N] or mps (default: cuda when available)")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True)
@CACHE_DIR
def cache_export_features(model_id, datasets, out, data_root, mpp, magnification, tile_size, weights,
                          trust_remote_code, device, batch_size, workers, cache_dir):
    """Write a model's tile features of every slide in TRIDENT's .h5 layout (features, coords with
    patch_size_level0), embedding what is not cached yet; `pathboard run --features` and TRIDENT-reading tools
    read them as they are."""
    from pathboard.core.engine.features import export_features
    from pathboard.core.engine.selection import split_list
    from pathboard.core.interfaces.model import Runtime
    from pathboard.core.media.tiling import Tiling

    tiling = None
    if mpp or magnification or tile_size:
        tiling = Tiling(size=tile_size or 224, mpp=mpp or 0.5, magnification=magnification)
    folders = export_features(model_id, split_list(datasets), out, data_root, tiling, Runtime.create(device),
                              _cache(cache_dir), batch_size, workers, weights, trust_remote_code)
    for folder in folders:
        click.echo(f"features in {folder} ({len(list(folder.glob('*.h5')))} slide(s))")


@cache.command(name="verify")
@CACHE_DIR
@click.option("--quick", is_flag=True, help="check sizes and headers only, not every file's sha256")
def cache_verify(cache_dir, quick):
    """Check every entry against its stored checksum; corrupt entries are removed (they are recomputed
    when next needed)."""
    checked, removed = _cache(cache_dir).verify(full=not quick)
    for key, reason in removed:
        click.echo(f"removed {key[:12]}: {reason}")
    click.echo(f"{checked} entr{'y' if checked == 1 else 'ies'} checked, {len(removed)} corrupt removed")


@cache.command(name="prune")
@CACHE_DIR
@click.option("--older-than", type=click.FloatRange(0), default=None, metavar="DAYS",
              help="also remove entries not read for more than DAYS days")
@click.option("--dry-run", is_flag=True, help="only list what would be removed")
def cache_prune(cache_dir, older_than, dry_run):
    """Remove entries written by older pathboard versions, stale temporary entries of killed runs and,
    with --older-than, entries not used for a while."""
    removed = _cache(cache_dir).prune(older_than_days=older_than, dry_run=dry_run)
    for key, why, size in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {key[:40]} ({why}, {_size(size)})")
    total = sum(size for _, _, size in removed)
    click.echo(f"{len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, {_size(total)}"
               f"{' would be freed' if dry_run else ' freed'}")


@cli.command()
@_database(must_exist=True)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="newest runs to list")
def runs(db, limit):
    """List runs: status, duration, cells stored and skipped. Merges journalled cells and marks runs whose
    process is gone as interrupted first."""
    from pathboard.core.store.database import Store

    store = Store(db)
    if not store.settle():  # the journal merged, runs whose process is gone marked interrupted, first
        raise PathboardError(f"{db} is held by another process; try again when it is done")
    rows = store.run_rows(limit)
    if rows.empty:
        click.echo(f"no runs in {db}")
        return
    click.echo(f"{'run':26} {'started (UTC)':19} {'status':21} {'duration':>9} {'cells':>6} {'skipped':>7}  command")
    for r in rows.itertuples():
        took = "" if r.seconds is None or r.seconds != r.seconds else f"{r.seconds:.1f} s"
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at is not None else ""
        click.echo(f"{r.run_id:26} {started:19} {r.status or '':21} {took:>9} {r.cells:>6} {r.skipped:>7}  "
                   f"{r.command or ''}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "markdown", "latex"]), default="markdown",
              show_default=True, help="csv (full precision), markdown (GitHub table) or latex (booktabs)")
@_database(must_exist=True)
@click.option("--task", default=None, help="task id [default: zeroshot]")
@click.option("--metric", default=None, help="metric, as `pathboard run` prints it (short spellings such as bal_acc "
              "are accepted) [default: weighted_f1]")
@click.option("--mode", type=click.Choice(["ensemble", "single"]), default="ensemble", show_default=True,
              help="prompt mode")
@click.option("--datasets", default="", help="comma-separated dataset ids, the table's columns "
                                             "[default: every dataset with numbers for the selection]")
@click.option("--protocol", default="default", show_default=True,
              help="default, a protocol pack's id (`pathboard run --protocol`), or a protocol hash (or a unique "
                   "prefix of one) of the database's cells")
@click.option("--reported/--no-reported", default=True, show_default=True,
              help="include the published (reported) rows")
@click.option("--published-only", is_flag=True,
              help="also the datasets that only have published numbers (by default the columns are the datasets "
                   "with a measured number, so that Avg covers every measured row)")
@click.option("--ci/--no-ci", default=True, show_default=True, help="include the 95% confidence intervals")
@click.option("--digits", type=click.IntRange(0, 12), default=3, show_default=True,
              help="decimals of markdown and latex (csv keeps full precision)")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write to FILE [default: stdout]")
@click.option("--run", default=None, metavar="RUN_ID", help="only this run's numbers [default: every cell's newest]")
def export(fmt, db, task, metric, mode, datasets, protocol, reported, published_only, ci, digits, output, run):
    """Write the leaderboard's Overview table (the same selection options) as CSV, Markdown or LaTeX."""
    from pathlib import Path

    from pathboard.core.science.metrics import metric_name
    from pathboard.leaderboard import export as exports
    from pathboard.leaderboard import frames

    metric = metric_name(metric) if metric else frames.DEFAULT_METRIC  # bal_acc or balanced_accuracy
    chosen = [d.strip() for d in datasets.split(",") if d.strip()] or None
    table = exports.overview(db, task or frames.DEFAULT_TASK, metric, mode, chosen, reported, protocol, run,
                             published_only)
    text = exports.export(table, fmt, ci, frames.lower_is_better(metric), digits)
    if fmt == "csv":  # the data stays plain: what the numbers are goes to the terminal
        for note in exports.notes(table):
            click.echo(f"note: {note}", err=True)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PathboardError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"{len(table)} row(s) x {len(table['value'].columns)} column(s) written to {output}", err=True)


@cli.command()
@_database(must_exist=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--headless/--browser", default=True, help="do not open a browser window")
def leaderboard(db, port, headless):
    """Serve the Streamlit leaderboard for a results file."""
    from pathlib import Path

    app = Path(__file__).parent / "leaderboard" / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--server.headless", str(headless).lower(), "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "viewer",  # readers get the viewer's menu: no Deploy button, no developer options
           "--", "--db", str(Path(db).resolve())]
    os.execv(sys.executable, cmd)  # streamlit takes over this process: Ctrl-C and kill reach it directly


def main():
    debug = os.environ.get("PATHBOARD_DEBUG")
    try:
        cli.main(standalone_mode=False)
    except PathboardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; finished cells are stored", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, the traceback on request
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (set PATHBOARD_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
