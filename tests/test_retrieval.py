"""Zero-shot cross-modal retrieval: recall on hand-built cases, pairs CSV end to end, the ARCH layout."""
import csv
import hashlib
import json

import duckdb
import numpy as np
import pytest
from helpers import pathboard
from PIL import Image
from test_fewshot import trained_lung  # noqa: F401  (the session's tiny CLIP trained on real patches)

from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import DatasetNotFoundError
from pathboard.plugins.datasets.pairs import pairs_from_spec
from pathboard.plugins.tasks.retrieval import first_hit_ranks, pairs_index, retrieval_metrics

METRICS = {f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} | {"mean_recall"}


def angles(degrees):
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_recall_at_k_on_a_hand_built_ranking():
    # 12 gallery items at 0, 10, ..., 110 degrees; the query at 0 degrees ranks them in that order
    gallery = angles(np.arange(12) * 10.0)
    queries = angles([0.0, 0.0, 0.0, 0.0])
    ranks = first_hit_ranks(queries, gallery, [[0], [3], [7], [11]])
    assert ranks.tolist() == [0, 3, 7, 11]
    m = {x.name: x for x in retrieval_metrics(ranks, np.array([0, 5]), n_boot=200)}
    assert m["i2t_recall@1"].value == 0.25  # only the first query has its item on top
    assert m["i2t_recall@5"].value == 0.5  # ranks 0 and 3 are in the top 5
    assert m["i2t_recall@10"].value == 0.75  # rank 11 is not in the top 10
    assert (m["t2i_recall@1"].value, m["t2i_recall@5"].value, m["t2i_recall@10"].value) == (0.5, 0.5, 1.0)
    assert m["mean_recall"].value == pytest.approx(np.mean([0.25, 0.5, 0.75, 0.5, 0.5, 1.0]))
    assert set(m) == METRICS and m["i2t_recall@1"].n == 4 and m["t2i_recall@1"].n == 2
    for x in m.values():
        assert x.ci_low <= x.value <= x.ci_high
    assert m["i2t_recall@5"].ci_high - m["i2t_recall@5"].ci_low > 0
    again = {x.name: x for x in retrieval_metrics(ranks, np.array([0, 5]), n_boot=200)}
    assert again == m  # seeded bootstrap


def test_several_correct_items_and_ties():
    gallery = angles(np.arange(12) * 10.0)
    query = angles([0.0])
    # any correct item counts: the best of items 9 and 2 is at rank 2
    assert first_hit_ranks(query, gallery, [[9, 2]]).tolist() == [2]
    # other correct items ranked above do not push a correct item down
    assert first_hit_ranks(query, gallery, [[0, 1, 2]]).tolist() == [0]
    # ties count against the query: equal scores give no free hit
    flat = np.ones((5, 2))
    assert first_hit_ranks(query, flat, [[3]]).tolist() == [4]
    # captions shared by images and images with several captions
    texts, img_pos, txt_pos = pairs_index([["a", "b"], ["b"], ["c"], ["d"]], np.array([True, True, True, False]))
    assert texts == ["a", "b", "c", "d"]  # the unreadable image's caption stays a distractor
    assert img_pos == [[0, 1], [1], [2]] and txt_pos == [[0], [0, 1], [2], []]


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
    m = {r[0]: r for r in rows}
    assert set(m) == METRICS and all(r[5] is None and r[6] == "" for r in rows)
    assert m["i2t_recall@1"][4] == 90 and m["t2i_recall@1"][4] == 6  # 90 images, 6 distinct captions
    for _, value, low, high, *_ in rows:
        assert low <= value <= high
    assert m["i2t_recall@5"][1] >= m["i2t_recall@1"][1] and m["t2i_recall@10"][1] >= m["t2i_recall@5"][1]
    # the same numbers from an independent computation: open_clip directly, a plain argsort per query
    expected = independent_recalls(weights, csv_path)
    print(f"retrieval: {({k: round(v[1], 3) for k, v in m.items()})}")
    for name, value in expected.items():
        assert m[name][1] == pytest.approx(value), name


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
    out = {}
    i2t = [{texts.index(t) for i2, t in pairs if i2 == i} for i in images]
    t2i = [{images.index(i) for i, t2 in pairs if t2 == t} for t in texts]
    for direction, scores, correct in (("i2t", sim, i2t), ("t2i", sim.T, t2i)):
        order = np.argsort(-scores, axis=1, kind="stable")
        for k in (1, 5, 10):
            out[f"{direction}_recall@{k}"] = np.mean([bool(set(o[:k]) & c) for o, c in zip(order, correct)])
    out["mean_recall"] = np.mean(list(out.values()))
    return out


