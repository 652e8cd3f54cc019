"""Near-duplicate grouping: candidates then verification, against comparing every pair, at 1k, 5k and 15k images.

    python benchmarks/grouping.py [DATA_ROOT] [--sizes 1000,5000,15000] [--exhaustive-up-to 5000] [--neighbours 64]
                                  [--first-run 15000] [--distinct 3000]

LC25000 has about 20 augmented copies of each original. The benchmark builds sets like it from the 600 real
LC25000 lung images of the shared sample: each image of a set is one of them, rotated by up to 25 degrees,
cropped to its largest upright square and resized back (as the Augmentor package made LC25000), then turned
or flipped, so n images hold about n / 600 copies of each original. For each size it prints the seconds of
hashing (the transforms of every image), of the candidate search and verification, and of comparing every
pair (up to ``--exhaustive-up-to`` images); the links and groups the candidates find of the exhaustive ones;
and the log-log slope of each stage's seconds over the sizes.

Then the first run as a user meets it (``--first-run`` images, 0 to skip): LC25000's lung set at its real size
(3 classes of 5,000 JPEGs of 768 px) is written from the same copies (``--distinct`` different ones, upscaled to
768 px, each linked into the set several times), and ``pathboard run --models quiltnet-b32 --datasets lc25000-lung
--tasks zeroshot`` runs on it with a tiny QuiltNet (random weights, written into a private offline HF cache). It
prints the run's own ``time: grouping`` line against its ``time: image embedding`` line (the goal: grouping <= 10%
of embedding; the groups are found from the thumbnails the embedding's workers keep of the images they decode).
What keeping them costs the embedding is timed apart (its DataLoader over 3,000 of the files, without and with
thumbnails, alternated: two whole runs differ by more than that on this machine). Then where the grouping's seconds
go when every image is read for it instead (reading, hashing, candidates and verification), timed again in this
process on the same files.
"""
import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.core.paths import usable_cpus
from pathboard.core.science import grouping

