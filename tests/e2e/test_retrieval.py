"""Image-caption retrieval through the CLI: a pairs CSV scored with a tiny CLIP trained on real patches."""
import csv
import hashlib

import duckdb
import numpy as np
import pytest
from PIL import Image
from support.helpers import pathboard

from pathboard.core.engine import plugins
from pathboard.plugins.datasets.pairs import pairs_from_spec

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

METRICS = {f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} | {"mean_recall"}


def write_pairs_csv(path, held_out, per_class):
    names = {"lung_aca": "lung adenocarcinoma", "lung_n": "benign lung tissue",
             "lung_scc": "lung squamous cell carcinoma"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_path", "caption"])
        (path.parent / "img").mkdir(parents=True, exist_ok=True)
        for c, files in held_out.items():
            for f in files[:per_class]:
                # names that do not sort by class, so a caption misaligned by one row is a wrong class
                name = f"img/{hashlib.sha1(f.name.encode()).hexdigest()[:10]}.jpeg"
                (path.parent / name).symlink_to(f)
                w.writerow([name, f"an H&E image of {names[c]}."])
                w.writerow([name, f"{names[c]}."])  # a second caption per image
    return path


def independent_recalls(weights, csv_path):
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(
        f"local-dir:{weights}", pretrained=str(weights / "open_clip_pytorch_model.bin"))
    tokenizer = open_clip.get_tokenizer(f"local-dir:{weights}")
    with open(csv_path, newline="") as fh:
        pairs = [(r["image_path"], r["caption"]) for r in csv.DictReader(fh)]
    images, texts = sorted({i for i, _ in pairs}), sorted({t for _, t in pairs})
    with torch.no_grad():
        batch = []
        for i in images:
            with Image.open(csv_path.parent / i) as im:
                batch.append(preprocess(im.convert("RGB")))
        img = torch.nn.functional.normalize(model.eval().encode_image(torch.stack(batch)), dim=-1).numpy()
        txt = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1).numpy()
    sim = img @ txt.T
    distinct = {}  # each distinct caption once, correct for every image that has it
    i2t = [{texts.index(t) for i2, t in pairs if i2 == i} for i in images]
    t2i = [{images.index(i) for i, t2 in pairs if t2 == t} for t in texts]
    for direction, scores, correct in (("i2t", sim, i2t), ("t2i", sim.T, t2i)):
        order = np.argsort(-scores, axis=1, kind="stable")
        for k in (1, 5, 10):
            distinct[f"{direction}_recall@{k}"] = np.mean([bool(set(o[:k]) & c) for o, c in zip(order, correct)])
    distinct["mean_recall"] = np.mean(list(distinct.values()))
    # CLIP_benchmark's convention: a text per (image, caption) pair, correct for its own image only. The
    # 30 images of a class share its captions, so their pair texts tie exactly: averaged over 300 random
    # orders of the tied items, as torch.topk leaves their order arbitrary
    pair_sim = sim[:, [texts.index(t) for _, t in pairs]]  # [images, pairs]
    owner = np.array([images.index(i) for i, _ in pairs])
    rng = np.random.default_rng(0)
    hits = {f"{d}_recall@{k}": [] for d in ("i2t", "t2i") for k in (1, 5, 10)}
    for _ in range(300):
        shuffle = rng.permutation(len(pairs))  # a random order among equal scores: a stable sort of a shuffle
        order = shuffle[np.argsort(-pair_sim[:, shuffle], axis=1, kind="stable")]
        back = rng.permutation(len(images))
        t_order = back[np.argsort(-pair_sim.T[:, back], axis=1, kind="stable")]
        for k in (1, 5, 10):
            hits[f"i2t_recall@{k}"].append(np.mean([(owner[o[:k]] == i).any() for i, o in enumerate(order)]))
            hits[f"t2i_recall@{k}"].append(np.mean([(o[:k] == owner[t]).any() for t, o in enumerate(t_order)]))
    pairs_convention = {name: float(np.mean(v)) for name, v in hits.items()}
    pairs_convention["mean_recall"] = float(np.mean(list(pairs_convention.values())))
    return pairs_convention, distinct


def test_pairs_csv_runs_end_to_end_through_the_cli(tmp_path, trained_lung, fresh_cache):  # noqa: F811
    weights, held_out = trained_lung
    csv_path = write_pairs_csv(tmp_path / "pairs" / "lung.csv", held_out, per_class=30)
    dataset = pairs_from_spec(f"pairs-csv:{csv_path}")
    assert dataset.id == f"pairs-csv:{csv_path.resolve()}" and plugins.applicable_tasks(dataset) == {"retrieval"}
    manifest = dataset.manifest(tmp_path)
    assert len(manifest) == 90 and all(len(c) == 2 for c in dataset.captions(manifest))
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--weights", f"quiltnet-b32={weights}", "--tasks",
                    "retrieval", "--datasets", f"pairs-csv:{csv_path}", "--db", db, "--workers", "0")
    assert out.returncode == 0, out.stderr
    assert "i2t_recall@1" in out.stdout
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT metric, value, ci_low, ci_high, n, prompt_mode, variant FROM leaderboard "
        "WHERE task = 'retrieval'").fetchall()
    m = {r[0]: r for r in rows if r[6] == ""}  # the headline: CLIP_benchmark's convention
    d = {r[0]: r for r in rows if r[6] == "captions=distinct"}  # pathboard's earlier one
    assert set(m) == set(d) == METRICS and all(r[5] is None for r in rows)
    assert m["i2t_recall@1"][4] == 90 and m["t2i_recall@1"][4] == 180  # 90 images, 180 (image, caption) pairs
    assert d["i2t_recall@1"][4] == 90 and d["t2i_recall@1"][4] == 6  # 6 distinct captions
    for _, value, low, high, *_ in rows:
        assert low <= value <= high
    assert m["i2t_recall@5"][1] >= m["i2t_recall@1"][1] and m["t2i_recall@10"][1] >= m["t2i_recall@5"][1]
    # the same numbers from an independent computation: open_clip directly, argsorts per query
    pairs_convention, distinct = independent_recalls(weights, csv_path)
    print(f"retrieval: {({k: round(v[1], 3) for k, v in m.items()})}")
    for name, value in distinct.items():
        assert d[name][1] == pytest.approx(value), name
    for name, value in pairs_convention.items():  # the expectation over random orders of tied texts
        assert m[name][1] == pytest.approx(value, abs=0.02), name
