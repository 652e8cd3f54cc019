"""Offline test helpers and contract checks for plugin authors: ``from pathboard.testing import ...``.

Writers, so a plugin's tests can load a tiny random-init model through the production loader with
``HF_HUB_OFFLINE=1``:

- :func:`hf_snapshot` lays files out exactly as the Hugging Face cache does (``blobs/``,
  ``snapshots/<commit>/`` symlinks, ``refs/main``);
- :func:`write_open_clip_dir` writes ``open_clip_config.json`` + ``open_clip_pytorch_model.bin`` as an
  open_clip hub repo holds them (``TINY_OPEN_CLIP`` is a 2-layer ViT-B/32-shaped config);
- :func:`write_titan`, :func:`write_prism`, :func:`write_virchow`: stand-ins for the slide models and PRISM's patch
  encoder in their real on-disk layout (TITAN's and PRISM's with their ``auto_map`` remote code, loaded with
  ``trust_remote_code``), and :func:`write_trident_features`, one slide's features in TRIDENT's layout
  (:mod:`pathboard.standins` says what they check: the plumbing, never the real models' numbers).

Contract checks (plain ``assert``s with messages; call them from your pytest tests):

- :func:`check_model`: a registered :class:`~pathboard.core.interfaces.model.ModelSpec` resolves, loads and
  embeds images and texts as pathboard expects;
- :func:`check_slide_model`: a registered slide model resolves, loads and embeds slides and texts as pathboard
  expects;
- :func:`check_dataset`: a dataset's manifest on your fixture is well-formed and stable, its prompts
  cover its classes, its items open, and its opt-outs name real tasks;
- :func:`check_task`: a task's declarations (needs, options, inputs) are sound and, given a context
  (:func:`synthetic_context` builds one for patch tasks), it returns a well-formed TaskResult.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from types import MappingProxyType

import numpy as np

from pathboard.standins import write_prism, write_titan, write_trident_features, write_virchow  # noqa: F401

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]

TINY_OPEN_CLIP = {
    "model_cfg": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
        # vocab_size stays 49408 so open_clip's bundled BPE tokenizer works unchanged
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
}


def hf_snapshot(hf_home: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Lay ``files`` (name -> source file) out as huggingface_hub does under ``hf_home``:
    ``hub/models--org--name/{blobs/<sha256>, snapshots/<commit>/<name> -> blob, refs/main}``."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    if snap.exists():
        shutil.rmtree(repo)
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, src in files.items():
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        shutil.copyfile(src, blob)
        os.symlink(os.path.relpath(blob, snap), snap / name)
    return snap


def write_open_clip_dir(out: Path, config: dict = TINY_OPEN_CLIP, model=None, seed: int = 0) -> Path:
    """``open_clip_config.json`` + ``open_clip_pytorch_model.bin``, as in ``hf-hub:wisdomik/QuiltNet-B-32``;
    a random-init model of ``config`` (seeded) unless ``model`` is given."""
    import open_clip
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(config))
    if model is None:
        torch.manual_seed(seed)
        model = open_clip.create_model(f"local-dir:{out}")
    torch.save(model.state_dict(), out / "open_clip_pytorch_model.bin")
    return out


# --- contracts ------------------------------------------------------------------------------------

def registered(kind: str) -> dict:
    """Every registered object of ``kind`` ("model", "dataset", "task" or "factory"), by id, as ``pathboard``
    sees them: your plugin's objects, once its distribution is installed, beside the built-ins. Each carries
    ``.plugin`` (``<distribution>:<entry point>``) and ``.plugin_version``."""
    from pathboard.core.engine import plugins

    return plugins.registry(kind)


def applicable_tasks(dataset) -> frozenset[str]:
    """Ids of the registered tasks that apply to ``dataset`` (from what it has, less what it opts out of)."""
    from pathboard.core.engine import plugins

    return plugins.applicable_tasks(dataset)


def check_model(spec, weights=None, image=None, dim: int | None = None):
    """Resolve (``weights``: a Weights override or None), load on the CPU and embed; returns the model."""
    import torch
    from PIL import Image

    from pathboard.core.interfaces.model import ModelSpec, Runtime

    assert isinstance(spec, ModelSpec), f"{spec!r} is not a pathboard ModelSpec"
    assert spec.id and spec.card.title, f"{spec.id}: a model needs an id and a card title"
    model = spec.load(spec.resolve(weights), Runtime.create("cpu"))
    img = image if image is not None else Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    x = model.preprocess(img.convert("RGB"))
    assert x.ndim == 3 and x.shape[0] == 3, f"{spec.id}: preprocess must give a CHW tensor, got {tuple(x.shape)}"
    images = model.encode_images(torch.stack([x, x.flip(-1)]))
    assert images.dtype == torch.float32 and images.device.type == "cpu", f"{spec.id}: float32 CPU embeddings"
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(2), msg=f"{spec.id}: image embeddings not unit")
    if dim is not None:
        assert images.shape[1] == dim, f"{spec.id}: embedding size {images.shape[1]}, expected {dim}"
    if "text" in spec.capabilities:
        texts = model.encode_texts(["adipose tissue.", "an H&E image of tumor."])
        assert texts.shape == (2, images.shape[1]), f"{spec.id}: text embeddings {tuple(texts.shape)}"
        torch.testing.assert_close(texts.norm(dim=-1), torch.ones(2), msg=f"{spec.id}: text embeddings not unit")
        assert not torch.allclose(texts[0], texts[1], atol=1e-5), f"{spec.id}: different texts embed alike"
        assert math.isfinite(model.logit_scale) and model.logit_scale > 0, f"{spec.id}: logit_scale"
    return model


def check_slide_model(spec, weights=None, features_dim: int | None = None, tiles: int = 12):
    """Resolve (``weights``: a Weights override or None), load on the CPU and encode two random slides of ``tiles``
    tiles of ``features_dim``-dimensional features, map them into the text space, and encode two texts; returns
    the loaded encoder."""
    import torch

    from pathboard.core.interfaces.model import Runtime
    from pathboard.core.interfaces.slide_model import SlideEncoder, SlideModelSpec

    assert isinstance(spec, SlideModelSpec), f"{spec!r} is not a pathboard SlideModelSpec"
    assert spec.patch_encoder, f"{spec.id}: a slide model names the patch encoder whose features it reads"
    encoder = spec.load(spec.resolve(weights), Runtime.create("cpu"))
    assert isinstance(encoder, SlideEncoder), f"{spec.id}: load() must return a SlideEncoder"
    rng = np.random.default_rng(0)
    size0 = 2 * spec.tiling.size
    coords = rng.integers(0, 40, (tiles, 2)) * size0
    raw = [encoder.encode_slide(rng.normal(size=(tiles, features_dim or 16)).astype(np.float32), coords, size0)
           for _ in range(2)]
    for s in raw:
        assert s.ndim == 1 and s.dtype == np.float32, f"{spec.id}: encode_slide must give one float32 vector"
        assert np.isfinite(s).all(), f"{spec.id}: encode_slide gave non-finite values"
    assert not np.allclose(raw[0], raw[1]), f"{spec.id}: different slides embed alike"
    slides = [np.asarray(encoder.to_text(s)) for s in raw]
    for s in slides:
        assert s.ndim == 1 and abs(float(np.linalg.norm(s)) - 1) < 1e-4, \
            f"{spec.id}: to_text must give one unit vector"
    texts = encoder.encode_texts(["adenocarcinoma.", "squamous cell carcinoma."])
    assert texts.shape == (2, len(slides[0])), \
        f"{spec.id}: text embeddings {tuple(texts.shape)} do not match the slides' ({len(slides[0])})"
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(2), msg=f"{spec.id}: text embeddings not unit")
    return encoder


def check_dataset(dataset, root: Path, open_items: int = 2):
    """The dataset's manifest under ``root`` (your fixture in the official layout); returns it."""
    from pathboard.core.engine import plugins
    from pathboard.core.interfaces.dataset import Dataset
    from pathboard.core.interfaces.task import FACTS

    assert isinstance(dataset, Dataset), f"{dataset!r} is not a pathboard Dataset"
    assert dataset.id and dataset.folder is not None, "a dataset needs an id and a folder"
    assert dataset.level in ("patch", "wsi"), f"{dataset.id}: level {dataset.level!r} is neither patch nor wsi"
    assert dataset.facts <= set(FACTS), f"{dataset.id}: unknown facts {set(dataset.facts) - set(FACTS)}"
    tasks = plugins.registry("task")
    for task_id, reason in dict(dataset.opt_out or {}).items():
        assert task_id in tasks, f"{dataset.id}: opt_out names unknown task {task_id!r}"
        assert reason, f"{dataset.id}: opting out of {task_id} needs a reason"
    assert dataset.access or dataset.downloads or dataset.url, f"{dataset.id}: say where the data comes from"
    manifest = dataset.manifest(root)
    again = dataset.manifest(root)
    assert len(manifest) > 0, f"{dataset.id}: empty manifest"
    assert manifest.hash == again.hash and manifest.paths == again.paths, f"{dataset.id}: manifest not stable"
    assert len(set(manifest.paths)) == len(manifest.paths), f"{dataset.id}: duplicate item paths"
    assert len(manifest.labels) == len(manifest.splits) == len(manifest.paths), f"{dataset.id}: ragged manifest"
    labels = np.asarray(manifest.labels)
    assert ((labels >= -1) & (labels < max(len(dataset.classes), 1))).all(), f"{dataset.id}: label out of range"
    if dataset.classes:
        if any("labels" in tasks[t].needs for t in plugins.applicable_tasks(dataset)):
            assert (labels >= 0).any(), f"{dataset.id}: classes declared but no item is labelled (opt out?)"
        prompts = dataset.prompts()
        for mode in ("single", "ensemble"):
            per_class = prompts.prompts(mode, dataset.classes)
            assert list(per_class) == list(dataset.classes) and all(per_class.values()), f"{dataset.id}: prompts"
    declared = set(dataset.splits) | {None}
    assert set(manifest.splits) <= declared, f"{dataset.id}: splits {set(manifest.splits) - declared} not declared"
    if dataset.eval_split is not None:
        assert dataset.eval_split in dataset.splits, f"{dataset.id}: eval_split {dataset.eval_split!r} not in splits"
    for path in manifest.paths:
        assert (manifest.root / path.split("#", 1)[0]).exists(), f"{dataset.id}: item {path} is not a file"
    if dataset.level == "patch":
        for path in manifest.paths[:open_items]:
            img = dataset.open_image(manifest.root, path)
            assert img.mode == "RGB" and min(img.size) > 0, f"{dataset.id}: {path} does not open as RGB"
    return manifest


