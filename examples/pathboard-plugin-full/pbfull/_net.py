"""The network: a conv image tower and a hashed bag-of-words text tower, 16-d embeddings."""
from __future__ import annotations

import zlib

import torch
from torch import nn
from torchvision import transforms as T

from pathboard.api import TorchCLIPModel

VOCAB, DIM = 1024, 16


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                   nn.Linear(8, DIM))
        self.text = nn.EmbeddingBag(VOCAB, DIM)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))


def tokens(text: str) -> list[int]:
    return [zlib.crc32(w.encode()) % VOCAB for w in text.lower().split()] or [0]


class TinyNetModel(TorchCLIPModel):
    @classmethod
    def from_file(cls, id, weights, runtime):
        net = TinyNet()
        net.load_state_dict(torch.load(weights.path, map_location="cpu", weights_only=True))
        preprocess = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(),
                                T.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])])
        return cls(id, weights.fingerprint, net.eval().to(runtime.device), preprocess, tokens, runtime)

    def image_features(self, batch):
        return self.model.image(batch)

    def text_features(self, texts):
        ids = [self.tokenizer(t) for t in texts]
        flat = torch.tensor([i for row in ids for i in row], device=self.runtime.device)
        offsets = torch.tensor([0] + [len(r) for r in ids[:-1]], device=self.runtime.device).cumsum(0)
        return self.model.text(flat, offsets)


def save_random(path, seed: int = 0):
    torch.manual_seed(seed)
    torch.save(TinyNet().state_dict(), path)
    return path
