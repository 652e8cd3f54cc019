"""Classification metrics with seeded bootstrap 95% confidence intervals.

Point estimates and every bootstrap resample come from the same formulas on one confusion matrix each
(scikit-learn's definitions), vectorised, so 1,000 resamples cost milliseconds rather than 1,000 scikit-learn
calls per metric; ``tests/core/science/test_metrics.py`` checks them against scikit-learn.

Items that cluster (patches of one slide, slides of one patient) are not independent: resampling
them one by one gives intervals that are far too narrow. Given ``groups`` (one label per item), the
bootstrap resamples *groups* with replacement and takes every item of each drawn group (a cluster
bootstrap); without groups it resamples items, exactly as before. ``tests/core/science/test_metrics.py`` checks
the cluster intervals against a plain loop.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

N_BOOT = 1000
SEED = 0


#: short spellings people type, each for the one metric name pathboard stores and prints
METRIC_ALIASES = {"bal_acc": "balanced_accuracy", "balanced_acc": "balanced_accuracy", "acc": "accuracy",
                  "kappa": "cohen_kappa", "f1": "weighted_f1", "wf1": "weighted_f1"}


def metric_name(name: str) -> str:
    """The stored name of a metric given either spelling (``bal_acc`` -> ``balanced_accuracy``)."""
    return METRIC_ALIASES.get(name.strip().lower(), name.strip())


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    #: the spread of several scorings (few-shot draws): 25th/75th percentiles; never a confidence interval
    q1: float = float("nan")
    q3: float = float("nan")
    #: the independent units the interval resampled: groups (patients, slides) under a cluster bootstrap, else
    #: items; 0 when there is no interval. Below MIN_UNITS the interval is flagged wherever it is shown
    units: int = 0
    #: the share of resamples in which the metric was undefined (a class absent, kappa of one class), left out
    #: of the interval: an interval that silently left out many resamples is not the usual 95%
    undefined: float = 0.0


#: the fewest units (groups, else items) whose bootstrap interval is shown as an ordinary 95% CI: with one group
#: a cluster interval has zero width, with two only three distinct resamples exist
MIN_UNITS = 10


#: the share of resamples left out as undefined above which an interval is flagged
MAX_UNDEFINED = 0.05


#: what a "†" beside an interval means, wherever one is shown (the CLI, the tables, the exports)
CAVEAT = (f"† not an ordinary 95% CI: a bootstrap over fewer than {MIN_UNITS} units (patients, slides or items) has "
          f"few distinct resamples, and one that left out {MAX_UNDEFINED:.0%} or more of them as undefined (a class "
          "absent) is wider than it says")


def interval_caveat(units, undefined) -> str:
    """Why an interval is not an ordinary 95% CI, in words ("" when it is): too few units resampled
    (fewer than MIN_UNITS), or too many resamples left out as undefined (MAX_UNDEFINED or more)."""
    said = []
    units, undefined = _known(units), _known(undefined)
    if units is not None and 0 < units < MIN_UNITS:
        said.append(f"over {int(units)} unit(s) only")
    if undefined is not None and undefined >= MAX_UNDEFINED:
        said.append(f"undefined in {undefined:.0%} of resamples")
    return "; ".join(said)


def _known(x) -> float | None:
    """``x`` as a float, or None for None, NaN and a database NULL (pandas' NA)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def units_of(n: int, groups=None) -> int:
    """How many independent units a bootstrap of ``n`` items resamples: their groups', else the items."""
    return n if groups is None else group_codes(groups)[1]


def estimate(name: str, value: float, samples, n: int, units: int | None = None) -> Metric:
    """``value`` with the 95% percentile interval of its bootstrap ``samples`` (resamples where the metric is
    undefined, NaN or inf, are left out and counted in ``undefined``), over ``units`` units (default ``n``)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    low, high = percentile_ci(samples)
    undefined = float(1.0 - np.isfinite(samples).mean()) if len(samples) else 0.0
    return Metric(name, float(value), low, high, n, units=(n if units is None else units) if len(samples) else 0,
                  undefined=undefined)


def percentile_ci(samples) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap ``samples``, ignoring NaN/inf (NaNs when none is finite)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return float("nan"), float("nan")
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def normalised(x) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _class_label(name: str, class_names: list[str]) -> str:
    """``recall/<index>`` -> ``recall/<class name>``; other names unchanged."""
    return f"recall/{class_names[int(name.split('/')[1])]}" if name.startswith("recall/") else name


def _chunk(chunk: int, n: int) -> int:
    return max(1, min(chunk, 10_000_000 // max(n, 1)))


def group_codes(groups) -> tuple[np.ndarray, int]:
    """(each item's group number, the number of groups); groups are numbered in the sorted order of
    their labels, so the numbering (and hence the resamples) never depends on the items' order."""
    codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)[1].ravel()
    return codes.astype(np.int64), int(codes.max()) + 1 if len(codes) else 0


def _group_draws(groups, n_boot: int, seed: int, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(item group numbers, [b, G] drawn group numbers) per chunk: resample r draws G groups with
    replacement, ``rng.integers(0, G, G)``, r = 0, 1, ... from one ``default_rng(seed)``."""
    codes, g = group_codes(groups)
    rng = np.random.default_rng(seed)
    step = _chunk(chunk, len(codes))
    for start in range(0, n_boot, step):
        yield codes, np.stack([rng.integers(0, g, size=g) for _ in range(min(step, n_boot - start))])


def bootstrap_indices(n: int, n_boot: int = N_BOOT, seed: int = SEED, chunk: int = 100,
                      groups=None) -> Iterator:
    """Resample indices, ``chunk`` resamples at a time. The same (n, seed[, groups]) gives the same
    resamples, so two models scored on one dataset share them (paired comparisons).

    Without ``groups``: [b, n] arrays of item indices drawn with replacement. With ``groups`` (one
    label per item): a cluster bootstrap: each resample draws as many groups as there are, with
    replacement, and takes every item of each drawn group (in the group's item order), so resamples
    differ in length and each chunk is a list of b 1-D index arrays. Vectorised code should use
    :func:`bootstrap_counts` (the same resamples as per-item counts) instead.
    """
    if groups is None:
        rng = np.random.default_rng(seed)
        chunk = _chunk(chunk, n)
        for start in range(0, n_boot, chunk):
            yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        return
    if len(groups) != n:
        raise ValueError(f"bootstrap_indices: {len(groups)} groups for {n} items")
    codes, _ = group_codes(groups)
    order = np.argsort(codes, kind="stable")  # items grouped, each group's items in their order
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for _, draws in _group_draws(groups, n_boot, seed, chunk):
        out = []
        for drawn in draws:
            lengths = sizes[drawn]
            offsets = np.repeat(starts[drawn] - (np.cumsum(lengths) - lengths), lengths)
            out.append(order[offsets + np.arange(lengths.sum())])
        yield out


def bootstrap_counts(n: int, n_boot: int = N_BOOT, seed: int = SEED, chunk: int = 100,
                     groups=None) -> Iterator[np.ndarray]:
    """The resamples of :func:`bootstrap_indices` as [b, n] counts: how often each item was drawn
    (resample sizes vary under a cluster bootstrap; a count matrix does not)."""
    if groups is None:
        for idx in bootstrap_indices(n, n_boot, seed, chunk):
            b = idx.shape[0]
            yield np.bincount((idx + (np.arange(b) * n)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        return
    if len(groups) != n:
        raise ValueError(f"bootstrap_counts: {len(groups)} groups for {n} items")
    for codes, draws in _group_draws(groups, n_boot, seed, chunk):
        b, g = draws.shape
        per_group = np.bincount((draws + (np.arange(b) * g)[:, None]).ravel(), minlength=b * g).reshape(b, g)
        yield per_group[:, codes]


def bootstrap_label(groups) -> str:
    """How the intervals were resampled, for a task's protocol: "items", or "cluster by group (N
    groups)" when ``groups`` is given."""
    return "items" if groups is None else f"cluster by group ({group_codes(groups)[1]} groups)"


def interval_over(bootstrap) -> str:
    """What a stored interval resampled, from the protocol's ``bootstrap`` label: test items, or the items'
    groups (Record meta "group": patients, slides or near-duplicate clusters) when they had them."""
    found = re.search(r"\((\d+) groups\)", bootstrap) if isinstance(bootstrap, str) else None
    return f"{found.group(1)} groups (patients, slides or near-duplicate clusters)" if found else "test items"


def headline_text(headline, bootstrap=None) -> str:
    """What a few-shot headline number is (method, k, median of draws) and what its interval is over, or ""
    for a task whose cells name no headline."""
    if not isinstance(headline, str) or not headline:
        return ""
    return f"{headline}; 95% CI: bootstrap of that median over {interval_over(bootstrap)}"


def confusion_matrices(y_true: np.ndarray, y_pred: np.ndarray, k: int, idx: np.ndarray | None = None,
                       counts: np.ndarray | None = None) -> np.ndarray:
    """[B, k, k] confusion matrices (rows true, columns predicted) of the resamples in ``idx`` ([B, m]
    item indices) or ``counts`` ([B, n] times each item was drawn: resamples of varying size).

    Each item's (truth, prediction) cell is numbered once, and each resample counted by its own ``bincount``: one
    gather a resample, not two gathers and a [B, m] array of offset cell numbers (~4x faster, the same counts)."""
    cell = y_true * k + y_pred
    if counts is None:
        out = np.zeros((len(idx), k * k), dtype=np.int64)
        for row, drawn in zip(out, idx):
            row += np.bincount(cell[drawn], minlength=k * k)
        return out.reshape(-1, k, k)
    cm = np.zeros((len(counts), k * k))
    for row, drawn in zip(cm, counts):
        row += np.bincount(cell, weights=drawn, minlength=k * k)
    return np.rint(cm).astype(np.int64).reshape(-1, k, k)


def resampled_confusions(y_true: np.ndarray, preds: list[np.ndarray], k: int, n_boot: int = N_BOOT,
                         seed: int = SEED, groups=None) -> Iterator[list[np.ndarray]]:
    """Per chunk of resamples, one [b, k, k] confusion-matrix array per prediction vector in ``preds``,
    all on the same resamples (items, or groups when ``groups`` is given)."""
    if groups is None:
        for idx in bootstrap_indices(len(y_true), n_boot, seed):
            yield [confusion_matrices(y_true, p, k, idx) for p in preds]
    else:
        for counts in bootstrap_counts(len(y_true), n_boot, seed, groups=groups):
            yield [confusion_matrices(y_true, p, k, counts=counts) for p in preds]


def scores_from_confusion(cm: np.ndarray, present: np.ndarray, ordinal: bool) -> dict[str, np.ndarray]:
    """The metrics of each [.., k, k] confusion matrix, matching scikit-learn's definitions."""
    cm = cm.astype(np.float64)
    k = cm.shape[-1]
    n = cm.sum(axis=(-2, -1))
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        out = {
            "accuracy": tp.sum(-1) / n,
            "balanced_accuracy": np.nanmean(recall, axis=-1),
            "weighted_f1": (f1[..., present] * support[..., present]).sum(-1) / support[..., present].sum(-1),
        }
        expected = support[..., :, None] * predicted[..., None, :] / n[..., None, None]
        ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        weights = {"cohen_kappa": (ii != jj).astype(float)}
        if ordinal:
            weights["quadratic_kappa"] = (ii - jj) ** 2.0
        for name, w in weights.items():
            out[name] = 1 - (w * cm).sum((-2, -1)) / (w * expected).sum((-2, -1))
        for c in present:
            out[f"recall/{c}"] = recall[..., c]
    return out


class Resampled(NamedTuple):
    """One prediction vector's metrics on the items (``point``) and on each bootstrap resample (``boot``, [B]
    per metric)."""

    point: dict[str, float]
    boot: dict[str, np.ndarray]


def resampled_scores(y_true, y_pred, k: int, ordinal: bool, n_boot: int = N_BOOT, seed: int = SEED,
                     groups=None) -> Resampled:
    """Every metric of :func:`scores_from_confusion` for labels and predictions indexing k classes, on the whole
    set and on the bootstrap resamples, which depend only on the items' count, ``seed`` and ``groups``: every
    model scored on the same items gets the same resamples (a paired comparison subtracts two of these)."""
    return resampled_scores_many(y_true, [y_pred], k, ordinal, n_boot, seed, groups)[0]


def resampled_scores_many(y_true, preds: list, k: int, ordinal: bool, n_boot: int = N_BOOT, seed: int = SEED,
                          groups=None) -> list[Resampled]:
    """:func:`resampled_scores` of each prediction vector in ``preds`` against the same ``y_true``, every one on
    the same resamples, drawn once for all of them (the paired comparisons score a dataset's models this way)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    preds = [np.asarray(p, dtype=np.int64) for p in preds]
    present = np.unique(y_true)
    everything = np.arange(len(y_true))[None, :]
    wholes = [scores_from_confusion(confusion_matrices(y_true, p, k, everything), present, ordinal) for p in preds]
    boots: list[dict[str, list]] = [{name: [] for name in whole} for whole in wholes]
    for cms in resampled_confusions(y_true, preds, k, n_boot, seed, groups):
        for boot, cm in zip(boots, cms):
            for name, values in scores_from_confusion(cm, present, ordinal).items():
                boot[name].append(values)
    return [Resampled({name: float(values[0]) for name, values in whole.items()},
                      {name: np.concatenate(values) if values else np.zeros(0) for name, values in boot.items()})
            for whole, boot in zip(wholes, boots)]


def classification_metrics(y_true, y_pred, class_names: list[str], ordinal: bool = False,
                           n_boot: int = N_BOOT, seed: int = SEED, groups=None) -> list[Metric]:
    """All metrics for labels/predictions indexing ``class_names`` (every candidate class). With
    ``groups`` (one label per item, e.g. :func:`pathboard.core.science.splits.item_groups`) the CIs come from a
    cluster bootstrap over the groups. The point values are those of the whole set's confusion matrix, by the
    same formulas as every resample's (scikit-learn's definitions, ``test_metrics``)."""
    n = len(y_true)
    if not n:  # as scikit-learn's metrics were: nothing to score is a caller's error
        raise ValueError("classification_metrics: no items to score")
    scores = resampled_scores(y_true, y_pred, len(class_names), ordinal, n_boot, seed, groups)
    order = ["balanced_accuracy", "weighted_f1", "cohen_kappa", "accuracy", "quadratic_kappa"]  # the headline first
    names = [m for m in order if m in scores.point] + [m for m in scores.point if m not in order]
    units = units_of(n, groups)
    return [estimate(_class_label(name, class_names), scores.point[name], scores.boot[name], n, units)
            for name in names]  # n_boot=0: NaN CIs


def median_metrics(y_true, preds: list[np.ndarray], class_names: list[str], ordinal: bool = False,
                   n_boot: int = N_BOOT, seed: int = SEED, groups=None) -> list[Metric]:
    """Per metric, the median over several prediction vectors (e.g. few-shot draws), with a 95%
    bootstrap CI of that median (every vector rescored on the same resamples of the items, or of the
    ``groups`` when given, the median taken per resample)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    preds = [np.asarray(p, dtype=np.int64) for p in preds]
    k, n, present = len(class_names), len(y_true), np.unique(y_true)

    def scored(cms):  # name -> [draws, resamples]
        draws = [scores_from_confusion(cm, present, ordinal) for cm in cms]
        return {name: np.stack([d[name] for d in draws]) for name in draws[0]}

    everything = np.arange(n)[None, :]
    point = scored([confusion_matrices(y_true, p, k, everything) for p in preds])
    boot: dict[str, list] = {name: [] for name in point}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN medians (a class absent from a resample)
        for cms in resampled_confusions(y_true, preds, k, n_boot, seed, groups):
            for name, values in scored(cms).items():
                boot[name].append(np.nanmedian(values, axis=0))
    units = units_of(n, groups)
    return [estimate(_class_label(name, class_names), float(np.median(values[:, 0])),
                     np.concatenate(boot[name]) if boot[name] else [], n, units) for name, values in point.items()]


def iqr_metrics(draws: list[list[Metric]]) -> list[Metric]:
    """Per metric of several scorings (e.g. few-shot draws): the median, with the 25th/75th percentiles
    in ``q1``/``q3`` (the spread over draws); the CI columns stay empty (NaN)."""
    out = []
    for i, first in enumerate(draws[0]):
        values = [d[i].value for d in draws]
        q25, q50, q75 = np.percentile(values, [25, 50, 75])
        out.append(Metric(first.name, float(q50), float("nan"), float("nan"), first.n, float(q25), float(q75)))
    return out


def mean_metric(name: str, values, n_boot: int = N_BOOT, seed: int = SEED, groups=None) -> Metric:
    """The mean of a per-item quantity (a flip, a cosine) with its 95% CI on the same resamples as
    :func:`classification_metrics` (of the items, or of the ``groups`` when given)."""
    values = np.asarray(values, dtype=np.float64)
    boot = [(counts @ values) / counts.sum(axis=1) for counts in bootstrap_counts(len(values), n_boot, seed,
                                                                                  groups=groups)]
    return estimate(name, float(values.mean()), np.concatenate(boot) if boot else [], len(values),
                    units_of(len(values), groups))
