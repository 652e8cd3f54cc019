"""Leaderboard render time on a large synthetic results database, in headless Chromium.

    .venv/bin/python benchmarks/leaderboard_render.py [--db PATH] [--repeats 3]

Builds, through ``Store.add_cells`` (one transaction per model and dataset), 15 models (the registered ones,
padded) x 35 datasets (29 patch sets, 6 slide sets; real ids, padded): zero-shot in both prompt modes
(reliability bins; predictions of 300 items), few-shot (prototype and linear probe, k = 1..16, 5 draws and
their median each), prompt sensitivity (~64 draws and the summaries), robustness (12 perturbations, no
per-perturbation predictions) and zero-shot WSI top-K with slide pictures: about 10^5 result rows of seeded,
plausible values. Then ``compare_and_rank`` (the comparisons at 200 bootstrap resamples instead of 1,000:
the same rows, a minute faster; and the prompt rankings), as a run ends. ``--db PATH`` keeps the database;
an existing one is reused.

Then it serves ``pathboard leaderboard`` and times, in headless Chromium, the app start (launch until the
Overview's table is drawn) and per view (each Analyses section apart: the view shows one at a time) page loads
of its link (goto until the view's content is drawn and the script idle; median of --repeats): in fresh
browsers, with no HTTP cache (a first visit: Streamlit's JS fetched and compiled), and in one returning
browser (that JS cached, as when a link is opened again), and one in-page rerun where a cheap one exists. The
server's cache of the database (keyed on the file's stamp) is cold at each view's first load. To tell the
database, the script and the browser apart it also times each view's script alone (Streamlit's AppTest), on
the database and on its cache, and the loaders of ``tables``. Goal: every view under 2 s. Exit code 0 either
way.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import namedtuple
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.core.engine.plugins import registry
from pathboard.core.engine.run import compare_and_rank
from pathboard.core.science import compare
from pathboard.core.science.metrics import Metric, iqr_metrics
from pathboard.core.science.perturb import PERTURBATIONS
from pathboard.core.science.rankings import family
from pathboard.core.store.database import Store
from pathboard.plugins.tasks.prompt_sensitivity import METRICS as DRAW_METRICS
from pathboard.plugins.tasks.prompt_sensitivity import SIZES, spread
from pathboard.plugins.tasks.robustness import DROPS

GOAL_S, N_MODELS, N_DATASETS, COMPARE_BOOT, NAN = 2.0, 15, 35, 200, float("nan")
SLIDE_SETS = ["camelyon16", "tcga-brca", "tcga-nsclc", "tcga-rcc", "tcga-cesc", "tissuenet"]
FEWSHOT, SENSITIVITY, ROBUST = 3, 3, 2  # how many patch sets (the first ones) get these tasks
MODES, K_SHOTS, DRAWS, WSI_K, ITEMS, SLIDES = ("ensemble", "single"), (1, 2, 4, 8, 16), 5, (1, 5, 10, 50, 100), 300, 30
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


Set = namedtuple("Set", "id title classes groups level ordinal", defaults=("patch", False))  # a dataset's facts


def datasets() -> list[Set]:
    reg, n_patch = registry("dataset"), N_DATASETS - len(SLIDE_SETS)
    sets = [Set(d.id, d.title, list(d.classes), sorted(d.groups), "patch", bool(d.ordinal))
            for d in reg.values() if d.level == "patch" and "zeroshot" in d.tasks][:n_patch]
    sets += [Set(f"synthetic-{i:02d}", f"Synthetic patch set {i}", list("ABCD")[:2 + i % 3], ["general", "patch"])
             for i in range(n_patch - len(sets))]
    return sets + [Set(i, reg[i].title, list(reg[i].classes), sorted(reg[i].groups), "wsi", bool(reg[i].ordinal))
                   for i in SLIDE_SETS]


def m(name, value, ci=0.0, n=ITEMS) -> Metric:
    return Metric(name, float(value), value - ci if ci else NAN, value + ci if ci else NAN, n)


def clf(rng, base, ds, ci=0.03, n=ITEMS) -> list[Metric]:
    """The classification metrics around a balanced accuracy ``base`` (no CIs when ``ci`` is 0)."""
    base = float(np.clip(base, 0.05, 0.97))
    values = {"balanced_accuracy": base, "weighted_f1": base - .02, "cohen_kappa": 1.6 * base - .6,
              "accuracy": base + .01, **({"quadratic_kappa": 1.5 * base - .4} if ds.ordinal else {})}
    values.update({f"recall/{c}": np.clip(base + rng.normal(0, .1), 0, 1) for c in ds.classes})
    return [m(name, v, ci, n) for name, v in values.items()]


def calib(rng, base, ds, n=ITEMS) -> list[Metric]:
    multi = ds.classes if len(ds.classes) > 2 else []  # per-class AUROCs beside the macro one
    per_class = [m(f"auroc/{c}", min(.99, base + rng.normal(.1, .05)), .03, n) for c in multi]
    return [m("ece", .3 - .25 * base + rng.normal(0, .02), .02, n), m("brier", 1.2 - base, .03, n),
            m("nll", 2 - 1.5 * base, .05, n), m("auroc", min(.99, base + .1), .02, n)] + per_class


def bins(rng, base) -> list[Metric]:
    out = []
    for b in sorted(rng.choice(15, int(rng.integers(6, 15)), replace=False)):
        conf, n = (b + .5) / 15, int(rng.integers(1, 60))
        out += [m(f"bin={b:02d}/confidence", conf, n=n), m(f"bin={b:02d}/count", n, n=n),
                m(f"bin={b:02d}/accuracy", np.clip(conf + rng.normal(base - .75, .08), 0, 1), n=n)]
    return out


def shared(rng, ds) -> dict:
    """What the models of one dataset share: its items, their truth and groups, each prompt draw's effect."""
    n, stem = (SLIDES, "slides/slide_{:03d}.svs") if ds.level == "wsi" else (ITEMS, "images/img_{:04d}.png")
    draws = ([f"template={i}" for i in range(6)] + [f"synonym={c}:{c.lower()} ({s})" for c in ds.classes for s in "ab"]
             + [f"subset={k}/draw={r}" for k in SIZES for r in range(10)])
    return {"truth": rng.integers(0, len(ds.classes), n), "items": [stem.format(i) for i in range(n)],
            "groups": [f"patient-{i // 5}" for i in range(n)] if ds.level == "patch" else None,
            "draws": dict(zip(draws, rng.normal(0, .04, len(draws))))}