def test_pairs_csv_errors_are_one_line(tmp_path):
    assert pairs_from_spec("folder:/x") is None
    with pytest.raises(DatasetNotFoundError, match="give a path"):
        pairs_from_spec("pairs-csv:")
    with pytest.raises(DatasetNotFoundError, match="is not a file"):
        pairs_from_spec(f"pairs-csv:{tmp_path / 'none.csv'}")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,text\na.png,x\n")
    with pytest.raises(DatasetNotFoundError, match="expected the header image_path,caption"):
        pairs_from_spec(f"pairs-csv:{bad}").manifest(tmp_path)
    missing = tmp_path / "missing.csv"
    missing.write_text("image_path,caption\nnope.png,x\n")
    with pytest.raises(DatasetNotFoundError, match="1 of 1 image"):
        pairs_from_spec(f"pairs-csv:{missing}").manifest(tmp_path)


def write_arch(root, shared_data):
    """books_set and pubmed_set as the official archives unpack, with real patches as images."""
    patches = sorted(f for f in (shared_data / "CRC-VAL-HE-7K").rglob("*") if f.is_file())
    books = root / "books_set"
    (books / "images").mkdir(parents=True)
    rows = {}

    def image(folder, uuid, ext, i):
        with Image.open(patches[i]) as im:
            im.convert("RGB").resize((32, 32)).save(folder / "images" / f"{uuid}.{ext}")

    # figure 00: three panels sharing one caption (a bag); figure 01: a single panel
    for i, letter in enumerate("ABC"):
        image(books, f"b-{i}", "png", i)
        rows[str(i)] = {"figure_id": "00", "letter": letter, "caption": " A, B, C: adenoma, three panels.",
                        "uuid": f"b-{i}"}
    image(books, "b-3", "png", 3)
    rows["3"] = {"figure_id": "01", "letter": "Single", "caption": "Mucinous carcinoma.", "uuid": "b-3"}
    rows["4"] = {"figure_id": "02", "letter": "Single", "caption": "A caption whose image is missing.",
                 "uuid": "b-missing"}
    (books / "captions.json").write_text(json.dumps(rows))
    pubmed = root / "ARCH" / "pubmed_set"  # also found one level down
    (pubmed / "images").mkdir(parents=True)
    image(pubmed, "p-0", "jpg", 4)
    image(pubmed, "p-1", "png", 5)
    image(pubmed, "p-2", "jpg", 6)
    (pubmed / "captions.json").write_text(json.dumps({
        "0": {"caption": "Lymphocytes.", "uuid": "p-0"}, "1": {"caption": "Stroma.", "uuid": "p-1"},
        "2": {"caption": "Stroma.", "uuid": "p-2"}, "3": {"caption": "Stroma, again.", "uuid": "p-2"}}))


def test_arch_layout_loads_with_the_right_counts(tmp_path, shared_data, tiny_hub, fresh_cache):
    root = tmp_path / "data"
    write_arch(root, shared_data)
    books, pubmed = plugins.get("dataset", "arch-books"), plugins.get("dataset", "arch-pubmed")
    assert books.tags["group"] == "general" and books.tags["organ"] == "multi" and "general" in pubmed.groups
    m = books.manifest(root)
    assert m.paths == ["images/b-0.png", "images/b-1.png", "images/b-2.png", "images/b-3.png"]
    assert books.captions(m) == [["A, B, C: adenoma, three panels."]] * 3 + [["Mucinous carcinoma."]]
    assert m.meta[3]["letter"] == "Single" and m.meta[0]["figure_id"] == "00"
    p = pubmed.manifest(root)
    assert p.root == root / "ARCH" / "pubmed_set" and len(p) == 3
    assert pubmed.captions(p) == [["Lymphocytes."], ["Stroma."], ["Stroma.", "Stroma, again."]]
    # captions are part of the manifest: editing one changes the hash
    rows = json.loads((root / "books_set" / "captions.json").read_text())
    rows["3"]["caption"] = "Signet ring cells."
    (root / "books_set" / "captions.json").write_text(json.dumps(rows))
    assert books.manifest(root).hash != m.hash

    cfg = RunConfig(models="quiltnet-b32", datasets="arch-books,arch-pubmed", tasks="retrieval,zeroshot",
                    data_root=str(root), db=str(tmp_path / "pb.duckdb"), workers=0)
    p_ = plan(cfg)
    assert [c.prompt_mode for c in p_.cells] == [None, None]
    assert any("does not declare task zeroshot" in s for s in p_.skipped)
    cells = {c["dataset"]: c["metrics"] for c in execute(p_, cfg).cells}
    assert set(cells["arch-books"]) == METRICS
    assert cells["arch-books"]["i2t_recall@1"].n == 4 and cells["arch-books"]["t2i_recall@1"].n == 2
    assert cells["arch-pubmed"]["i2t_recall@1"].n == 3 and cells["arch-pubmed"]["t2i_recall@1"].n == 3
    assert cells["arch-books"]["t2i_recall@5"].value == 1.0  # 4 images: everything is in the top 5
