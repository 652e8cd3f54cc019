"""The embedding data path: batches cut at shard boundaries (a shard's embeddings do not depend on how a
run was split up or resumed), one DataLoader across shards, torch threads sized to the cores this process
may use, and the channels-last layout giving the same embeddings."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import mirror

from pathboard.core.embedding.cache import EmbeddingCache
from pathboard.core.embedding.embedder import Embedder, _loader
from pathboard.core.engine import plugins
from pathboard.core.interfaces.dataset import ImageFolderDataset
from pathboard.core.interfaces.model import Runtime, size_threads

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


def test_torch_threads_are_the_cores_this_process_may_use(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)  # a narrowed cgroup
        assert size_threads(None) == 3 == torch.get_num_threads()
        assert size_threads(2) == 2 == torch.get_num_threads()  # --threads wins
    finally:
        torch.set_num_threads(before)


def test_channels_last_gives_the_same_embeddings(tiny_hub, shared_data):
    spec = plugins.get("model", "quiltnet-b32")
    plain = spec.load(spec.resolve(), Runtime())
    nhwc = spec.load(spec.resolve(), Runtime(channels_last=True))
    dataset = plugins.get("dataset", "crc-val-he-7k")
    manifest = dataset.manifest(shared_data)
    batch = torch.stack([plain.preprocess(dataset.open_image(manifest.root, p)) for p in manifest.paths[:8]])
    assert Runtime.create("cpu").channels_last is False  # on by default on CUDA only
    assert torch.allclose(plain.encode_images(batch), nhwc.encode_images(batch), atol=1e-5)