def predictions(rng, ds, base, common) -> tuple:
    y = common["truth"]
    y_pred = np.where(rng.random(len(y)) < base, y, rng.integers(0, len(ds.classes), len(y)))
    return y, y_pred, len(ds.classes), ds.ordinal, common["items"], common["groups"]


def zeroshot(rng, ds, base, common):
    for mode in MODES:
        b = base + .02 * (mode == "ensemble")
        yield "zeroshot", mode, [("", clf(rng, b, ds) + calib(rng, b, ds), (), predictions(rng, ds, b, common)),
                                 ("reliability", bins(rng, b), (), None)]


def fewshot(rng, ds, base, common):
    out = {}
    for method, lift in (("prototype", 0), ("linear-probe", .03)):
        for k in K_SHOTS:
            mean = base + .05 * np.log2(k) + lift * k / 16
            draws = [clf(rng, mean + rng.normal(0, .04), ds, ci=0) for _ in range(DRAWS)]
            out.update({f"{method}/k={k}/draw={d}": metrics for d, metrics in enumerate(draws)})
            out[f"{method}/k={k}/median"] = iqr_metrics(draws)
        out[f"{method}/k=all"] = clf(rng, base + .25, ds)
    head = out["prototype/k=16/median"]  # the headline: a CI, and the spread over the draws
    out[""] = [dataclasses.replace(x, ci_low=x.value - .03, ci_high=x.value + .03) for x in head]
    out["train=official-split"] = [m(n, v) for n, v in (("n_train", 900), ("n_eval", ITEMS), ("max_k", 16))]
    yield "fewshot", None, [(v, metrics, (), None) for v, metrics in out.items()]


