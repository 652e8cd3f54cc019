"""Is embedding limited by the model's forward pass, or by decoding and Python overhead?

    python benchmarks/embed_pipeline.py DATA_ROOT [--arch ViT-B-16] [--batch-size 64] [--workers 2]

On the real CRC-VAL-HE-7K sample (repeated to 512 images) it times, in one run:
  decode: the DataLoader alone (open, decode, preprocess) with the given workers;
  forward: the model alone on preprocessed tensors already in memory;
  pipeline: pathboard's embed_images end to end (decode + forward + cache writes).
and prints pipeline / forward. Near 1.0 means the forward pass is the bottleneck.
Random-init weights of the real architecture size: the forward cost is what matters here.
"""
import argparse
import tempfile
import time
from pathlib import Path

import open_clip
import torch
from torch.utils.data import DataLoader

from pathboard.adapters.openclip import OpenCLIPModel
from pathboard.core.embedding.cache import EmbeddingCache
from pathboard.core.embedding.embedder import ImageFiles, _collate, embed_images
from pathboard.core.engine import plugins
from pathboard.core.interfaces.model import Runtime

ap = argparse.ArgumentParser()
ap.add_argument("data_root", type=Path)
ap.add_argument("--arch", default="ViT-B-16")
ap.add_argument("--batch-size", type=int, default=64)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--images", type=int, default=512)
ap.add_argument("--device", default="cpu")
args = ap.parse_args()

manifest = plugins.get("dataset", "crc-val-he-7k").manifest(args.data_root)
paths = (manifest.paths * (args.images // len(manifest.paths) + 1))[: args.images]
runtime = Runtime.create(args.device)
net, _, preprocess = open_clip.create_model_and_transforms(args.arch, device=runtime.device)
model = OpenCLIPModel("bench", "-", net.eval(), preprocess, None, runtime)

loader = DataLoader(ImageFiles(manifest.root, paths, preprocess), batch_size=args.batch_size,
                    num_workers=args.workers, collate_fn=_collate)
t0 = time.perf_counter()
batches = [images for _, images, *_ in loader]
decode = time.perf_counter() - t0

model.encode_images(batches[0][:2])  # warm-up
t0 = time.perf_counter()
for images in batches:
    model.encode_images(images)
forward = time.perf_counter() - t0

with tempfile.TemporaryDirectory() as tmp:
    with EmbeddingCache(Path(tmp)).writer("bench", len(paths), {}) as write:
        t0 = time.perf_counter()
        embed_images(model, manifest.root, paths, write, batch_size=args.batch_size, workers=args.workers,
                     desc="pipeline")
        pipeline = time.perf_counter() - t0

n = len(paths)
print(f"{args.arch} on {runtime.device}, {n} images, batch {args.batch_size}, {args.workers} workers, "
      f"{torch.get_num_threads()} torch threads")
print(f"decode only   {decode:6.2f} s  {n / decode:7.1f} img/s")
print(f"forward only  {forward:6.2f} s  {n / forward:7.1f} img/s")
print(f"pipeline      {pipeline:6.2f} s  {n / pipeline:7.1f} img/s")
print(f"pipeline / forward = {pipeline / forward:.2f}")
