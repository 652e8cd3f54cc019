"""A slide model's embeddings: two per slide (its representation, and it in the text space), cached per tile set;
a slide it cannot encode is one line, and the other slides go on."""
from types import SimpleNamespace

import numpy as np

from pathboard.core.embedding.cache import EmbeddingCache
from pathboard.core.embedding.slide_embedder import SlideEmbedder
from pathboard.core.interfaces.embeddings import SlideEmbedding, TileSet
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.slide_model import SlideEncoder


class Encoder(SlideEncoder):
    id, fingerprint = "fake", "f"

    def __init__(self):
        self.calls = 0

    def encode_slide(self, features, coords, patch_size_lv0):
        self.calls += 1
        if features[0, 0] < 0:
            raise RuntimeError("CUDA out of memory\nmore detail")
        return features.sum(axis=0) * (np.nan if features[0, 0] > 100 else 2.0)

    def to_text(self, embedding):
        return np.array([1.0, 0.0], dtype=np.float32)

    def encode_texts(self, texts):
        raise NotImplementedError


def test_each_slide_is_encoded_once_and_a_failing_one_is_left_out(tmp_path, capsys):
    encoder = Encoder()
    embedder = SlideEmbedder(SimpleNamespace(id="fake"), lambda: encoder, "f", Runtime(), EmbeddingCache(tmp_path),
                             8, 0, patch=None)

    def tiles():
        slide = {"ok": np.ones((3, 2), np.float32), "oom": -np.ones((3, 2), np.float32),
                 "nan": np.full((3, 2), 200.0, np.float32), "empty": np.zeros((0, 2), np.float32)}
        return TileSet({p: (0, SlideEmbedding(x, np.zeros((len(x), 2)), {"size0": 512}, key=p)) for p, x in
                        slide.items()}, {})

    first = tiles()
    representation, text = embedder.slide_vectors(first, "d")
    assert set(representation) == set(text) == {"ok"} and set(first.failed) == {"oom", "nan", "empty"}
    np.testing.assert_allclose(representation["ok"], np.ones(2) / np.sqrt(2))  # normalised
    assert text["ok"].tolist() == [1.0, 0.0]
    assert "could not encode it: CUDA out of memory" in first.failed["oom"]
    assert "not finite" in first.failed["nan"] and "no tiles" in first.failed["empty"]
    assert "warning: d: skipped oom: fake could not encode it: CUDA out of memory" in capsys.readouterr().err
    calls = encoder.calls
    again, _ = embedder.slide_vectors(tiles(), "d")
    assert set(again) == {"ok"} and encoder.calls == calls + 2  # ok from the cache; the failed ones tried again