def sensitivity(rng, ds, base, common):
    per_draw = {d: {x: base + shift + rng.normal(0, .01) for x in DRAW_METRICS} for d, shift in common["draws"].items()}
    out, families = {d: [m(x, v) for x, v in values.items()] for d, values in per_draw.items()}, {"": list(per_draw)}
    for d in per_draw:
        families.setdefault(family(d), []).append(d)
    for name, members in families.items():
        out[name] = [x for metric in DRAW_METRICS for x in spread(metric, [per_draw[d][metric] for d in members],
                                                                    ITEMS)] + [m("draws", len(members))]
    yield "prompt-sensitivity", None, [(v, metrics, (), None) for v, metrics in out.items()]


def robustness(rng, ds, base, common):
    for mode in MODES:
        variants, figures = [], {"balanced_accuracy_drop": [], "flip_rate": [], "cosine": []}
        for j, name in enumerate(PERTURBATIONS):
            drop = abs(rng.normal(.01 + .01 * j, .02))
            for key, value in zip(figures, (drop, 1.5 * drop + .02, .97 - drop)):
                figures[key].append(value)
            drops = [m(f"{x}_drop", drop + rng.normal(0, .01), .02) for x in DROPS if ds.ordinal or "quad" not in x]
            variants.append((f"perturbation={name}", clf(rng, base - drop, ds) + drops
                             + [m(x, figures[x][-1], .01) for x in ("flip_rate", "cosine")], (), None))
        head = [m("balanced_accuracy", base)] + [x for name, v in figures.items() for x in (
            m(name, np.mean(v)), m(f"{name}/worst", min(v) if name == "cosine" else max(v)))]
        yield "robustness", mode, [("", head, (), None)] + variants


def wsi(rng, ds, base, common, pictures):
    arts = [(item, kind, path) for item in common["items"] for kind, path in zip(("heatmap", "topk"), pictures)]
    for mode in MODES:
        b = base + .02 * (mode == "ensemble")
        variants = {f"topk={k}": clf(rng, b - .04 * abs(np.log10(k / 50)), ds, .06, SLIDES) + calib(rng, b, ds, SLIDES)
                    for k in WSI_K}
        yield "zeroshot-wsi", mode, [(v, metrics, (), None) for v, metrics in variants.items()] + [
            ("", variants["topk=50"], arts, predictions(rng, ds, b, common)), ("reliability", bins(rng, b), (), None)]


def slide_pictures(folder: Path, ds: Set) -> tuple[str, str]:
    """A heatmap and a top-tiles record (tiles cropped from a small picture) for every slide of ``ds``."""
    folder.mkdir(parents=True, exist_ok=True)
    heat, slide, topk = folder / "heatmap.png", folder / "slide.png", folder / f"topk-{ds.id}.json"
    x = np.linspace(0, 1, 512)[None, :, None] * np.linspace(1, 0, 512)[:, None, None]
    Image.fromarray((255 * np.concatenate([x ** .3, x * .5, x ** .1], axis=2)).astype(np.uint8)).save(slide)
    Image.open(slide).resize((256, 256)).save(heat)
    topk.write_text(json.dumps({"file": str(slide), "predicted": ds.classes[0], "truth": ds.classes[-1], "size0": 128,
                                "level": 0, "windows": True, "pooled_k": 50,
                                "tiles": [{"x": 40 * i, "y": 30 * i, "similarity": .4 - .01 * i} for i in range(8)]}))
    return str(heat), str(topk)


def row(model, ds, task, mode, variant) -> dict:
    key = hashlib.sha1(f"{ds.id}|{task}|{mode}".encode()).hexdigest()
    return {"model": model, "dataset": ds.id, "task": task, "prompt_mode": mode, "variant": variant,
            "weights_fingerprint": hashlib.sha1(model.encode()).hexdigest()[:20], "weights_origin": "hub",
            "prompt_hash": key[:16] if mode else None, "manifest_hash": key[16:32], "embedding_key": None,
            "n_items": SLIDES if ds.level == "wsi" else ITEMS, "n_failed": 0, "device": "cuda", "precision": "fp16",
            "task_options": "{}", "options_hash": "", "protocol": '{"prompts": "built-in"}', "protocol_hash": key,
            "default_protocol": True}


