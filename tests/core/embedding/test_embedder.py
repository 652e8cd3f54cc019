"""The embedder: batches cut at shard boundaries, shard-by-shard equal to one pass, channels-last, the
out-of-memory backoff, non-finite embeddings counted as failures, and cache keys that name everything."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from support.helpers import mirror

from pathboard.core.embedding.cache import EmbeddingCache
from pathboard.core.embedding.embedder import NONFINITE, Embedder, _loader
from pathboard.core.engine import plugins
from pathboard.core.interfaces.dataset import ImageFolderDataset
from pathboard.core.interfaces.model import Runtime
from pathboard.core.media.tiling import Tiling
from pathboard.core.science import grouping


class MeanColour:
    """A stand-in model: the mean colour of a 32 px copy (the forward costs nothing)."""

    id, fingerprint, runtime = "stub", "stub", Runtime()

    @staticmethod
    def preprocess(img):
        return torch.from_numpy(np.asarray(img.resize((32, 32)), dtype=np.float32).transpose(2, 0, 1) / 255)

    def encode_images(self, batch):
        return torch.nn.functional.normalize(batch.mean(dim=(2, 3)) + 0.01, dim=-1)


class NaNWhereBright(MeanColour):
    """The mean colour, NaN (an fp16 overflow) for bright images."""

    def encode_images(self, batch):
        out = super().encode_images(batch)
        out[batch.mean(dim=(1, 2, 3)) > 0.95] = float("nan")
        return out


def embedder(tmp_path):
    return Embedder(type("Spec", (), {"id": "stub"})(), lambda: NaNWhereBright(), "stub", Runtime(),
                    EmbeddingCache(tmp_path / "cache"), batch_size=4, workers=0)


def test_nonfinite_image_embeddings_are_failed_items(tmp_path, shared_data):
    root = tmp_path / "data"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC")
    Image.new("RGB", (64, 64), (250, 250, 250)).save(root / "CRC" / "ADI" / "zz-white.png")
    dataset = ImageFolderDataset(id="crc", folder="CRC", classes=["ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR",
                                                                   "TUM"])
    manifest = dataset.manifest(root)
    images = embedder(tmp_path).images(dataset, manifest)
    white = manifest.paths.index("ADI/zz-white.png")
    assert images.failed == {"ADI/zz-white.png": NONFINITE}
    assert not images.valid[white] and images.valid.sum() == len(manifest) - 1


def test_nonfinite_tiles_are_left_out_and_counted(tmp_path):
    root = tmp_path / "data"
    (root / "tiles" / "a").mkdir(parents=True)
    img = np.zeros((128, 128, 3), dtype=np.uint8)
    img[:, 64:] = 255  # the right half is bright: its windows embed to NaN
    Image.fromarray(img).save(root / "tiles" / "a" / "half.png")
    dataset = ImageFolderDataset(id="tiles", folder="tiles", classes=["a"])
    manifest = dataset.manifest(root)
    tiles = embedder(tmp_path).slide(dataset, manifest, "a/half.png", Tiling(size=224, overlap=0.75, window=64))
    assert np.isfinite(tiles.embeddings).all() and len(tiles.embeddings) == len(tiles.coords)
    assert tiles.info["nonfinite_tiles"] > 0 and len(tiles.coords) + tiles.info["nonfinite_tiles"] == 5 * 5
    assert (tiles.coords[:, 0] < 64).all()  # only windows of the dark half remain


def test_cache_keys_name_the_preprocessing_the_tokenizer_and_the_format(tmp_path, monkeypatch):
    import dataclasses
    import importlib.metadata

    from pathboard.core.embedding import cache

    spec = plugins.get("model", "quiltnet-b32")
    other_arch = dataclasses.replace(spec, arch="ViT-B-32")  # same weights, another preprocessing/tokenizer path

    def key(s):
        return Embedder(s, lambda: None, "same-weights", Runtime(), EmbeddingCache(tmp_path), 4, 0)._key(kind="x")

    before = key(spec)
    assert before == key(dataclasses.replace(spec)) and before != key(other_arch)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: "99.0" if d == "open_clip_torch" else real(d))
    assert key(spec) != before  # an open_clip upgrade never reuses old embeddings
    assert cache.FORMAT == 2


def test_running_out_of_accelerator_memory_halves_the_batch_instead_of_failing(shared_data, capsys):
    import torch
    from torchvision.transforms import functional

    from pathboard.core.embedding.embedder import embed_images

    class Small:  # a model whose device holds at most 8 images per forward pass
        preprocess = staticmethod(lambda img: functional.to_tensor(img.resize((16, 16))))
        calls: list[int] = []

        def encode_images(self, batch):
            self.calls.append(len(batch))
            if len(batch) > 8:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return batch.flatten(1)[:, :4] * 1.0

    root = shared_data / "CRC-VAL-HE-7K"
    paths = sorted(str(p.relative_to(root)) for p in root.glob("*/*.png"))
    assert len(paths) == 32
    rows = {}
    failed, _ = embed_images(Small(), root, paths, lambda start, a: rows.update({start + i: r for i, r in enumerate(a)}),
                             batch_size=32, workers=0, desc="oom")
    assert not failed and sorted(rows) == list(range(len(paths)))
    assert Small.calls[:3] == [32, 16, 8] and max(Small.calls[2:]) <= 8  # halved until it fits, then kept there
    err = capsys.readouterr().err
    assert err.count("out of memory at") == 2 and "going on with 8" in err  # 32 -> 16 -> 8, said each time


CLASSES = ["ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]


class BatchSensitive:
    """A stand-in model whose embedding of an image depends on the rest of its batch (as float rounding of
    a real batched forward can): a run that cut batches differently would give different rows."""

    id, fingerprint, runtime = "stub", "stub", Runtime()

    def __init__(self):
        self.batches = []

    @staticmethod
    def preprocess(img):
        return torch.from_numpy(np.asarray(img.resize((16, 16)), dtype=np.float32).transpose(2, 0, 1) / 255)

    def encode_images(self, batch):
        self.batches.append(len(batch))
        mean = batch.mean(dim=(2, 3))
        return torch.nn.functional.normalize(mean + 0.1 * mean.mean(dim=0), dim=-1)


@pytest.fixture()
def crc(tmp_path, shared_data):
    mirror(shared_data / "CRC-VAL-HE-7K", tmp_path / "data" / "CRC")
    dataset = ImageFolderDataset(id="crc", folder="CRC", classes=CLASSES)
    return dataset, dataset.manifest(tmp_path / "data")


def _embedder(tmp_path, model, name):
    return Embedder(type("Spec", (), {"id": "stub"})(), lambda: model, "stub", Runtime(),
                    EmbeddingCache(tmp_path / name), batch_size=5, workers=0)


def test_batches_never_straddle_a_shard_boundary():
    batches = list(_loader(list(range(20)), 4, 0, "cpu", collate_fn=list, cuts=[6, 12]))
    assert batches == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11], [12, 13, 14, 15], [16, 17, 18, 19]]


@pytest.mark.slow
def test_shard_by_shard_equals_one_pass_bit_for_bit(tmp_path, crc, monkeypatch):
    """32 images, shards of 12, batches of 5: one DataLoader over every shard (a local run), one shard per
    call (Ray's units, or a resumed run) and an interrupted-then-resumed pass give identical bytes."""
    monkeypatch.setenv("PATHBOARD_SHARD_ROWS", "12")
    dataset, manifest = crc
    whole_model = BatchSensitive()
    whole = _embedder(tmp_path, whole_model, "whole")
    reference = np.asarray(whole.images(dataset, manifest).embeddings)
    assert whole_model.batches == [5, 5, 2, 5, 5, 2, 5, 3]  # cut at rows 12 and 24
    assert whole.images_embedded == 32 and whole.image_forwards == 8

    units = _embedder(tmp_path, BatchSensitive(), "units")
    assert units.pending_shards(dataset, manifest) == [0, 12, 24]
    for first in reversed(units.pending_shards(dataset, manifest)):  # any order, as Ray runs them
        units.embed_shards(dataset, manifest, firsts=[first])
    assert units.pending_shards(dataset, manifest) == []
    units.assemble(dataset, manifest)
    assert units.pending_shards(dataset, manifest) == []  # assembled: the entry is cached
    assert np.array_equal(np.asarray(units.images(dataset, manifest).embeddings), reference)

    resumed = _embedder(tmp_path, BatchSensitive(), "resumed")
    resumed.embed_shards(dataset, manifest, firsts=[12])  # a run killed after its second shard
    assert resumed.pending_shards(dataset, manifest) == [0, 24]
    assert np.array_equal(np.asarray(resumed.images(dataset, manifest).embeddings), reference)
    assert resumed.images_embedded == 32  # 12 before the "kill", 20 after: no shard twice


def test_assembling_before_every_shard_is_in_is_one_line(tmp_path, crc, monkeypatch):
    monkeypatch.setenv("PATHBOARD_SHARD_ROWS", "12")
    dataset, manifest = crc
    embedder = _embedder(tmp_path, BatchSensitive(), "early")
    embedder.embed_shards(dataset, manifest, firsts=[0])
    with pytest.raises(Exception, match=r"2 shard\(s\) not embedded yet"):
        embedder.assemble(dataset, manifest)


@pytest.mark.slow
def test_channels_last_gives_the_same_embeddings(tiny_hub, shared_data):
    spec = plugins.get("model", "quiltnet-b32")
    plain = spec.load(spec.resolve(), Runtime())
    nhwc = spec.load(spec.resolve(), Runtime(channels_last=True))
    dataset = plugins.get("dataset", "crc-val-he-7k")
    manifest = dataset.manifest(shared_data)
    batch = torch.stack([plain.preprocess(dataset.open_image(manifest.root, p)) for p in manifest.paths[:8]])
    assert Runtime.create("cpu").channels_last is False  # on by default on CUDA only
    assert torch.allclose(plain.encode_images(batch), nhwc.encode_images(batch), atol=1e-5)


def test_each_distinct_prompt_is_encoded_once_in_one_call(tmp_path):
    calls = []

    class Texts:
        @staticmethod
        def encode_texts(texts):
            calls.append(list(texts))
            return torch.nn.functional.normalize(torch.tensor([[len(t), 1.0] for t in texts]), dim=-1)

    e = Embedder(type("Spec", (), {"id": "stub"})(), lambda: Texts(), "stub", Runtime(),
                 EmbeddingCache(tmp_path / "cache"), batch_size=4, workers=0)
    first = e.texts(["a", "bb", "a"])
    second = e.texts(["ccc", "bb", "a"])  # another list: only its new text is encoded
    assert calls == [["a", "bb"], ["ccc"]] and e.texts_encoded == 3
    assert np.allclose(second[1:], first[[1, 0]]) and np.allclose(first[0], first[2])
    e.texts(["ccc", "bb", "a"])  # the same list again: read from the cache
    assert len(calls) == 2


@pytest.mark.slow
def test_near_duplicate_groups_come_from_the_embeddings_decode(tmp_path, shared_data, fresh_cache, monkeypatch):
    """LC25000's groups are found from the thumbnails the embedding's workers made of the images they decoded:
    none is read again, a shard embedded before (a resumed run) only has its own images read, and the groups
    are exactly those of reading every image; the thumbnails are removed once the groups are cached."""
    monkeypatch.setenv("PATHBOARD_SHARD_ROWS", "250")
    dataset = plugins.get("dataset", "lc25000-lung")
    assert dataset.near_duplicates
    manifest = dataset.manifest(shared_data)
    assert not any("group" in m for m in manifest.meta)  # found after embedding, not while planning
    read = []
    load = grouping.load
    monkeypatch.setattr(grouping, "load", lambda path: read.append(path) or load(path))

    first = _embedder(tmp_path, MeanColour(), "first")
    first.embed_shards(dataset, manifest, firsts=[250, 500])  # by an older pathboard, which kept no thumbnails
    shutil.rmtree(grouping.thumbnail_folder(manifest))
    first.images(dataset, manifest)  # the rest: rows 0-249 embedded now, with their thumbnails
    assert sorted(p.name for p in grouping.thumbnail_folder(manifest).iterdir()) == ["rows-000000000.npy"]
    grouping.group_manifest(manifest, what=dataset.id)
    assert sorted(str(p.relative_to(manifest.root)) for p in read) == manifest.paths[250:]
    assert not grouping.thumbnail_folder(manifest).exists()
    from_embedding = [m["group"] for m in manifest.meta]

    read.clear()
    again = dataset.manifest(shared_data)
    _embedder(tmp_path, MeanColour(), "second").images(dataset, again)  # another model: groups are cached
    assert not grouping.thumbnail_folder(again).exists()
    grouping.group_manifest(again)
    assert read == [] and [m["group"] for m in again.meta] == from_embedding

    monkeypatch.setenv("PATHBOARD_CACHE", str(tmp_path / "other-cache"))  # no groups cached: found again
    first.images(dataset, dataset.manifest(shared_data))  # cached embeddings: nothing decoded, so every image is read
    by_reading = dataset.manifest(shared_data)
    grouping.group_manifest(by_reading)
    assert len(read) == 600 and [m["group"] for m in by_reading.meta] == from_embedding
    assert len(set(from_embedding)) == 479


def test_the_device_a_task_computes_on_is_where_this_process_runs_the_model(tmp_path):
    """The run's device, or, on a Ray CPU worker scoring a GPU run, the CPU its model loader runs on."""
    from pathboard.core.engine.steps import LazyModel

    spec = type("Spec", (), {"id": "stub"})()
    gpu_run = Runtime("cuda:1", "fp16", channels_last=True)
    assert Embedder(spec, lambda: None, "w", gpu_run, EmbeddingCache(tmp_path), 4, 0).device == "cuda:1"
    on_cpu_worker = LazyModel(spec, None, Runtime("cpu", "fp32"))
    assert Embedder(spec, on_cpu_worker, "w", gpu_run, EmbeddingCache(tmp_path), 4, 0).device == "cpu"
