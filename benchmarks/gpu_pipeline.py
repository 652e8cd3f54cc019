"""Does pathboard's embedding path keep the accelerator busy? Pipeline throughput / raw forward throughput.

    python benchmarks/gpu_pipeline.py /work/shared/data --images 512 [--arch ViT-B-32] [--batch-size 64]
                                      [--workers W] [--device cuda|cpu] [--precisions fp32,bf16]

On the real CRC-VAL-HE-7K sample (its paths repeated to ``--images``), per precision, it times:
  forward: ``model.encode_images`` alone on the same images, already decoded and preprocessed into
    tensors in memory, same batch size, after one warm-up batch (on CUDA, synchronised before each clock read);
  pipeline: what a cold single-mode ``pathboard run`` spends embedding, i.e. ``Embedder.images`` end to end
    with a fresh cache (decode in DataLoader workers, preprocess, forward, shard publishing, cache assembly),
    minus the same call warm (everything cached), so that only embedding work is left.
and prints pipeline / forward for each of ``--runs`` alternating runs, their median and spread; the goal is
>= 0.95. The model is loaded (and warmed up) before any clock
runs: the Embedder gets a callable returning it, as ``LazyModel`` would. Random-init weights of the real
architecture size (QuiltNet is ViT-B-32): the forward cost is what matters. On CPU pathboard runs fp32 only,
so bf16 is skipped there. Workers default to ``pathboard run --workers``'s default.
"""
import argparse
import dataclasses
import hashlib
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import open_clip
import torch
from torch.utils.data import DataLoader

from pathboard.adapters.openclip import OpenCLIPModel
from pathboard.core.embedding.cache import EmbeddingCache
from pathboard.core.embedding.embedder import Embedder, ImageFiles, _collate
from pathboard.core.engine import plugins
from pathboard.core.interfaces.model import Runtime, size_threads

ap = argparse.ArgumentParser()
ap.add_argument("data_root", type=Path, nargs="?", default=Path(__file__).resolve().parents[2] / "shared" / "data")
ap.add_argument("--arch", default="ViT-B-32")
ap.add_argument("--images", type=int, default=512)
ap.add_argument("--batch-size", type=int, default=64)
ap.add_argument("--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) // 2)))  # as pathboard run
ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
ap.add_argument("--precisions", default="fp32,bf16")
ap.add_argument("--threads", type=int, default=None, help="torch threads of the pipeline [pathboard run's sizing]")
ap.add_argument("--runs", type=int, default=3, help="forward and pipeline timed this many times, alternately")
args = ap.parse_args()
n, cuda = args.images, args.device.startswith("cuda")


def clock() -> float:
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()


dataset = plugins.get("dataset", "crc-val-he-7k")
base = dataset.manifest(args.data_root)
idx = np.resize(np.arange(len(base)), n)  # the sample's paths repeated to n items, as a manifest of its own
manifest = dataclasses.replace(
    base, paths=[base.paths[i] for i in idx], labels=base.labels[idx], splits=[base.splits[i] for i in idx],
    meta=[base.meta[i] for i in idx] if base.meta else [],
    hash=hashlib.sha256(f"{base.hash}\nrepeated to {n}".encode()).hexdigest())

torch.manual_seed(0)
net, _, preprocess = open_clip.create_model_and_transforms(args.arch, device=args.device)
net.eval()
loader = DataLoader(ImageFiles(manifest.root, manifest.paths, preprocess, dataset.open_image),
                    batch_size=args.batch_size, num_workers=args.workers, collate_fn=_collate)
batches = [images.pin_memory() if cuda else images for _, images, *_ in loader]  # pinned, as the pipeline's

all_threads = torch.get_num_threads()  # the raw forward gets every core: the best the model can do here
print(f"{args.arch} on {args.device}, {n} images (CRC-VAL-HE-7K x{n / len(base):.3g}), batch {args.batch_size}, "
      f"{args.workers} workers; torch threads: forward {all_threads}, pipeline {args.threads or 'sized'}")
for precision in args.precisions.split(","):
    runtime = Runtime.create(args.device, precision)
    if runtime.precision != precision:
        print(f"{precision}: skipped on {args.device}: pathboard runs {runtime.precision} there")
        continue
    model = OpenCLIPModel(f"bench-{args.arch}", "-", net, preprocess, None, runtime)
    torch.set_num_threads(all_threads)
    model.encode_images(batches[0])  # warm-up: kernels, autocast caches, allocator
    ratios = []
    for run in range(1, args.runs + 1):
        torch.set_num_threads(all_threads)
        t0 = clock()
        for images in batches:
            model.encode_images(images)
        forward = clock() - t0
        threads = size_threads(args.threads)  # as pathboard run sizes them

        with tempfile.TemporaryDirectory() as tmp:
            spec = SimpleNamespace(id=f"bench-{args.arch}")
            embedder = Embedder(spec, lambda loaded=model: loaded, "-", runtime, EmbeddingCache(Path(tmp)),
                                args.batch_size, args.workers)
            t0 = clock()
            embedder.images(dataset, manifest)
            cold = clock() - t0
            forwards = embedder.image_forwards
            assert embedder.images_embedded == n and forwards == -(-n // args.batch_size), (embedder.images_embedded,
                                                                                             forwards)
            t0 = clock()
            embedder.images(dataset, manifest)
            warm = clock() - t0
            assert embedder.images_embedded == n and embedder.image_forwards == forwards, "the warm call embedded"
        pipeline = cold - warm
        ratios.append(forward / pipeline)
        print(f"{precision} run {run}: forward {forward:6.2f} s {n / forward:7.1f} img/s ({len(batches)} batches); "
              f"pipeline {pipeline:6.2f} s {n / pipeline:7.1f} img/s ({threads} threads; cold {cold:.2f} s - warm "
              f"{warm:.3f} s); pipeline / forward = {ratios[-1]:.2f}")
    print(f"{precision}: pipeline / forward over {len(ratios)} runs: median {np.median(ratios):.2f}, spread "
          f"{min(ratios):.2f}-{max(ratios):.2f} (goal >= 0.95)")