def build(db: Path, seed: int = 0) -> None:
    start, sets, rng = time.perf_counter(), datasets(), np.random.default_rng(seed)
    cards = {id: {"title": s.card.title, **dataclasses.asdict(s.card)} for id, s in registry("model").items()}
    cards = dict(list({**cards, **{f"synthetic-clip-{i}": {"title": f"Synthetic CLIP {i}"}
                                   for i in range(N_MODELS)}}.items())[:N_MODELS])
    catalog = {"models": cards, "tasks": {t: {"title": t} for t in ("zeroshot", "fewshot", "prompt-sensitivity",
                                                                     "robustness", "zeroshot-wsi")},
               "datasets": {d.id: {"title": d.title, "groups": d.groups, "level": d.level, "ordinal": d.ordinal}
                            for d in sets}}
    common = {d.id: shared(np.random.default_rng([seed, i]), d) for i, d in enumerate(sets)}
    pictures = {d.id: slide_pictures(db.parent / f"{db.stem}-pictures", d) for d in sets if d.level == "wsi"}
    ease, store, results = {d.id: rng.normal(0, .08) for d in sets}, Store(db), 0
    for model in cards:
        skill, speed = rng.uniform(.55, .8), rng.uniform(50, 400)
        run = store.start_run(command=f"pathboard run --models {model} --datasets all", pathboard_version="bench",
                              packages={"numpy": np.__version__}, host="bench", device="cuda", precision="fp16",
                              batch_size=256, data_root="/data", catalog=catalog)
        for i, d in enumerate(sets):
            args = (rng, d, skill + ease[d.id] + rng.normal(0, .03), common[d.id])
            cells = [wsi(*args, pictures[d.id])] if d.level == "wsi" else [task(*args) for task, n in (
                (zeroshot, len(sets)), (fewshot, FEWSHOT), (sensitivity, SENSITIVITY), (robustness, ROBUST)) if i < n]
            entries = [(row(model, d, task, mode, v), metrics, arts, p) for gen in cells
                       for task, mode, variants in gen for v, metrics, arts, p in variants]
            store.add_cells(run, entries)  # a run writes each cell on its own; ~45 ms a transaction adds up
            results += sum(len(metrics) for _, metrics, _, _ in entries)
            tiles = 40_000 * (d.level == "wsi")
            store.add_cost(run, {"model": model, "dataset": d.id, "device": "cuda", "precision": "fp16",
                                 "batch_size": 256, "params": 150_000_000, "images": ITEMS * (not tiles),
                                 "tiles": tiles, "embed_seconds": (tiles or ITEMS) / speed, "images_per_s": speed,
                                 "tiles_per_s": speed, "wall_seconds": (tiles or ITEMS) / speed + 1,
                                 "peak_memory_bytes": 2**31, "memory_kind": "cuda"})
        store.finish_run(run, "finished", ITEMS * len(sets), [], {})
    print(f"stored {results:,} result rows ({len(cards)} models x {len(sets)} datasets) in "
          f"{time.perf_counter() - start:.0f} s")
    start, bootstrap = time.perf_counter(), compare.paired_bootstrap
    compare.paired_bootstrap = partial(bootstrap, n_boot=COMPARE_BOOT)
    try:
        pairs, ranked = compare_and_rank(store)
    finally:
        compare.paired_bootstrap = bootstrap
    print(f"comparisons: {pairs:,} rows, prompt rankings: {ranked:,} rows, in "
          f"{time.perf_counter() - start:.0f} s")


def pick(label: str):
    """An in-page rerun: choose the second option of the selectbox ``label``."""
    def act(page):
        page.get_by_test_id("stSelectbox").filter(has_text=label).click()
        page.get_by_role("option").nth(1).click()
    return act


def radio(label: str, option: str):
    return lambda page: page.get_by_test_id("stRadio").filter(has_text=label).get_by_text(option, exact=True).click()


