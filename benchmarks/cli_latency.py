"""CLI latency: `pathboard list models`, `pathboard doctor`, an identical rerun (every cell up to date) and a
fully cached `pathboard run --rescore`, against `import torch`, on this machine.

    python benchmarks/cli_latency.py [DATA_ROOT]   # DATA_ROOT holds CRC-VAL-HE-7K (default ../shared/data)

Prints the median wall time of 3 runs of each command and its ratio to the torch import. Listing and
planning import no model library, so they take a fraction of it. The cached run (zero-shot, both
prompt modes, on the CRC sample, with a tiny QuiltNet-B-32-shaped model written into a private
offline HF cache) embeds nothing and never loads the model: its overhead is its wall time minus the
scoring time it reports. The identical rerun finds every cell up to date and scores nothing. Goals: `list`
under 1.5 s, a cached run's overhead under 3 s, an identical rerun under 3 s.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pathboard.testing import hf_snapshot, write_open_clip_dir

pathboard = str(Path(sys.executable).with_name("pathboard"))
data = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data")
work = Path(tempfile.mkdtemp(prefix="pathboard-latency-"))
env = {**os.environ, "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1", "PATHBOARD_CACHE": str(work / "cache")}
tiny = write_open_clip_dir(work / "tiny")
hf_snapshot(work / "hf", "wisdomik/QuiltNet-B-32", {f.name: f for f in tiny.iterdir()})
run = [pathboard, "run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks", "zeroshot",
       "--data-root", str(data), "--db", str(work / "pb.duckdb"), "--workers", "0"]
commands = {
    "pathboard list models": [pathboard, "list", "models"],
    "pathboard doctor": [pathboard, "doctor", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k",
                         "--data-root", str(data)],
    "pathboard run (again)": run,
    "pathboard run --rescore": [*run, "--rescore"],
    "import torch": [sys.executable, "-c", "import torch"],
}


def wall(cmd: list[str]) -> tuple[float, float]:
    """Median wall time of 3 runs and the median scoring time the run reports (0 for other commands)."""
    times, scoring = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - t0)
        found = re.search(r"score (\d+\.\d+) s", out.stderr)
        scoring.append(float(found.group(1)) if found else 0.0)
    return statistics.median(times), statistics.median(scoring)


first = subprocess.run(run, capture_output=True, text=True, env=env, check=False)  # fills the cache
if first.returncode:
    sys.exit(f"the first run failed: {first.stderr.strip().splitlines()[-1]}")
timings = {name: wall(cmd) for name, cmd in commands.items()}
torch_s = timings["import torch"][0]
for name, (seconds, scoring) in timings.items():
    ratio = "" if name == "import torch" else f"  ({seconds / torch_s:.2f}x import torch)"
    extra = f"  scoring {scoring:.2f} s, overhead {seconds - scoring:.2f} s" if scoring else ""
    print(f"{name:<24} {seconds:6.2f} s{ratio}{extra}")
