"""Label-free prompt screening and tile votes: how KEEP labels a slide zero-shot (Zhou et al., arXiv:2412.13126;
the procedure of its ``WSI_evaluation/``, MIT, written here from its description).

1. Every combination of one template and one synonym per class is a candidate classifier: a matrix of one
   normalised prompt embedding per class (:func:`prompt_bank`, :func:`combinations`).
2. Each candidate is scored on the slide's own tiles, without labels: per tile, with ``a`` and ``b`` its
   highest and second-highest cosine similarity, ``(a - b) - |a + b - 1|``, averaged over the tiles
   (:func:`screening_scores`): a classifier that separates the tiles confidently scores high.
3. The ``TOP`` best candidates are summed and each class's row re-normalised (:func:`screened_classifier`).
4. Tile probabilities are ``softmax(TEMPERATURE x similarity)``, each averaged with those of its up-left, up
   and left neighbours that exist (:func:`smoothed`); every tile votes for its most probable class, and the
   slide gets the class with most votes among the dataset's classes (:func:`vote_shares`): classes the
   prompt set adds (KEEP's "Normal") collect votes but never label a slide.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: candidate classifiers summed (KEEP's ``topn``)
TOP = 50
#: the softmax temperature of the tile probabilities
TEMPERATURE = 10.0
#: at most this many candidates are screened: a prompt set whose combinations are more (30 classes of
#: 5 synonyms) is sampled, seeded, and the cell's protocol says so
MAX_CANDIDATES = 4096
CHUNK = 256


def prompt_bank(encode_texts: Callable, synonyms: list[list[str]], templates: list[str],
                placeholder: str = "CLASSNAME") -> np.ndarray:
    """[templates, classes, most synonyms, D]: the normalised embedding of each template x class x synonym (a
    class with fewer synonyms repeats its last, never chosen by :func:`combinations`)."""
    width = max(map(len, synonyms))
    texts = [t.replace(placeholder, words[min(s, len(words) - 1)])
             for t in templates for words in synonyms for s in range(width)]
    emb = np.asarray(encode_texts(texts), dtype=np.float32)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.reshape(len(templates), len(synonyms), width, -1)


def combinations(n_templates: int, n_synonyms: list[int], limit: int = MAX_CANDIDATES,
                 seed: int = 0) -> np.ndarray:
    """[candidates, 1 + classes]: each row a template index, then one synonym index per class; every
    combination in order, or, when there are more than ``limit``, ``limit`` distinct ones drawn (seeded)."""
    sizes = [n_templates, *n_synonyms]
    total = 1
    for size in sizes:
        total *= size
    if total <= limit:
        return np.stack(np.unravel_index(np.arange(total), sizes), axis=1)
    rng = np.random.default_rng(seed)
    drawn = np.unique(np.stack([rng.integers(0, size, size=2 * limit) for size in sizes], axis=1), axis=0)
    return drawn[rng.permutation(len(drawn))[:limit]]


def candidate_similarities(tiles: np.ndarray, bank: np.ndarray, combos: np.ndarray) -> np.ndarray:
    """[tiles, candidates, classes]: each tile's cosine similarity to each class of each candidate."""
    sims = np.einsum("td,kcsd->tkcs", tiles, bank)  # every prompt once
    classes = np.arange(bank.shape[1])
    return sims[:, combos[:, :1], classes[None, :], combos[:, 1:]]


def screening_scores(tiles: np.ndarray, bank: np.ndarray, combos: np.ndarray) -> np.ndarray:
    """[candidates]: the label-free score of each candidate on these tiles (see the module's docstring)."""
    out = []
    for start in range(0, len(combos), CHUNK):
        sims = candidate_similarities(tiles, bank, combos[start:start + CHUNK])
        two = np.sort(sims, axis=2)[:, :, -2:]  # second, top
        top, second = two[:, :, 1], two[:, :, 0]
        out.append(((top - second) - np.abs(top + second - 1)).mean(axis=0))
    return np.concatenate(out)


def screened_classifier(bank: np.ndarray, combos: np.ndarray, scores: np.ndarray, top: int = TOP) -> np.ndarray:
    """[classes, D]: the ``top`` best-scoring candidates summed, each class's row re-normalised."""
    best = np.argsort(-scores, kind="stable")[:top]
    classes = np.arange(bank.shape[1])
    summed = bank[combos[best, :1], classes[None, :], combos[best, 1:]].sum(axis=0)
    return summed / np.linalg.norm(summed, axis=1, keepdims=True)


def smoothed(probs: np.ndarray, coords: np.ndarray, step: int) -> np.ndarray:
    """[T, C]: each tile's probabilities averaged with those of its up-left, up and left neighbours (the
    tiles ``step`` level-0 pixels away) that exist."""
    where = {(int(x), int(y)): i for i, (x, y) in enumerate(coords)}
    out = np.empty_like(probs)
    for i, (x, y) in enumerate(coords):
        around = [where.get((int(x) + dx, int(y) + dy)) for dx, dy in ((-step, -step), (0, -step), (-step, 0))]
        rows = [i] + [j for j in around if j is not None]
        out[i] = probs[rows].mean(axis=0)
    return out


def vote_shares(probs: np.ndarray) -> np.ndarray:
    """[C]: the share of tiles whose most probable class is each class."""
    return np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)


def screened_vote(tiles: np.ndarray, coords: np.ndarray, step: int, bank: np.ndarray, combos: np.ndarray,
                  n_labels: int, top: int = TOP) -> np.ndarray:
    """[n_labels]: one slide's vote shares over the dataset's classes (the first ``n_labels`` of the bank's):
    screen the candidates on its tiles, then smooth and count the tile votes."""
    classifier = screened_classifier(bank, combos, screening_scores(tiles, bank, combos), top)
    logits = TEMPERATURE * (tiles @ classifier.T)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return vote_shares(smoothed(probs, coords, step))[:n_labels]


def screening_bank(encode_texts: Callable, prompts, mode: str, labels: list[str]) -> tuple[np.ndarray, np.ndarray,
                                                                                            list[str]]:
    """(bank, candidates, added classes) for a prompt set (:class:`PromptSet`) and a dataset's classes: the
    dataset's classes first, then those the prompt set adds (they vote, never label); ``single`` mode screens
    one candidate, the single template with each class's canonical name."""
    extra = [c for c in prompts.classes if c not in labels]
    order = list(labels) + extra
    if mode == "single":
        synonyms = [[prompts.canonical.get(c, prompts.classes[c][0])] for c in order]
        templates = [prompts.single_template or prompts.templates[0]]
    else:
        synonyms = [list(prompts.classes[c]) for c in order]
        templates = list(prompts.templates)
    bank = prompt_bank(encode_texts, synonyms, templates)
    return bank, combinations(len(templates), [len(s) for s in synonyms]), extra