#: view -> (its link's query, what "drawn" means: CSS selectors, texts in the main block, charts drawn), its
#: in-page rerun or None. Analyses shows one section at a time (a tab each), so each section is timed.
TABLE, FRAME = "[data-testid=stTable]", "[data-testid=stDataFrame]"
VIEWS = {
    "Overview": ("", (["table.pathboard-leaderboard"], [], 1), radio("Prompt mode", "single")),
    "Cervix benchmark": ("view=Cervix+benchmark", (["table.pathboard-leaderboard", FRAME], ["Cervix benchmark"], 0),
                         radio("Prompt mode", "single")),
    "Analyses: prompts": ("view=Analyses", ([TABLE], ["Kendall τ"], 1), radio("Draws", "templates alone")),
    "Analyses: robustness": ("view=Analyses&section=Robustness", ([TABLE], ["Robustness to image perturbations"], 1),
                             radio("Figure", "prediction flip rate")),
    "Analyses: few-shot": ("view=Analyses&section=Few-shot+curves", ([], ["labelled examples per class"], 1),
                           pick("Dataset")),
    "Analyses: top-K": ("view=Analyses&section=MI-Zero+top-K", ([], ["MI-Zero"], 1), pick("Dataset")),
    "Analyses: calibration": ("view=Analyses&section=Calibration+and+AUROC", ([TABLE], ["Reliability diagram"], 1),
                              radio("Task", "zeroshot-wsi")),
    "Slides": ("view=Slides", (["[data-testid=stImage] img"], ["Top tiles"], 0), pick("Slide")),
    "Models": ("view=Models", ([TABLE, FRAME], ["Model cards"], 0), None),
    "Runs": ("view=Runs", (["[data-testid=stCode]"], ["Unreadable files"], 0), pick("Run details")),
}
READY = """([css, texts, charts, rerun]) => {
  const app = document.querySelector('[data-testid=stApp]'), main = document.querySelector('[data-testid=stMain]');
  return app?.dataset.testScriptState === 'notRunning' && main !== null && (!rerun || window.__changes >= 2)
    && css.every(s => document.querySelector(s)) && texts.every(t => main.textContent.includes(t))
    && document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= charts;
}"""
#: counts the script state's changes from now on (a rerun leaves 'notRunning' and comes back)
WATCH = """() => { window.__changes = 0; new MutationObserver(records => { window.__changes += records.length; })
  .observe(document.querySelector('[data-testid=stApp]'), {attributeFilter: ['data-test-script-state']}); }"""


def ready(page, view: str, rerun: bool = False) -> None:
    page.wait_for_function(READY, arg=[*VIEWS[view][1], rerun], polling=50, timeout=60_000)


Timing = namedtuple("Timing", "first returning shells rerun errors")


def load(page, url: str, view: str) -> float:
    start = time.perf_counter()
    page.goto(f"{url}/?{VIEWS[view][0]}", wait_until="commit", timeout=60_000)
    ready(page, view)
    return time.perf_counter() - start


