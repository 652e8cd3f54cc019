"""The contract every built-in model plugin must meet, checked on a tiny model in the real layout.

    check_model(id, size=224, mean=..., std=..., dim=512, tokenize=..., golden=(prompt, ids),
                weights=None, shared_data=..., tmp_path=...)

``weights`` is passed as ``--weights id=PATH`` (local dirs / checkpoint files); leave it None for
models found in the HF cache. ``env`` is added to the CLI's environment (see tests/tiny_arch.py).
Loading goes through the registered plugin, unchanged.
"""
from __future__ import annotations

import duckdb
import torch
from PIL import Image
from torchvision import transforms as T

from pathboard.core.engine import plugins
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.weights import Weights
from support.helpers import pathboard


def normalize_of(preprocess) -> T.Normalize:
    steps = getattr(preprocess, "transforms", [preprocess])
    return next(s for s in steps if isinstance(s, T.Normalize))


def check_model(id, *, size, mean, std, dim, shared_data, tmp_path, tokenize=None, golden=None, weights=None,
                env=None, published=True, cli=True):
    """``dim`` is the tiny model's embedding size; the card must carry the real model's. ``cli=False`` leaves out
    the zero-shot run through the CLI (for a second copy of weights the same test already ran)."""
    spec = plugins.get("model", id)
    assert spec.card.title, f"{id}: model card without a title"
    if published:  # the card describes the real published model
        assert spec.card.url and spec.card.license and spec.card.paper, f"{id}: incomplete model card"
        assert spec.card.embed_dim and spec.card.params and spec.card.input_size == size
    model = spec.load(spec.resolve(Weights(weights, "--weights") if weights else None), Runtime.create("cpu"))

    # preprocessing: the real model's image size and mean/std, on a real non-square-safe image
    with Image.open(next((shared_data / "CRC-VAL-HE-7K" / "ADI").iterdir())) as img:
        x = model.preprocess(img.convert("RGB"))
    assert tuple(x.shape) == (3, size, size)
    norm = normalize_of(model.preprocess)
    torch.testing.assert_close(torch.tensor(norm.mean, dtype=torch.float64), torch.tensor(mean, dtype=torch.float64))
    torch.testing.assert_close(torch.tensor(norm.std, dtype=torch.float64), torch.tensor(std, dtype=torch.float64))

    # embeddings: L2-normalised, of the configured dimension, texts distinguished
    images = model.encode_images(torch.stack([x, x.flip(-1)]))
    texts = model.encode_texts(["adipose tissue.", "lymphocytes.", "an H&E image of tumor."])
    assert images.shape == (2, dim) and texts.shape == (3, dim)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(3))
    assert not torch.allclose(texts[0], texts[1], atol=1e-4)

    # the real tokenizer, built offline, gives the known ids
    if golden is not None:
        prompt, ids = golden
        assert tokenize(model, prompt) == ids

    if not cli:
        return model
    # zero-shot runs end to end on the real CRC sample through the CLI
    db = tmp_path / f"{id}.duckdb"
    args = ["run", "--models", id, "--datasets", "crc-val-he-7k", "--tasks", "zeroshot", "--data-root", shared_data,
            "--db", db, "--prompt-modes", "single", "--workers", "0"]
    if weights:
        args += ["--weights", f"{id}={weights}"]
    out = pathboard(*args, env=env)
    assert out.returncode == 0, out.stderr
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT count(*), min(n) FROM leaderboard WHERE model = ? AND task = 'zeroshot' AND metric = 'weighted_f1'",
        [id]).fetchone()
    assert rows == (1, 32)
    return model
