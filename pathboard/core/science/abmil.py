"""Gated attention-based multiple-instance learning (ABMIL; Ilse et al., ICML 2018) for few-shot slides.

A slide is a bag of tile embeddings h_i; its attention weights are ``a = softmax(w . (tanh(V h) *
sigmoid(U h)))`` over its tiles (V, U: D -> :data:`HIDDEN`), the slide is ``sum a_i h_i`` and a linear
layer (D -> C) classifies it. :func:`abmil_fit` trains on the support bags only, with Adam (lr
:data:`LR`, weight decay :data:`WEIGHT_DECAY`), one slide per step, ``max(MIN_STEPS, EPOCHS x slides)``
steps in a seeded order, each step reading at most :data:`TRAIN_TILES` tiles of its slide (a seeded
subsample), on the CPU; torch's global generator is restored afterwards. :func:`abmil_classify` runs every
tile of each test slide through the trained models, on the run's device: a few-shot cell trains one model per k
and draw (25), and each test bag is read and converted once for all of them, not once per model.

This module imports torch: import it only when ABMIL runs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

HIDDEN = 128
LR = 1e-3
WEIGHT_DECAY = 1e-4
EPOCHS = 25
MIN_STEPS = 100
TRAIN_TILES = 512


class GatedABMIL(nn.Module):
    """[T, D] tile embeddings of one slide -> [C] class logits."""

    def __init__(self, dim: int, n_classes: int, hidden: int = HIDDEN):
        super().__init__()
        self.v = nn.Linear(dim, hidden)
        self.u = nn.Linear(dim, hidden)
        self.w = nn.Linear(hidden, 1)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(1)
        return self.head(torch.softmax(a, dim=0) @ h)


def _bag(array) -> torch.Tensor:
    """A slide's tile embeddings as a float32 tensor; a read-only (memory-mapped, cached) array is copied, so
    torch never holds a tensor it may not write."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def abmil_fit(support: list[np.ndarray], y: np.ndarray, classes: np.ndarray, seed: int) -> GatedABMIL:
    """A gated-attention MIL model trained on the ``support`` bags ([T_i, D] tile embeddings, labels ``y``, classes
    as positions into ``classes``), in eval mode."""
    target = torch.as_tensor(np.searchsorted(classes, y), dtype=torch.long)
    bags = [_bag(b) for b in support]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = GatedABMIL(bags[0].shape[1], len(classes))
        optimiser = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        loss_fn = nn.CrossEntropyLoss()
        order: list[int] = []
        model.train()
        for _ in range(max(MIN_STEPS, EPOCHS * len(bags))):
            if not order:
                order = torch.randperm(len(bags), generator=generator).tolist()
            i = order.pop()
            bag = bags[i]
            if len(bag) > TRAIN_TILES:
                bag = bag[torch.randperm(len(bag), generator=generator)[:TRAIN_TILES]]
            optimiser.zero_grad()
            loss_fn(model(bag)[None], target[i : i + 1]).backward()
            optimiser.step()
    return model.eval()


def abmil_classify(models: list[GatedABMIL], test: list[np.ndarray], device: str = "cpu") -> np.ndarray:
    """[models, test bags] class positions each model predicts for each ``test`` bag, from every tile of it. A bag
    is read once for all the models, so memory holds one bag at a time whatever the number of slides.

    The prediction runs on ``device`` (the run's: a GPU where the embedding runs on one), where it is almost free,
    against ~12 ms of one CPU core per model per 10^4-tile bag; the models move there. Training stays on the CPU
    (:func:`abmil_fit`), so the same models are trained on any machine; a GPU's float32 arithmetic may round the
    attention apart from the CPU's, which can move a prediction only where two classes tie to the last bit."""
    where = torch.device(device)
    on = [model.to(where) for model in models]
    out = np.empty((len(models), len(test)), dtype=np.int64)
    if not models:
        return out
    with torch.no_grad():
        for j, array in enumerate(test):
            bag = _bag(array).to(where)
            out[:, j] = torch.stack([model(bag).argmax() for model in on]).cpu().numpy()  # one transfer a bag
            del bag  # before the next one is converted
    return out


def abmil_predict(support: list[np.ndarray], y: np.ndarray, classes: np.ndarray, test: list[np.ndarray],
                  seed: int) -> np.ndarray:
    """Class positions (into ``classes``) that a gated-attention MIL model trained on the ``support`` bags
    ([T_i, D] tile embeddings, labels ``y``) predicts for the ``test`` bags: :func:`abmil_fit`, then
    :func:`abmil_classify`."""
    return abmil_classify([abmil_fit(support, y, classes, seed)], test)[0]