def time_view(browser, url: str, view: str, repeats: int) -> Timing:
    """Page loads of ``view`` (s, from goto until drawn and idle): in fresh browsers (no HTTP cache: a first
    visit, Streamlit's JS fetched and compiled again) and in one returning browser (its cache warm, as when a
    shared link is opened again); the page shell of the fresh loads (s to DOMContentLoaded); one in-page
    rerun (s); and how many exceptions the pages showed."""
    first, returning, shells, reruns, errors = [], [], [], [], 0
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        for fresh in [True] * repeats + [False] * (repeats + 1):
            page = browser.new_page(viewport={"width": 1400, "height": 1600}) if fresh else context.new_page()
            try:
                seconds = load(page, url, view)
                if fresh:
                    first.append(seconds)
                    shells.append(page.evaluate(
                        "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd") / 1e3)
                else:
                    returning.append(seconds)
                if VIEWS[view][2] and fresh and not reruns:
                    page.evaluate(WATCH)
                    start = time.perf_counter()
                    VIEWS[view][2](page)
                    ready(page, view, rerun=True)
                    reruns.append(time.perf_counter() - start)
                errors += page.locator("[data-testid=stException]").count()
            except Exception as exc:  # a view that never draws is a result too
                print(f"  {view}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                (first if fresh else returning).append(float("inf"))
            finally:
                page.close()
    finally:
        context.close()
    return Timing(first, returning[1:], shells, reruns, errors)  # the returning browser's first load fills its cache


def measure(db: Path, repeats: int, log: Path) -> tuple[list[float], dict]:
    """([s until the server answers, the Overview's table is drawn, the Overview is idle], {view: Timing})."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cli = [str(Path(sys.executable).with_name("pathboard")), "leaderboard", "--db", str(db), "--port", str(port),
           "--headless"]
    with sync_playwright() as p, open(log, "w") as out:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        start = time.perf_counter()
        server = subprocess.Popen(cli, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
        try:
            while server.poll() is None and time.perf_counter() - start < 120:
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                        break
                except OSError:
                    time.sleep(0.05)
            else:
                sys.exit(f"the leaderboard did not come up ({server.poll()}): {log.read_text()[-2000:]}")
            marks = [time.perf_counter() - start]
            page.goto(url, wait_until="commit", timeout=60_000)
            page.wait_for_selector("table.pathboard-leaderboard", timeout=60_000)
            marks.append(time.perf_counter() - start)
            ready(page, "Overview")
            marks.append(time.perf_counter() - start)
            page.close()
            return marks, {view: time_view(browser, url, view, repeats) for view in VIEWS}
        finally:
            os.killpg(server.pid, 15)  # the CLI and the Streamlit process it started: their own process group
            server.wait(timeout=30)
            browser.close()


def script_times(db: Path) -> dict[str, float]:
    """Each view's script alone, in this process (Streamlit's AppTest: no browser, no websocket), warmed up."""
    from streamlit.testing.v1 import AppTest

    logging.disable(logging.WARNING)  # Streamlit's notes on running bare, and on fixing a table for Arrow
    os.environ["PATHBOARD_DB"] = str(db)
    app, out = str(Path(__file__).resolve().parents[1] / "pathboard" / "leaderboard" / "app.py"), {}
    for view in ["Overview", *VIEWS]:  # each twice: the first reads the database, the second its cache
        for cold in (True, False):
            test = AppTest.from_file(app, default_timeout=120)
            for key, value in urllib.parse.parse_qsl(VIEWS[view][0]):
                test.query_params[key] = value
            start = time.perf_counter()
            test.run()
            out[view, cold] = time.perf_counter() - start
    return out


def loader_times(db: Path) -> None:
    from pathboard.core.store import queries

    calls = {name: partial(getattr(queries, name), db) for name in (
        "protocol_choices", "load_runs", "load_measured", "load_catalog", "load_comparisons", "load_artifacts",
        "load_rankings", "load_costs")}
    calls.update({f"load_variants({t})": partial(queries.load_variants, db, t)
                  for t in ("zeroshot", "fewshot", "prompt-sensitivity", "robustness", "zeroshot-wsi")})
    for name, call in calls.items():
        start = time.perf_counter()
        rows = len(call())
        print(f"  {name:<34} {time.perf_counter() - start:6.2f} s  {rows:>8,} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="keep the database here (an existing one is reused)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pathboard-render-"))
    db = args.db or work / "bench.duckdb"
    if db.exists():
        print(f"reusing {db}")
    else:
        build(db)
    (healthy, table, idle), views = measure(db, args.repeats, work / "server.log")
    scripts = script_times(db)
    print(f"\napp start: {table:.2f} s to the Overview's table (server answering after {healthy:.2f} s, "
          f"Overview idle after {idle:.2f} s)")
    print(f"\n{'view':<22} {'first visit':>11} {'returning':>10}  {'under ' + format(GOAL_S, 'g') + ' s':<10} "
          f"{'shell':>6} {'script':>13} {'rerun':>6}")
    for view, t in views.items():
        first, returning = statistics.median(t.first), statistics.median(t.returning)
        verdict = "/".join("yes" if x < GOAL_S else "NO" for x in (first, returning))
        rerun = f"{t.rerun[0]:5.2f}s" if t.rerun else "     –"
        print(f"{view:<22} {first:10.2f}s {returning:9.2f}s  {verdict:<10} {statistics.median(t.shells):5.2f}s "
              f"{scripts[view, True]:5.2f}s/{scripts[view, False]:4.2f}s {rerun}"
              f"{f'  ({t.errors} exception(s) shown)' if t.errors else ''}")
    print("\nfirst visit: a fresh browser (no HTTP cache) loads the view's link, until the view is drawn and the "
          "script idle (median of --repeats);\nreturning: the same in one browser whose cache holds Streamlit's JS "
          "(as when a link is opened again); under 2 s: first/returning;\nshell: of a first visit, until "
          "DOMContentLoaded (the HTML and Streamlit's JS); script: the view's script alone, in process (AppTest,\nno "
          "browser), reading the database / its cache; rerun: one in-page change (prompt mode, figure, dataset, "
          "slide, run details)")
    print("\nloaders, called directly:")
    loader_times(db)


if __name__ == "__main__":
    main()
