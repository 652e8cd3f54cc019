"""CLI latency: `pathboard list models` and `pathboard doctor` against `import torch`, on this machine.

    python benchmarks/cli_latency.py

Prints the median wall time of 3 runs of each command, and each pathboard command's ratio to the
torch import: listing and planning import no model library, so they should take a fraction of it.
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

pathboard = str(Path(sys.executable).with_name("pathboard"))
commands = {
    "pathboard list models": [pathboard, "list", "models"],
    "pathboard doctor": [pathboard, "doctor", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k"],
    "import torch": [sys.executable, "-c", "import torch"],
}


def wall(cmd: list[str]) -> float:
    """Median of 3 runs; the exit status is ignored (doctor fails where weights or data are missing)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


timings = {name: wall(cmd) for name, cmd in commands.items()}
torch_s = timings["import torch"]
for name, seconds in timings.items():
    ratio = "" if name == "import torch" else f"  ({seconds / torch_s:.2f}x import torch)"
    print(f"{name:<24} {seconds:6.2f} s{ratio}")
