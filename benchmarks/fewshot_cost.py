"""Few-shot on cached embeddings against a cold zero-shot run, on the same real patches.

    python benchmarks/fewshot_cost.py [DATA_ROOT] [--per-class 128]

A real-size QuiltNet-B-32 architecture (ViT-B/32, random weights, written into a private offline HF
cache) embeds ``3 x per-class`` real LC25000 lung patches cold for zero-shot (single prompt mode);
then few-shot (prototype and linear probe, k = 1..16 and all, 5 draws) scores the cached embeddings.
Each runs ``--repeats`` times as a whole process; prints the medians, their spread and the ratio of the
medians. The goal is few-shot <= 5% of the cold zero-shot run.
"""
import argparse
import atexit
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

work = Path(tempfile.mkdtemp(prefix="pathboard-fewshot-"))
atexit.register(shutil.rmtree, work, True)  # ~1 GB of weights, links and cache
# a private offline HF cache, set before anything imports huggingface_hub (open_clip does)
os.environ.update({"HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1", "PATHBOARD_CACHE": str(work / "cache")})

import open_clip  # noqa: E402

from pathboard.testing import OPENAI_MEAN, OPENAI_STD, hf_snapshot, write_open_clip_dir  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("data_root", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
ap.add_argument("--per-class", type=int, default=128)
ap.add_argument("--repeats", type=int, default=3, help="processes of each kind; the medians are compared")
args = ap.parse_args()

config = {"model_cfg": open_clip.get_model_config("ViT-B-32-quickgelu"),
          "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD}}
weights = write_open_clip_dir(work / "vit-b-32", config)
hf_snapshot(work / "hf", "wisdomik/QuiltNet-B-32", {f.name: f for f in weights.iterdir()})
lung = args.data_root / "lung_colon_image_set" / "lung_image_sets"
for cls in sorted(p.name for p in lung.iterdir()):
    (work / "patches" / cls).mkdir(parents=True)
    for f in sorted((lung / cls).iterdir())[: args.per_class]:
        (work / "patches" / cls / f.name).symlink_to(f)

# as installed: Python writes pathboard's bytecode on first import (the cold run's), which a shell with
# PYTHONDONTWRITEBYTECODE set (as some containers have) would otherwise recompile in every process
env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
pathboard = str(Path(sys.executable).with_name("pathboard"))
common = ["run", "--models", "quiltnet-b32", "--datasets", f"folder:{work / 'patches'}"]


def timed(run: int, *extra) -> tuple[float, float]:
    """Wall and scoring seconds of one ``pathboard run`` process, with run ``run``'s own cache and database."""
    t0 = time.perf_counter()
    out = subprocess.run([pathboard, *common, "--cache-dir", str(work / f"cache{run}"), "--db",
                          str(work / f"pb{run}.duckdb"), *extra], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if out.returncode:
        sys.exit(out.stderr.strip().splitlines()[-1])
    return wall, float(re.search(r"time: scoring +(\d+\.\d+) s", out.stderr).group(1))


# each cold run embeds into an empty cache of its own; few-shot then scores the first one's, again and again
cold = [timed(run, "--tasks", "zeroshot", "--prompt-modes", "single")[0] for run in range(args.repeats)]
few = [timed(0, "--tasks", "fewshot", "--rescore") for _ in range(args.repeats)]
zeroshot, fewshot, scoring = (statistics.median(cold), statistics.median(w for w, _ in few),
                              statistics.median(s for _, s in few))

# the scorer alone, in this process (imports already paid)
from pathboard.core.engine.plan import RunConfig, plan  # noqa: E402
from pathboard.core.engine.run import execute  # noqa: E402

cfg = RunConfig(models="quiltnet-b32", datasets=f"folder:{work / 'patches'}", tasks="fewshot",
                db=str(work / "pb0.duckdb"), cache_dir=str(work / "cache0"), rescore=True)  # stored just above
warm = sum(execute(plan(cfg), cfg).seconds.get(s, 0.0) for s in ("scoring", "prompt encoding"))
n = 3 * args.per_class
ratio = fewshot / zeroshot
spread = lambda xs: f"{min(xs):.2f}-{max(xs):.2f}"  # noqa: E731
print(f"cold zero-shot (single), ViT-B/32, {n} real patches: median {zeroshot:6.2f} s of {args.repeats} "
      f"({spread(cold)})")
print(f"few-shot on the cached embeddings: median {fewshot:6.2f} s wall ({spread([w for w, _ in few])}), "
      f"{scoring:.2f} s scoring; {warm:.2f} s for the scorer alone")
print(f"few-shot / cold zero-shot: scorer {warm / zeroshot:.3f}, CLI scoring {scoring / zeroshot:.3f}, "
      f"CLI wall {ratio:.3f}; goal <= 0.05: {'met' if ratio <= 0.05 else 'NOT met'}")
