"""The plan: every cell of a run, and every embedding each cell reads, named before anything runs.

A cell is (model, dataset, task with its option values, prompt mode). Planning reads dataset
manifests and resolves weights, but imports no model library and loads nothing.

Skip rules: a model, dataset or task named one by one must work (its failure is an error); members
of "all", of a group, and tasks chosen by default (``--tasks`` not given: every task that applies to
each dataset) are skipped with a one-line reason instead. A cell whose task reads another dataset
(few-shot's declared training set) that is absent, or whose data the task cannot score
(:meth:`Task.check`), is *blocked*: an error when the task was asked for, a skip otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pathboard.core.engine import plugins
from pathboard.core.engine.selection import select, split_list
from pathboard.core.engine.slides import allowed, capable, feature_folders, patch_encoders, slide_inputs, trust_line
from pathboard.core.errors import PathboardError, unknown_id
from pathboard.core.interfaces.contracts import ContractError, expect
from pathboard.core.interfaces.dataset import Manifest, data_root
from pathboard.core.interfaces.options import parse_assignments, values_for
from pathboard.core.interfaces.prompts import MODES, PromptSet
from pathboard.core.interfaces.protocols import ProtocolPack, listed
from pathboard.core.interfaces.task import Inputs
from pathboard.core.interfaces.weights import Weights, overrides, trusted
from pathboard.core.paths import limit_cpus
from pathboard.core.timing import stage, take


@dataclass
class RunConfig:
    models: str = "all"
    datasets: str = "all"
    #: comma-separated task ids; empty: every default task that applies to each dataset
    tasks: str = ""
    #: comma-separated prompt modes; None: single,ensemble (or the protocol pack's)
    prompt_modes: str | None = None
    data_root: str | None = None
    db: str = "pathboard.duckdb"
    cache_dir: str | None = None
    device: str | None = None
    precision: str = "fp32"
    batch_size: int = 64
    workers: int = 2
    weights: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    strict: bool = False  # a dataset of a group or "all" that is absent is an error, not a skip
    #: task option values: {"NAME" or "TASK.NAME": value} or ("NAME=VALUE", ...); see pathboard.core.interfaces.options
    options: dict | tuple = ()
    #: ("DATASET=MPP", ...): slides of DATASET without resolution metadata are tiled as if at MPP µm/px
    assume_mpp: tuple[str, ...] = ()
    #: hash every file's content into its dataset's manifest (size and mtime always are)
    verify: bool = False
    #: torch CPU threads; None: every core this process may use; on Ray, the CPUs of each task
    threads: int | None = None
    #: where embedding and scoring run: "local" (this process) or "ray" (a Ray cluster; pathboard[ray])
    executor: str = "local"
    #: the Ray cluster to join ("auto", "HOST:PORT", "ray://HOST:PORT"); None: start a local one
    ray_address: str | None = None
    #: GPUs each embedding task asks Ray for (fractions share a GPU); None: 1 when embedding on CUDA, else 0
    gpus_per_task: float | None = None
    #: times Ray reruns a task whose worker died (a killed process, a lost node)
    max_retries: int = 3
    #: score every cell again, even those whose stored numbers are up to date
    rescore: bool = False
    #: a protocol pack's id (``pathboard list protocols``): its datasets, tasks, prompts and options
    protocol: str | None = None
    #: model ids allowed to run code from their weights repository (slide models such as TITAN and PRISM)
    trust_remote_code: tuple[str, ...] = ()
    #: ("[DATASET=]DIR", ...): TRIDENT-layout patch features the slide models read instead of embedding tiles
    features: tuple[str, ...] = ()


@dataclass
class Cell:
    model: object
    dataset: object
    task: object  # configured: ``task.values`` are the option values it runs with
    prompt_mode: str | None
    inputs: Inputs = field(default_factory=Inputs)
    #: everything its numbers follow from, hashed (:func:`pathboard.core.engine.uptodate.cell_key`); set by the run
    key: str = ""


@dataclass
class Plan:
    cells: list[Cell]
    skipped: list[str]
    weights: dict[str, Weights]
    manifests: dict
    prompts: dict[str, PromptSet]
    root: Path | None
    #: every dataset a cell reads, by id (the run's and, e.g., declared training sets)
    datasets: dict = field(default_factory=dict)
    #: (model id, dataset id, reason) of cells of explicitly asked tasks that cannot run
    blocked: list[tuple[str, str, str]] = field(default_factory=list)
    #: (task id, dataset id, why) of tasks that do not apply to a dataset by what it is (also in ``skipped``)
    not_applicable: list[tuple[str, str, str]] = field(default_factory=list)
    #: datasets whose prompt set was replaced with --prompts (their cells are not of the default protocol)
    custom_prompts: frozenset = frozenset()
    #: dataset id -> µm per pixel assumed for its slides without resolution metadata (--assume-mpp)
    assume_mpp: dict = field(default_factory=dict)
    #: (task id, cell, line) of the cells of task plugins whose inputs() or check() broke the plugin API's contract
    broken: list[tuple[str, str, str]] = field(default_factory=list)
    #: "model" / "dataset" -> ids of members of "all" or a group skipped as not here (weights, folder); "remote" ->
    #: members of "all" that run their repository's code and were not allowed to (--trust-remote-code)
    absent: dict = field(default_factory=dict)
    #: the protocol pack the run applies (``--protocol``), or None
    pack: ProtocolPack | None = None
    #: slide model id -> the spec of the patch encoder whose tile features it reads
    patch_encoders: dict = field(default_factory=dict)
    #: (dataset id or "*" for every dataset, encoder) -> the TRIDENT features folder the slide models over that
    #: patch encoder read that dataset's tiles from (:func:`pathboard.core.engine.slides.folder_for`)
    features: dict = field(default_factory=dict)

    def skip_lines(self) -> list[str]:
        """``skipped`` for people: tasks that do not apply by what a dataset is are said once per task and
        reason, naming the datasets; every other skip on its own line."""
        grouped: dict[tuple[str, str], list[str]] = {}
        lines = {f"{t} on {d}: {d} {why}" for t, d, why in self.not_applicable}
        for task, dataset, why in self.not_applicable:
            grouped.setdefault((task, why.split(": ", 1)[-1]), []).append(dataset)
        gone = tuple(f"{id}: " for ids in self.absent.values() for id in ids)
        out = [s for s in self.skipped if s not in lines and not s.startswith(gone)]
        where = f" under {self.root}" if self.root else ""
        what = {"model": "weights not found", "dataset": f"folder not found{where}"}
        out += [f"{len(ids)} {kind}(s) not here ({what[kind]}): {', '.join(ids)}; `pathboard doctor` says how to get "
                "each" for kind, ids in self.absent.items() if ids and kind in what]
        trust = self.absent.get("remote")
        if trust:
            out.append(f"{len(trust)} model(s) not allowed to run the model code of their weights repository: "
                       f"{', '.join(trust)}; allow them with --trust-remote-code {','.join(trust)} (or "
                       "trust_remote_code in the config file)")
        return out + [f"{task} on {', '.join(sets)}: {why}" for (task, why), sets in grouped.items()]

    def prompt_notes(self) -> list[str]:
        """One line per dataset whose zero-shot prompts are only its class (folder) names: say so, and how to
        give real ones."""
        used = {c.dataset.id for c in self.cells if c.prompt_mode}
        return [f"note: {id}: the prompts are its class names ({', '.join(list(p.classes)[:4])}"
                f"{', ...' if len(p.classes) > 4 else ''}); for real prompts put a prompts.json beside the class "
                f"folders or pass --prompts {id}=FILE (format: pathboard/prompts/crc100k.json)"
                for id, p in self.prompts.items() if id in used and id not in self.custom_prompts
                and str(p.source).startswith("class names of ")]

    def describe(self) -> list[str]:
        """What the run will score, one line per dataset: its tasks and prompt modes, and the models."""
        lines = []
        by_dataset: dict[str, dict[str, list]] = {}
        models: dict[str, set] = {}
        for c in self.cells:
            modes = by_dataset.setdefault(c.dataset.id, {}).setdefault(c.task.id, [])
            if c.prompt_mode not in modes:
                modes.append(c.prompt_mode)
            models.setdefault(c.dataset.id, set()).add(c.model.id)
        for dataset_id, tasks in by_dataset.items():
            shown = ", ".join(t + (f" ({'/'.join(m for m in modes if m)})" if any(modes) else "")
                              for t, modes in tasks.items())
            lines.append(f"  {dataset_id}: {shown} x {len(models[dataset_id])} model(s)")
        return lines


def _prompt_overrides(entries) -> dict[str, PromptSet]:
    """``--prompts FILE`` (every dataset) or ``--prompts DATASET=FILE``; key "*" means every dataset."""
    found = {}
    for entry in entries:
        key, sep, path = entry.rpartition("=")
        found[key if sep else "*"] = PromptSet.load(path)
    return found


def _assumed_mpp(entries, datasets) -> dict[str, float]:
    """``--assume-mpp DATASET=MPP`` entries, checked: a dataset of the run, a resolution in [0.05, 20]."""
    out = {}
    for entry in entries:
        key, sep, value = str(entry).rpartition("=")
        key = key.strip()
        try:
            mpp = float(value)
        except ValueError:
            mpp = float("nan")
        if not sep or not key or not 0.05 <= mpp <= 20:
            raise PathboardError(f"--assume-mpp {entry!r}: write DATASET=MPP with MPP in µm per pixel (0.05-20), "
                                 "e.g. --assume-mpp tcga-cesc=0.5")
        if key not in {d.id for d in datasets}:
            raise PathboardError(f"--assume-mpp {entry}: dataset {key} is not in this run")
        out[key] = mpp
    return out


def _tasks(cfg: RunConfig, pack: ProtocolPack | None) -> tuple[list, bool]:
    if split_list(cfg.tasks):
        chosen = select("task", cfg.tasks).items
        explicit = True
        outside = [t.id for t in chosen if pack and t.id not in pack.tasks]
        if outside:
            raise PathboardError(f"--tasks {','.join(outside)}: not part of protocol pack {pack.id} "
                                 f"(its tasks: {', '.join(pack.tasks)})")
    elif pack:
        chosen = [plugins.get("task", id) for id in pack.tasks]
        explicit = False
    else:
        chosen = [t for t in plugins.registry("task").values() if t.default]
        explicit = False
    given = parse_assignments(cfg.options or ())
    if pack:  # the pack's options of the tasks this run scores (``--tasks`` may leave some out)
        given = {k: v for k, v in pack.options.items() if k.rpartition(".")[0] in {t.id for t in chosen}}
    values = values_for(chosen, given, plugins.registry("task"))
    return [t.configure(values[t.id]) for t in chosen], explicit


def _pack(cfg: RunConfig) -> ProtocolPack | None:
    """The run's protocol pack, checked against what else the run was told: a pack fixes its prompts and task
    options, and scores only its own prompt modes."""
    if not cfg.protocol:
        return None
    pack = plugins.get("protocol", cfg.protocol)
    fixed = [flag for flag, given in (("--prompts", cfg.prompts), ("--option", cfg.options)) if given]
    if fixed:
        raise PathboardError(f"--protocol {pack.id} fixes the prompts and task options of its paper: drop "
                             f"{' and '.join(fixed)}, or drop --protocol to change them")
    other = [m for m in split_list(cfg.prompt_modes) if m not in pack.prompt_modes]
    if other:
        raise PathboardError(f"--prompt-modes {','.join(other)}: protocol pack {pack.id} scores "
                             f"{'/'.join(pack.prompt_modes)} prompts only")
    return pack


def _pack_datasets(pack: ProtocolPack, selected, everything: bool) -> list:
    """The pack's datasets among those selected (every one of them for ``--datasets all``); a dataset named
    one by one that the pack does not score is an error."""
    if everything:
        known = plugins.registry("dataset")
        missing = [id for id in pack.datasets if id not in known]
        if missing:
            raise PathboardError(f"protocol pack {pack.id} ({pack.plugin}) names dataset(s) no plugin registers: "
                                 f"{', '.join(missing)}")
        return [known[id] for id in pack.datasets]
    outside = [d.id for d in selected.items if d.id not in pack.datasets]
    if outside and selected.explicit:
        raise PathboardError(f"--datasets {','.join(outside)}: not part of protocol pack {pack.id} "
                             f"(its datasets: {', '.join(pack.datasets)})")
    return [d for d in selected.items if d.id in pack.datasets]


def plan(cfg: RunConfig) -> Plan:
    take()  # a new run: its stages are timed from here
    limit_cpus(cfg.threads)  # near-duplicate grouping and torch use as many threads as the run may use
    modes = split_list(cfg.prompt_modes or "single,ensemble")
    for m in modes:
        if m not in MODES:
            raise PathboardError(f"unknown prompt mode {m!r}; choose from {', '.join(MODES)}")
    pack = _pack(cfg)
    if pack and not cfg.prompt_modes:
        modes = list(pack.prompt_modes)
    models, models_explicit = select("model", cfg.models)
    selected = select("dataset", cfg.datasets)
    datasets, datasets_explicit = selected.items, selected.explicit or cfg.strict
    if pack:
        datasets = _pack_datasets(pack, selected, split_list(cfg.datasets) == ["all"])
    tasks, tasks_explicit = _tasks(cfg, pack)
    assumed = _assumed_mpp(cfg.assume_mpp, datasets)
    custom = _prompt_overrides(cfg.prompts)
    for key in set(custom) - {"*"} - {d.id for d in datasets}:
        raise PathboardError(f"--prompts {key}=...: dataset {key} is not in this run (--datasets {cfg.datasets})")
    known_tasks = plugins.registry("task")
    for d in datasets:  # an opt-out naming no task is a typo that would silently do nothing
        for task_id in dict(getattr(d, "opt_out", None) or {}):
            if task_id not in known_tasks:
                raise PathboardError(f"dataset {d.id}: opt_out names an {unknown_id('task', task_id, known_tasks)}")
    skipped: list[str] = []

    user_weights = overrides(cfg.weights)
    known_models = plugins.registry("model")
    reachable = {m.id for m in models} | {getattr(m, "patch_encoder", "") for m in models}  # slide models' encoders
    for key, (_, origin) in user_weights.items():  # a command-line mapping that reaches no model is a typo
        if origin == "--weights" and key not in reachable:
            if key not in known_models:
                raise PathboardError(f"--weights {key}=...: {unknown_id('model', key, known_models)}")
            raise PathboardError(f"--weights {key}=...: model {key} is not in this run (--models {cfg.models})")
    weights = {}
    absent: dict[str, list[str]] = {"model": [], "dataset": [], "remote": []}
    allow = allowed(models, trusted(cfg.trust_remote_code))
    for m in models:
        if getattr(m, "remote_code", False) and m.id not in allow:
            skipped.append(trust_line(m))
            if not models_explicit:  # members of "all": one line for every such model
                absent["remote"].append(m.id)
            continue
        override = user_weights.get(m.id)
        try:
            weights[m.id] = expect(m.resolve(Weights(*override) if override else None), Weights, m, "model",
                                   "resolve()", 1, "models")
        except PathboardError as exc:
            if models_explicit:
                raise
            skipped.append(f"{m.id}: {exc}")
            absent["model"].append(m.id)

    resolve = lambda spec, given: expect(spec.resolve(given), Weights, spec, "model", "resolve()", 1,  # noqa: E731
                                         "models")
    features = feature_folders(cfg.features, {d.id for d in datasets})
    encoders = patch_encoders(models, weights, user_weights, features,
                              [d.id for d in datasets if "slides" in d.facts], skipped, resolve, allow)
    if features and not encoders:  # said, not silently ignored
        skipped.append(f"--features: no slide model of this run reads them (they are read by slide models, such as "
                       f"titan; --models {cfg.models})")
    root, manifests = None, {}
    try:  # parameterised datasets (folder:PATH) carry their own path
        if any(d.id not in selected.parameterised for d in datasets):
            root = data_root(cfg.data_root)
    except PathboardError as exc:
        if datasets_explicit:
            raise
        skipped.append(str(exc))
    from tqdm.auto import tqdm

    for d in tqdm([d for d in datasets if root or d.id in selected.parameterised], desc="manifests", unit="dataset",
                  disable=None, leave=False):
        try:
            manifests[d.id] = _manifest(d, root, cfg.verify)
        except PathboardError as exc:
            if datasets_explicit:
                raise
            skipped.append(str(exc))
            if split_list(cfg.datasets) == ["all"]:  # a group's absent members keep their own lines: how to get each
                absent["dataset"].append(d.id)

    for d in (d for d in datasets if pack and d.id in manifests and pack.datasets[d.id].items):
        ids = pack.datasets[d.id].items  # the paper's own item list: the cells score those that are here
        manifests[d.id], absent_items = listed(manifests[d.id], ids)
        if not len(manifests[d.id]):
            del manifests[d.id]
            skipped.append(f"{d.id}: none of the {len(ids)} items protocol pack {pack.id} lists is here "
                           f"(e.g. {ids[0]})")
        elif absent_items:
            skipped.append(f"{d.id}: {len(ids) - len(absent_items)} of the {len(ids)} items protocol pack {pack.id} "
                           f"lists are here (e.g. {absent_items[0]} is not); its cells score those")
    prompts = {}
    for d in (d for d in datasets if d.id in manifests and d.classes):  # unlabelled sets have no prompts
        own = pack.datasets[d.id].prompts if pack else None
        prompts[d.id] = custom.get(d.id) or custom.get("*") or own or d.prompts()
        prompts[d.id].prompts("single", d.classes)  # fail now, not after an hour of embedding

    present = [d for d in datasets if d.id in manifests]
    run_datasets = {d.id: d for d in present}
    cells, blocked, not_applicable, broken = [], [], [], []
    patch_only: dict[str, dict] = {}  # slide model -> task -> datasets it was skipped on
    for d in present:
        for t in tasks:
            if pack and t.id not in pack.datasets[d.id].tasks:
                continue  # the paper did not report this task on this dataset
            reason = t.supports(d)
            if reason:
                skipped.append(f"{t.id} on {d.id}: {reason}")
                if reason.startswith(f"{d.id} does not declare task "):
                    not_applicable.append((t.id, d.id, reason[len(d.id) + 1:]))
                continue
            try:
                inputs = expect(t.inputs(d, manifests[d.id]), Inputs, t, "task", "inputs()", 2, "tasks")
                reason = expect(t.check(d, manifests[d.id]), (str, type(None)), t, "task", "check()", 2, "tasks")
            except ContractError as exc:  # a broken task plugin: its cells fail, every other cell runs
                broken += [(t.id, f"{m.id} x {d.id}" + (f" ({mode})" if mode else ""), str(exc))
                           for m in models if m.id in weights for mode in (modes if t.uses_prompts else [None])]
                continue
            reason = reason or _resolve_others(t, d, inputs, root, manifests, run_datasets, cfg.verify)
            able = []
            for m in (m for m in models if m.id in weights):
                ok, missing = capable(m, t, d)
                if ok:
                    able.append(m)
                elif missing == "slide":  # said once per slide model, below
                    patch_only.setdefault(m.id, {}).setdefault(t.id, set()).add(d.id)
                else:
                    skipped.append(f"{t.id} on {m.id} x {d.id}: {m.id} lacks {missing}")
            if reason and able:
                if tasks_explicit:
                    blocked += [(m.id, d.id, reason) for m in able]
                else:
                    skipped.append(reason if reason.startswith(f"{t.id} on {d.id} ") else f"{t.id} on {d.id}: {reason}")
                continue
            cells += [Cell(m, d, t, mode, slide_inputs(m, inputs)) for m in able
                      for mode in (modes if t.uses_prompts else [None])]
    skipped += [f"{model}: a slide encoder scores whole-slide tasks on slide datasets only; skipped "
                f"{', '.join(sorted(tasks))} on {len(set().union(*tasks.values()))} dataset(s)"
                for model, tasks in patch_only.items()]
    order = {m.id: i for i, m in enumerate(models)}
    cells.sort(key=lambda c: order[c.model.id])  # one model at a time: each is loaded once
    overridden = frozenset(d for d in prompts if d in custom or "*" in custom)
    return Plan(cells, skipped, weights, manifests, prompts, root, run_datasets, blocked, not_applicable, overridden,
                assumed, broken, absent, pack, encoders, features)


def _manifest(dataset, root, verify: bool):
    """The dataset's manifest; with ``verify`` its files' content is hashed too (a plugin's own
    ``manifest`` that predates the parameter is called as before)."""
    with stage("manifests"):
        manifest = dataset.manifest(root, verify=True) if verify else dataset.manifest(root)
    return expect(manifest, Manifest, dataset, "dataset", "manifest()", 1, "datasets")


def _resolve_others(task, dataset, inputs: Inputs, root, manifests: dict, run_datasets: dict,
                    verify: bool = False) -> str | None:
    """Find the manifests of the other datasets a cell reads; the reason it cannot run, or None."""
    for other_id, role in inputs.images.items():
        if other_id == dataset.id:
            continue
        other = plugins.get("dataset", other_id)  # an unknown id here is a plugin bug: an error with a hint
        if other_id not in manifests:
            try:
                if root is None:
                    raise PathboardError("no data root: pass --data-root DIR or set PATHBOARD_DATA")
                manifests[other_id] = _manifest(other, root, verify)
            except PathboardError as exc:
                return f"{task.id} on {dataset.id} {role or 'reads ' + other_id}, which is not available: {exc}"
        run_datasets.setdefault(other_id, other)
    return None
