"""What two models cost to run, measured by pathboard's own cost recording on the real samples.

    python benchmarks/model_cost.py DATA_ROOT [--device cpu|cuda] [--precision fp32|bf16|fp16]
                                              [--batch-size 64] [--workers 2]

QuiltNet-B-32 (open_clip ViT-B/32) and PLIP (transformers CLIP ViT-B/32) are written at their real
architecture sizes, random-init (the published weights cannot be downloaded here; the forward cost is
the same), in the exact on-disk layouts of ``hf-hub:wisdomik/QuiltNet-B-32`` and ``vinid/plip``, and
loaded by pathboard's production loaders with ``HF_HUB_OFFLINE=1``. Then ``pathboard run --tasks
zeroshot`` embeds CRC-VAL-HE-7K and LC25000-lung from ``DATA_ROOT`` (``../shared/data``) with a cold
cache, and the script prints the ``costs`` rows the run stored: parameters, images/s, peak memory and
wall time per dataset, with the device and precision, and the throughput ratio of the two models.
A second, fully cached run shows that no throughput is claimed when nothing was embedded.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

work = Path(tempfile.mkdtemp(prefix="pathboard-cost-"))
os.environ.update(HF_HOME=str(work / "hf"), HF_HUB_OFFLINE="1", PATHBOARD_CACHE=str(work / "cache"))

import duckdb  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny import write_clip_bpe_tokenizer  # noqa: E402  (CLIP's BPE files, as HF CLIP repos ship them)

from pathboard.core.engine.plan import RunConfig, plan  # noqa: E402
from pathboard.core.engine.run import execute  # noqa: E402
from pathboard.testing import OPENAI_MEAN, OPENAI_STD, hf_snapshot, write_open_clip_dir  # noqa: E402


def quiltnet(out: Path) -> Path:
    import open_clip

    config = {"model_cfg": {**open_clip.get_model_config("ViT-B-32"), "quick_gelu": True},
              "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD}}
    return write_open_clip_dir(out, config)


def plip(out: Path) -> Path:
    import json

    import torch
    from transformers import CLIPConfig, CLIPModel

    out.mkdir(parents=True, exist_ok=True)
    config = CLIPConfig()  # transformers' defaults are OpenAI's ViT-B/32, PLIP's architecture
    config.save_pretrained(out)
    torch.manual_seed(0)
    torch.save(CLIPModel(config).state_dict(), out / "pytorch_model.bin")
    write_clip_bpe_tokenizer(out)
    (out / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "image_mean": OPENAI_MEAN, "image_std": OPENAI_STD, "resample": 3, "size": 224}))
    return out


ap = argparse.ArgumentParser()
ap.add_argument("data_root", type=Path)
ap.add_argument("--device", default="cpu")
ap.add_argument("--precision", default="fp32")
ap.add_argument("--batch-size", type=int, default=64)
ap.add_argument("--workers", type=int, default=2)
args = ap.parse_args()

for repo, build in (("wisdomik/QuiltNet-B-32", quiltnet), ("vinid/plip", plip)):
    folder = build(work / repo.split("/")[1])
    hf_snapshot(work / "hf", repo, {f.name: f for f in folder.iterdir()})

db = work / "cost.duckdb"
cfg = RunConfig(models="quiltnet-b32,plip", datasets="crc-val-he-7k,lc25000-lung", tasks="zeroshot",
                prompt_modes="single", data_root=str(args.data_root), db=str(db), device=args.device,
                precision=args.precision, batch_size=args.batch_size, workers=args.workers)
for label in ("cold cache", "warm cache"):
    summary = execute(plan(cfg), cfg)
    assert not summary.errors, summary.errors
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT model, dataset, device, precision, params, images, images_per_s, peak_memory_bytes, memory_kind, "
        "wall_seconds FROM costs WHERE run_id = ? ORDER BY created_at", [summary.run_id]).fetchall()
    print(f"\n{label}: run {summary.run_id}")
    print(f"{'model':14} {'dataset':15} {'device':7} {'prec':5} {'params':>8} {'images':>7} {'img/s':>7} "
          f"{'peak MiB':>9} {'wall s':>7}  memory measured as")
    for model, dataset, device, precision, params, images, rate, peak, kind, wall in rows:
        print(f"{model:14} {dataset:15} {device:7} {precision:5} {params / 1e6:7.1f}M {images:7d} "
              f"{rate if rate is not None else float('nan'):7.1f} "
              f"{peak / 2**20 if peak is not None else float('nan'):9.0f} {wall:7.2f}  {kind}")
    if label == "cold cache":
        rate = {m: r for m, d, _, _, _, _, r, *_ in rows if d == "lc25000-lung"}
        print(f"\nthroughput ratio on lc25000-lung (600 images), quiltnet-b32 / plip: "
              f"{rate['quiltnet-b32'] / rate['plip']:.2f}")