def check_task(task, ctx=None):
    """A task's declarations; with ``ctx`` also its result. Returns the TaskResult (or None)."""
    from pathboard.core.interfaces.options import Option
    from pathboard.core.interfaces.task import FACTS, Inputs, Task, TaskResult
    from pathboard.core.science.metrics import Metric

    assert isinstance(task, Task), f"{task!r} is not a pathboard Task"
    assert task.id and task.title, "a task needs an id and a title"
    assert task.needs and set(task.needs) <= set(FACTS), f"{task.id}: needs {set(task.needs) - set(FACTS)} unknown"
    names = [o.name for o in task.options]
    assert len(names) == len(set(names)), f"{task.id}: duplicate option names"
    for option in task.options:
        assert isinstance(option, Option) and option.help, f"{task.id}: option {option!r} needs a help text"
        if option.default is not None:
            assert option.parse(option.default) == option.default, f"{task.id}.{option.name}: default fails its check"
    configured = task.configure({})
    assert dict(configured.values) == {o.name: o.default for o in task.options}, f"{task.id}: defaults"
    if ctx is None:
        return None
    assert isinstance(task.inputs(ctx.dataset, ctx.manifest), Inputs), f"{task.id}: inputs() must give Inputs"
    result = task.score(ctx)
    assert isinstance(result, TaskResult), f"{task.id}: score() must return a TaskResult, not {type(result)}"
    assert "" in result.metrics, f"{task.id}: no headline variant ''"
    for variant, metrics in result.metrics.items():
        assert metrics and all(isinstance(m, Metric) for m in metrics), f"{task.id}: variant {variant!r} metrics"
    for variant, p in result.predictions.items():
        assert len(p.items) == len(p.y_true) == len(p.y_pred), f"{task.id}: predictions of {variant!r} are ragged"
        assert set(p.items) <= set(ctx.manifest.paths), f"{task.id}: predictions name unknown items"
    return result


