"""ABMIL's prediction on the run's device against one CPU core: the figure ``full_scale.py --gpu-abmil-ms`` assumes.

    python benchmarks/abmil_device.py [--device cuda] [--bags 12] [--tiles 10000] [--dim 512]

A few-shot WSI cell trains 25 ABMIL models (k = 1-16 x 5 draws) and runs each over every tile of every test slide
(``abmil_classify``). This times that pass for 25 models over ``--bags`` memory-mapped bags of ``--tiles`` tiles:
on one CPU thread (a scoring task's), and on ``--device`` (default: CUDA where it is available), as a GPU run does.
It prints milliseconds per bag for each, their ratio, and checks both predict the same classes. Without a GPU it
prints the CPU figure and says that the device's could not be measured.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pathboard.core.science.abmil import GatedABMIL, abmil_classify

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--device", default=None, help="cuda[:N] or mps (default: cuda where available)")
ap.add_argument("--bags", type=int, default=12)
ap.add_argument("--tiles", type=int, default=10_000)
ap.add_argument("--dim", type=int, default=512, help="tile embedding width (full_scale.py's synthetic models: 512)")
ap.add_argument("--repeats", type=int, default=3)
args = ap.parse_args()


def per_bag_ms(models, bags, device: str) -> tuple[float, np.ndarray]:
    """(median milliseconds per bag over ``--repeats`` passes, the predictions), after one untimed bag (a device's
    first call sets up its context and kernels)."""
    abmil_classify(models, bags[:1], device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = abmil_classify(models, bags, device)  # each bag's predictions come back to the host: synchronised
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(bags) * 1e3, out


def main() -> None:
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    torch.set_num_threads(1)  # a scoring task's one CPU
    folder = Path(tempfile.mkdtemp(prefix="pathboard-abmil-"))
    rng = np.random.default_rng(0)
    np.save(folder / "bags.npy", rng.normal(size=(args.bags * args.tiles, args.dim)).astype(np.float32))
    cached = np.load(folder / "bags.npy", mmap_mode="r")  # read-only, memory-mapped: as the cache hands them over
    bags = [cached[i * args.tiles:(i + 1) * args.tiles] for i in range(args.bags)]
    torch.manual_seed(0)
    models = [GatedABMIL(args.dim, 2).eval() for _ in range(25)]
    print(f"25 ABMIL models x {args.bags} bags of {args.tiles:,} tiles x {args.dim} dims")
    cpu_ms, cpu_out = per_bag_ms(models, bags, "cpu")
    print(f"  one CPU thread: {cpu_ms:8.2f} ms a bag")
    if device is None:
        print("  no GPU here: the device's figure could not be measured (full_scale.py assumes --gpu-abmil-ms)")
    else:
        dev_ms, dev_out = per_bag_ms(models, bags, device)
        same = float(np.mean(dev_out == cpu_out))
        print(f"  {device}: {dev_ms:8.2f} ms a bag, {cpu_ms / dev_ms:.0f}x the CPU's; the same class in {same:.1%} "
              "of the predictions")
    os.remove(folder / "bags.npy")
    folder.rmdir()


if __name__ == "__main__":
    main()
