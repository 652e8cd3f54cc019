import json

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from support.tiny import OPENAI_MEAN, OPENAI_STD, write_open_clip_dir

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