def synthetic_context(task=None, n_per_class=(20, 20), dim=16, seed=0, prompt_mode=None, options=None):
    """A CellContext over a patch dataset of separable synthetic embeddings with an official
    train/test split, and a text encoder that maps each class name near its class centre."""
    from pathboard.core.interfaces.dataset import ImageFolderDataset, Manifest
    from pathboard.core.interfaces.embeddings import Embedded
    from pathboard.core.interfaces.prompts import PromptSet
    from pathboard.core.interfaces.task import CellContext

    rng = np.random.default_rng(seed)
    classes = [f"class{c}" for c in range(len(n_per_class))]
    centres = rng.normal(size=(len(classes), dim)) * 3
    labels = np.repeat(np.arange(len(classes)), n_per_class)
    x = (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    splits = ["train" if i % 2 else "test" for i in range(len(labels))]
    dataset = ImageFolderDataset(id="synthetic", folder="synthetic", classes=classes, splits=("train", "test"),
                                 eval_split="test", url="synthetic")
    manifest = Manifest(root=Path("."), paths=[f"{i}.png" for i in range(len(labels))], labels=labels,
                        splits=splits, hash="synthetic")
    prompts = PromptSet(classes={c: [c] for c in classes}, templates=["CLASSNAME."], source="synthetic")

    def texts(strings):
        out = np.stack([centres[next(i for i, c in enumerate(classes) if c in s)] for s in strings])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    values = task.configure(options or {}).values if task is not None else {}
    return CellContext("synthetic-model", dataset, manifest, prompt_mode, prompts, texts,
                       Embedded(x, np.ones(len(labels), dtype=bool), {}, "synthetic"), MappingProxyType(dict(values)),
                       facts=lambda: {"logit_scale": 100.0, "params": None})
