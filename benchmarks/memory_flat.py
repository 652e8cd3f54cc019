"""Does memory stay flat as a dataset grows? Peak RSS of `pathboard run` embedding N images, for two N.

    python benchmarks/memory_flat.py DATA_ROOT [--sizes 1000,10000] [--workers 1]

The real CRC-VAL-HE-7K patches of DATA_ROOT (``../shared/data``) are repeated, as symlinks with distinct
names, into a ``folder:`` dataset of N images; a tiny random-init QuiltNet in its published layout
(loaded offline by the production loader) embeds them with a cold cache and scores zero-shot. Each run
is a fresh process; its peak resident memory (``getrusage(RUSAGE_CHILDREN)``: the largest process of
the run, DataLoader workers included) is printed with the ratio between the sizes. Streaming into the
memory-mapped cache and scoring in chunks should keep the ratio near 1 (the issue asks within 10%).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

work = Path(tempfile.mkdtemp(prefix="pathboard-memory-"))
os.environ.update(HF_HOME=str(work / "hf"), HF_HUB_OFFLINE="1")

from pathboard.testing import hf_snapshot, write_open_clip_dir  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("data_root", type=Path)
ap.add_argument("--sizes", default="1000,10000")
ap.add_argument("--workers", type=int, default=1)
args = ap.parse_args()

model = write_open_clip_dir(work / "quiltnet")
hf_snapshot(work / "hf", "wisdomik/QuiltNet-B-32", {f.name: f for f in model.iterdir()})
patches = sorted((args.data_root.resolve() / "CRC-VAL-HE-7K").glob("*/*.png"))
cli = Path(sys.executable).with_name("pathboard")

peaks = {}
for n in (int(s) for s in args.sizes.split(",")):
    folder = work / f"set-{n}"
    for i in range(n):
        src = patches[i % len(patches)]
        target = folder / src.parent.name / f"{i:06d}-{src.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(src)
    # a fresh wrapper per size, so RUSAGE_CHILDREN holds this run's processes only
    command = [str(cli), "run", "--models", "quiltnet-b32", "--datasets", f"folder:{folder}", "--tasks", "zeroshot",
               "--prompt-modes", "single", "--workers", str(args.workers), "--db", str(work / f"{n}.duckdb")]
    wrapper = ("import resource, subprocess, sys; "
               f"r = subprocess.run({command!r}, capture_output=True, text=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); "
               "sys.stderr.write(r.stderr[-2000:] if r.returncode else '')")
    env = {**os.environ, "PATHBOARD_CACHE": str(work / f"cache-{n}")}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    kib, rc = out.stdout.split()
    assert rc == "0", out.stderr
    peaks[n] = int(kib) * 1024
    print(f"{n:>7} images: peak RSS {peaks[n] / 2**20:7.1f} MiB, {seconds:6.1f} s ({n / seconds:.0f} img/s)")

small, large = min(peaks), max(peaks)
print(f"peak RSS ratio {large} / {small} images: {peaks[large] / peaks[small]:.3f}")