ap = argparse.ArgumentParser()
ap.add_argument("data_root", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
ap.add_argument("--sizes", default="1000,5000,15000")
ap.add_argument("--exhaustive-up-to", type=int, default=5000)
ap.add_argument("--neighbours", type=int, default=grouping.NEIGHBOURS, help="candidates per image")
ap.add_argument("--first-run", type=int, default=15000, help="images of the end-to-end first run (0: skip it)")
ap.add_argument("--distinct", type=int, default=3000, help="different files among them")
args = ap.parse_args()
folder = args.data_root / "lung_colon_image_set" / "lung_image_sets"
originals = []
for path in sorted(folder.glob("*/*.jpeg")):
    with Image.open(path) as img:
        img.draft("RGB", (192, 192))  # JPEG decoded at 1/4 scale: the grouping reduces to 32 px anyway
        originals.append(img.convert("RGB").resize((192, 192), Image.BILINEAR))
print(f"{len(originals)} real LC25000 lung images from {folder}")
TURNS = [None, *Image.Transpose]


def copy(img: Image.Image, rng) -> Image.Image:
    angle = float(rng.uniform(-25, 25))
    w = img.size[0]
    side = w / (np.cos(np.deg2rad(abs(angle))) + np.sin(np.deg2rad(abs(angle))))
    o = (w - side) / 2
    out = img.rotate(angle, resample=Image.BICUBIC).crop((round(o), round(o), round(o + side), round(o + side)))
    out = out.resize((w, w), Image.BICUBIC)
    turn = TURNS[int(rng.integers(len(TURNS)))]
    return out if turn is None else out.transpose(turn)


def against_truth(first, source) -> str:
    """How the groups keep the copies of one original together (the share of such pairs in one group) and
    how many pairs of copies of different originals they join: the truth is known here."""
    together = joined = 0
    for members in canon(first):
        counts = np.bincount(source[list(members)])
        same = int((counts * (counts - 1) // 2).sum())
        together += same
        joined += len(members) * (len(members) - 1) // 2 - same
    counts = np.bincount(source)
    total = int((counts * (counts - 1) // 2).sum())
    return f"{together / total:.3f} of same-original pairs together, {joined} pairs of different originals joined"


def canon(first) -> set:
    out: dict = {}
    for i, root in enumerate(first):
        out.setdefault(root, []).append(i)
    return {tuple(v) for v in out.values()}


rng = np.random.default_rng(0)
grouping.group_images(np.random.default_rng(1).normal(size=(300, grouping.CHANNELS, grouping.SIZE, grouping.SIZE)))
sizes = [int(s) for s in args.sizes.split(",")]
rows = []
for n in sizes:
    source = rng.integers(0, len(originals), size=n)
    reduced = np.stack([grouping.reduce_image(copy(originals[s], rng)) for s in source])
    start = time.perf_counter()
    ident, variants = grouping.hashes(reduced)
    hashing = time.perf_counter() - start
    start = time.perf_counter()
    found = grouping.candidate_near_pairs(ident, variants, grouping.candidate_pairs(reduced, args.neighbours))
    candidates = time.perf_counter() - start
    row = {"n": n, "hash": hashing, "candidates": candidates, "exhaustive": float("nan"), "links": "", "groups": ""}
    if n <= args.exhaustive_up_to:
        start = time.perf_counter()
        every = grouping.near_pairs(ident, variants)
        row["exhaustive"] = time.perf_counter() - start
        links = {(min(i, j), max(i, j)) for i, j, _ in every}
        got = {(min(i, j), max(i, j)) for i, j, _ in found}
        groups = canon(grouping._components(n, links))
        same = groups & canon(grouping._components(n, got))
        row["links"] = f"{len(got & links)}/{len(links)} (false {len(got - links)})"
        row["groups"] = f"{len(same)}/{len(groups)}"
    rows.append(row)
    print(f"n = {n:>6,}: hash {row['hash']:7.1f} s, candidates + verification {row['candidates']:6.1f} s, "
          f"every pair {row['exhaustive']:7.1f} s; links found {row['links'] or '-'}, groups unchanged "
          f"{row['groups'] or '-'}", flush=True)
    print(f"    candidates: {against_truth(grouping._components(n, [(i, j) for i, j, _ in found]), source)}"
          + (f"; every pair: {against_truth(grouping._components(n, list(links)), source)}"
             if n <= args.exhaustive_up_to else ""), flush=True)


def slope(key: str) -> float:
    points = [(r["n"], r[key]) for r in rows if r[key] == r[key]]
    if len(points) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


print(f"fitted exponent (seconds ~ n^k): hashing {slope('hash'):.2f}, candidates + verification "
      f"{slope('candidates'):.2f}, every pair {slope('exhaustive'):.2f}")
both = [r for r in rows if r["exhaustive"] == r["exhaustive"]]
if both:
    last = both[-1]
    print(f"at n = {last['n']:,}: the candidates take {last['candidates'] / last['exhaustive']:.3f} of comparing "
          f"every pair; the whole grouping (hash + candidates) {last['hash'] + last['candidates']:.1f} s against "
          f"{last['hash'] + last['exhaustive']:.1f} s")


def first_run(n: int, distinct: int) -> None:
    """LC25000's lung set at its real size, from the sample's copies; one cold ``pathboard run`` on it."""
    work = Path(tempfile.mkdtemp(prefix="pathboard-grouping-"))
    atexit.register(shutil.rmtree, work, True)
    os.environ.update({"HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1", "PATHBOARD_CACHE": str(work / "cache")})
    import logging

    from pathboard.testing import TINY_OPEN_CLIP, hf_snapshot, write_open_clip_dir

    logging.getLogger().setLevel(logging.ERROR)  # open_clip says the weights it writes are random: they are
    weights = write_open_clip_dir(work / "tiny", TINY_OPEN_CLIP)
    hf_snapshot(work / "hf", "wisdomik/QuiltNet-B-32", {f.name: f for f in weights.iterdir()})
    lung = work / "data" / "lung_colon_image_set" / "lung_image_sets"
    classes = ["lung_aca", "lung_n", "lung_scc"]
    for c in classes:
        (lung / c).mkdir(parents=True)
    made = work / "made"
    made.mkdir()

    def make(i: int) -> Path:
        out, r = made / f"{i}.jpeg", np.random.default_rng(i)
        copy(originals[int(r.integers(len(originals)))], r).resize((768, 768), Image.BICUBIC).save(out, quality=90)
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        files = list(pool.map(make, range(distinct)))
    for i in range(n):
        c = classes[i * len(classes) // n]
        os.link(files[i % distinct], lung / c / f"{c.replace('_', '')}{i}.jpeg")
    size = sum(f.stat().st_size for f in files) / len(files) / 1e3
    print(f"first run: {n:,} files of 768 px in LC25000's layout ({distinct:,} different, {size:.0f} KB each), "
          f"written in {time.perf_counter() - start:.0f} s", flush=True)
    def run(cache: Path) -> tuple[dict[str, float], float]:
        start = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).with_name("pathboard")), "run", "--models", "quiltnet-b32",
                              "--datasets", "lc25000-lung", "--data-root", str(work / "data"), "--tasks", "zeroshot",
                              "--prompt-modes", "single", "--db", str(cache / "pb.duckdb")],
                             capture_output=True, text=True, env={**os.environ, "PATHBOARD_CACHE": str(cache)})
        if out.returncode:
            sys.exit(out.stderr.strip().splitlines()[-1])
        return ({m[0]: float(m[1]) for m in re.findall(r"time: ([a-z ]+?) +(\d+\.\d+) s", out.stderr)},
                time.perf_counter() - start)

    seconds, wall = run(work / "cache")
    group, embed = seconds.get("grouping", float("nan")), seconds.get("image embedding", float("nan"))
    print(f"  pathboard run: grouping {group:.1f} s, image embedding {embed:.1f} s (tiny model): grouping / embedding "
          f"= {group / embed:.3f} (goal <= 0.10); the whole run {wall:.1f} s")
    paths = sorted(str(p.relative_to(lung)) for p in lung.glob("*/*.jpeg"))
    thumbnails_cost(lung, paths[:3000], n)
    start = time.perf_counter()
    with ThreadPoolExecutor(usable_cpus()) as pool:
        reduced = np.stack(list(pool.map(lambda p: grouping.load(lung / p), paths)))
    reading = time.perf_counter() - start
    start = time.perf_counter()
    ident, variants = grouping.hashes(reduced)
    hashing = time.perf_counter() - start
    start = time.perf_counter()
    for c in classes:  # as the loader groups: each class folder apart
        mine = np.array([p.startswith(c + "/") for p in paths])
        grouping.candidate_near_pairs(ident[mine], variants[mine], grouping.candidate_pairs(reduced[mine]))
    verifying = time.perf_counter() - start
    print(f"  the same grouping in this process: reading {reading:.1f} s ({reading / n * 1e3:.2f} ms an image on "
          f"{usable_cpus()} threads: what grouping costs where the images are not embedded now, e.g. embeddings cached "
          f"by an older pathboard), hashing {hashing:.1f} s, candidates and verification {verifying:.1f} s")


def thumbnails_cost(root: Path, paths: list[str], n: int, repeats: int = 3) -> None:
    """What keeping each image's thumbnail costs the embedding: its DataLoader (2 workers decoding and preprocessing
    as open_clip's ViT-B/32 does, no forward) over ``paths``, without and with thumbnails, alternated."""
    import open_clip
    from torch.utils.data import DataLoader

    from pathboard.core.embedding.embedder import ImageFiles, _collate

    preprocess = open_clip.image_transform(224, is_train=False)

    def one(thumbnail) -> float:
        start = time.perf_counter()
        for _ in DataLoader(ImageFiles(root, paths, preprocess, None, thumbnail), batch_size=64, num_workers=2,
                            collate_fn=_collate):
            pass
        return time.perf_counter() - start

    plain, kept = [], []
    for _ in range(repeats):
        plain.append(one(None))
        kept.append(one(grouping.thumbnail))
    a, b = float(np.median(plain)), float(np.median(kept))
    print(f"  keeping the thumbnails in the embedding's DataLoader ({len(paths):,} of these files, 2 workers, "
          f"median of {repeats} alternated): {a:.2f} s without, {b:.2f} s with, {(b - a) / len(paths) * 1e3:+.2f} ms "
          f"an image, so {(b - a) * n / len(paths):+.1f} s of the first run's embedding")


if args.first_run:
    first_run(args.first_run, min(args.distinct, args.first_run))
