"""How stable the model ranking is across prompt draws (the ``prompt-sensitivity`` task's draws).

Every model is scored under the same draws (they depend on the prompt set and the seed only), so each
draw ranks the models present. For each dataset and protocol this stores, per draw family (every
template alone, every synonym alone, random subsets of size N, and all draws together):

- ``kendall_tau``: the mean Kendall τ-b between the model rankings of every pair of draws (1: every
  draw ranks the models alike; 0: unrelated rankings), over the draws that scored every model;
- per model, ``first_rate``: the share of draws in which it ranks first (a tie for first shares the
  draw), and ``median_rank`` (1 is best; tied models share the average of their ranks, as
  ``scipy.stats.rankdata``'s default, so two models tied in every draw both get 1.5, not 1 and 2 by name).

Results go to the ``prompt_rankings`` table (replaced after every run); the leaderboard reads them.
"""
from __future__ import annotations

import numpy as np

TASK = "prompt-sensitivity"
METRIC = "balanced_accuracy"


def pairwise_tau(scores: np.ndarray) -> np.ndarray:
    """Kendall's τ-b between every two rows of ``scores`` [draws, models], as a [draws, draws] matrix (NaN
    where either row is constant). τ-b = Σ sign(Δa)·sign(Δb) over model pairs / √(pairs untied in a ·
    pairs untied in b), exactly ``scipy.stats.kendalltau``'s default, for all draw pairs in one product."""
    left, right = np.triu_indices(scores.shape[1], 1)
    signs = np.sign(scores[:, left] - scores[:, right])  # [draws, model pairs]
    untied = (signs != 0).sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (signs @ signs.T) / np.sqrt(np.outer(untied, untied))


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """[draws, models] ranks of each row of ``scores`` (1 = highest), ties sharing the average of the ranks
    they span (``scipy.stats.rankdata(-row, method="average")``)."""
    higher = (scores[:, None, :] > scores[:, :, None]).sum(axis=2)  # models strictly better than each
    tied = (scores[:, None, :] == scores[:, :, None]).sum(axis=2)  # models equal to each, itself included
    return higher + (tied + 1) / 2


def stability(scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(mean pairwise τ-b over draws, each model's first-place share, each model's median rank) of
    ``scores`` [draws, models] (higher is better)."""
    taus = pairwise_tau(scores)[np.triu_indices(len(scores), 1)]
    taus = taus[np.isfinite(taus)]
    best = scores == scores.max(axis=1, keepdims=True)
    first = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
    ranks = average_ranks(scores)
    return (float(np.mean(taus)) if len(taus) else float("nan")), first, np.median(ranks, axis=0)


def family(variant: str) -> str:
    """The summary a draw belongs to: templates, synonyms or subset=N."""
    kind = variant.split("=", 1)[0]
    return {"template": "templates", "synonym": "synonyms"}.get(kind, variant.split("/", 1)[0])


def rank_draws(draws, metric: str = METRIC) -> list[list]:
    """The ``prompt_rankings`` rows of the newest prompt-sensitivity draws of every model (a frame of
    model, dataset, variant, protocol_hash and value of ``metric``): per dataset, protocol and draw family."""
    rows = []
    for (dataset, protocol), group in draws.groupby(["dataset", "protocol_hash"]):
        table = group.pivot_table(index="variant", columns="model", values="value").dropna()
        if table.shape[1] < 2 or table.shape[0] < 1:
            continue  # a ranking needs two models
        for name in ("", *sorted({family(v) for v in table.index})):
            part = table if name == "" else table[[family(v) == name for v in table.index]]
            tau, first, median = stability(part.to_numpy())
            rows += [[dataset, protocol, metric, name, part.shape[1], part.shape[0], tau, model, float(f), float(m)]
                     for model, f, m in zip(part.columns, first, median)]
    return rows
