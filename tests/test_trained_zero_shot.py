"""A tiny CLIP trained here on real LC25000 patches must zero-shot held-out patches well above chance.

A random model cannot catch label-order, prompt-order or normalisation bugs; a trained one does.
"""
import json

import duckdb
import open_clip
import torch
import torch.nn.functional as F
from helpers import pathboard
from PIL import Image
from tiny import OPENAI_MEAN, OPENAI_STD, write_open_clip_dir

from pathboard.core.engine import plugins

CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16},  # a tiny ModifiedResNet
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
}
TRAIN_PER_CLASS = 120


def train_tiny_clip(out, paths_by_class, captions, steps=120):
    """Train for a fixed number of steps, so the result does not depend on the machine's load."""
    torch.manual_seed(0)
    (out / "open_clip_config.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(CONFIG))
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")
    tokens = open_clip.get_tokenizer(f"local-dir:{out}")(captions)
    images, labels = [], []
    for label, paths in enumerate(paths_by_class):
        for p in paths:
            with Image.open(p) as img:
                images.append(preprocess(img.convert("RGB")))
            labels.append(label)
    images, labels = torch.stack(images), torch.tensor(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    model.train()
    done = 0
    while done < steps:
        batch = torch.randperm(len(images))[:64]
        img = F.normalize(model.encode_image(images[batch]), dim=-1)
        txt = F.normalize(model.encode_text(tokens), dim=-1)
        loss = F.cross_entropy(model.logit_scale.exp() * img @ txt.T, labels[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
    return write_open_clip_dir(out, CONFIG, model.eval()), done


def test_trained_tiny_clip_zero_shots_held_out_real_patches(tmp_path, shared_data, fresh_cache):
    lung = plugins.get("dataset", "lc25000-lung")
    # captions written from the class names: exactly the single-mode prompts of the dataset
    captions = [p[0] for p in lung.prompts().prompts("single", lung.classes).values()]
    base = shared_data / lung.folder
    files = {c: sorted((base / c).iterdir()) for c in lung.classes}
    weights, steps = train_tiny_clip(tmp_path / "weights", [files[c][:TRAIN_PER_CLASS] for c in lung.classes],
                                     captions, steps=120)
    held_out = tmp_path / "data"
    for c in lung.classes:
        (held_out / lung.folder / c).mkdir(parents=True)
        for f in files[c][TRAIN_PER_CLASS:]:
            (held_out / lung.folder / c / f.name).symlink_to(f)
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--weights", f"quiltnet-b32={weights}",
                    "--datasets", "lc25000-lung", "--data-root", held_out, "--db", db, "--tasks", "zeroshot")
    assert out.returncode == 0, out.stderr
    rows = dict(duckdb.connect(str(db), read_only=True).execute(
        "SELECT prompt_mode, value FROM leaderboard WHERE metric = 'balanced_accuracy'").fetchall())
    n = duckdb.connect(str(db), read_only=True).execute("SELECT DISTINCT n FROM leaderboard").fetchall()
    assert n == [(3 * (200 - TRAIN_PER_CLASS),)]
    print(f"trained {steps} steps; held-out balanced accuracy {rows}")
    assert rows["single"] > 0.6, rows  # chance is 1/3
