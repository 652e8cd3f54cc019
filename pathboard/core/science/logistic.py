"""L2-regularised logistic regression (scikit-learn's ``LogisticRegression`` objective), many problems at once.

Problem j minimises, over weights W_j (outputs x features) and intercepts b_j (outputs),

    sum_i s_ji * loss(W_j z_i + b_j, y_i) + l2_j / 2 * ||W_j||^2,

with s_ji = 1 / n_j on the problem's n_j fit items and 0 elsewhere, and l2_j = 1 / (C_j n_j): scikit-learn's
objective (its mean log loss and its penalty ``||W||^2 / (2 C n)``; the intercept is not penalised), binary
with one output, multinomial (softmax) with one output per class otherwise.

**The solver** is L-BFGS (Nocedal and Wright, *Numerical Optimization*, Algorithms 7.4 and 7.5: history 5)
with a line search for the weak Wolfe conditions by bisection (Lewis and Overton), preconditioned: its initial
inverse Hessian is (Z'SZ / 4 + l2 I)^-1 per output (the binary loss's largest curvature on the problem's own
fit items, plus the penalty) within the span of those items, scaled by the newest pair's curvature. It runs many
problems at once: every loss evaluation serves all the problems still running, each at its own trial point, in
two matrix products. A cross-validation's 30 problems (6 C x 5 folds) share their items (their weights differ),
so they cost about as many evaluations as the slowest of them alone, where one SciPy L-BFGS-B run per problem
spent more time in its wrappers than in the arithmetic (``benchmarks/fewshot_cost.py``); the preconditioner
takes the slowest (large C) from hundreds of evaluations to tens.

**Where it stops.** When every entry of the gradient (features' weights and intercepts) is at most ``tol``:
scikit-learn's test, at a hundredth of its default (1e-6, not 1e-4). At large C on separable support sets the
optimum is flat, a gradient of 1e-4 leaves the weights loose, and where a fit stops depends on the optimiser's
path; scikit-learn's own choice of C then depends on its path too (``tests/core/science/test_linear_probe.py``:
2 of 9 support sets). At 1e-6 the fits land much nearer the minimiser (a gradient g bounds the distance to it by
about g C n), and in those tests choose the C that fits converged to 1e-10 choose. A problem also stops when an
iteration lowers the objective by at most 64 machine epsilons relative, after ``max_iter`` iterations, or when no
step satisfies the line search.

**Fewer items than features.** The optimal weights lie in the span of the fit items (the loss sees only
their projections, and the penalty shrinks everything else to zero), and so does every L-BFGS iterate started
at zero. :func:`reduced` writes the items in an orthonormal basis of their span (n coordinates instead of d),
which changes neither the objective nor its minimiser; the weights are mapped back to the features, for the
stopping test and in the result.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

TOL = 1e-6  # a hundredth of scikit-learn's default: its fits, stopped at 1e-4, depend on their path at large C
MAX_ITER = 1000
HISTORY = 5  # pairs kept: with the preconditioner, 5 take as few evaluations as SciPy's 10 (k=8: 48 vs 46)
ARMIJO = 1e-4  # sufficient decrease: f(x + t d) <= f(x) + ARMIJO * t * g.d
CURVATURE = 0.9  # and a flatter slope: g(x + t d).d >= CURVATURE * g.d
MAX_STEPS = 50  # trial steps of one line search before the problem is taken as converged (scipy's maxls)
FTOL = 64 * np.finfo(float).eps
#: fit items a preconditioner's second moment is taken from, at most (evenly spaced)
MOMENT_ROWS = 4096
#: float64 entries of (problems x items x outputs) per loss evaluation, or of (problems x parameters^2) in the initial
#: inverse Hessians, which sets how many problems share one
BUDGET = 1 << 22
#: items from which a loss evaluation computes its decision values as (outputs, items)
TALL = 4096


class ConvergenceWarning(UserWarning):
    """``stopped`` of ``fits`` fits stopped before they converged (as scikit-learn's ConvergenceWarning)."""

    def __init__(self, stopped: int, fits: int, tol: float, max_iter: int):
        super().__init__(f"{stopped} of {fits} logistic fits stopped before every gradient entry was at most {tol:g} "
                         f"({max_iter} iterations, or no step satisfied the line search)")
        self.stopped = stopped


def reduced(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(coordinates, basis): ``x`` (n x d) written in an orthonormal basis (d x n) of its rows' span when
    n < d (``x == coordinates @ basis.T``); ``x`` itself and None otherwise."""
    n, d = x.shape
    if n >= d:
        return x, None
    basis, r = np.linalg.qr(x.T)
    return r.T, basis


def _loss_grad(theta: np.ndarray, zb: np.ndarray, y: np.ndarray, onehot: np.ndarray | None, s: np.ndarray,
               l2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objectives (J,) and gradients (J, outputs, p) of J problems at ``theta`` (J, outputs, p) on items
    ``zb`` (n, p; last column ones) with item weights ``s`` (J, n) and penalties ``l2`` (J,).

    It works on the decision values in the (items, problems, outputs) order the product leaves them in, in place,
    and hands the error to the gradient's product transposed: no copy of the (J, n, outputs) arrays, and the
    softmax's largest value per item as a running maximum over the outputs rather than a reduction over an axis of
    a few entries: the same arithmetic as the plain (J, n, outputs) formula, in less time."""
    j, outputs, p = theta.shape
    n = len(zb)
    flat = theta.reshape(j * outputs, p)
    # many items: OpenBLAS writes the product as (outputs, items) 1.2-1.5x faster, copy included
    z = (np.ascontiguousarray((flat @ zb.T).T) if n >= TALL else zb @ flat.T).reshape(n, j, outputs)
    if onehot is None:
        z = z[:, :, 0]
        loss = np.logaddexp(0.0, z) - y[:, None] * z
        err = 0.5 * (1.0 + np.tanh(0.5 * z)) - y[:, None]  # sigmoid(z) - y, stable
        err *= s.T
    else:
        own = z[np.arange(n), :, y]  # (n, J): each item's own class
        top = z[:, :, 0].copy()
        for c in range(1, outputs):
            np.maximum(top, z[:, :, c], out=top)
        z -= top[:, :, None]
        err = np.exp(z, out=z)
        total = err.sum(axis=2)
        loss = np.log(total) + top - own
        err /= total[:, :, None]
        err -= onehot[:, None, :]
        err *= s.T[:, :, None]
    w = theta[:, :, :-1]
    grad = (err.reshape(n, j * outputs).T @ zb).reshape(j, outputs, p)
    grad[:, :, :-1] += l2[:, None, None] * w
    return (s * loss.T).sum(axis=1) + 0.5 * l2 * np.einsum("jkp,jkp->j", w, w), grad


def _direction(g: np.ndarray, hs: np.ndarray, hy: np.ndarray, rho: np.ndarray, gamma: np.ndarray, start) -> np.ndarray:
    """-H g for each problem (rows of ``g``): L-BFGS's two-loop recursion over each problem's history pairs
    (``hs``, ``hy``: problems x HISTORY x parameters, newest first; ``rho`` 0 marks an empty slot), from the
    initial inverse Hessian ``gamma * start(q)``."""
    q = g.copy()
    used = int((rho != 0).any(axis=0).sum())  # slots fill from the front
    alpha = np.zeros((used, len(g)))
    for i in range(used):
        alpha[i] = rho[:, i] * np.einsum("jp,jp->j", hs[:, i], q)
        q -= alpha[i][:, None] * hy[:, i]
    q = gamma[:, None] * start(q)
    for i in reversed(range(used)):
        beta = rho[:, i] * np.einsum("jp,jp->j", hy[:, i], q)
        q += (alpha[i] - beta)[:, None] * hs[:, i]
    return -q


def _fit_sets(s: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(item weights, the problems that have them) for each distinct row of ``s``."""
    distinct, of = np.unique(s, axis=0, return_inverse=True)
    return [(weights, np.flatnonzero(of.ravel() == k)) for k, weights in enumerate(distinct)]


def _lbfgs(zb: np.ndarray, y: np.ndarray, onehot: np.ndarray | None, s: np.ndarray, l2: np.ndarray,
           outputs: int, tol: float, max_iter: int, basis: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Minimisers (J, outputs, p) of the J problems (item weights ``s``, penalties ``l2``), from zero, and whether
    each converged (its gradient test or the objective's relative decrease, not ``max_iter`` or the line search).

    Each problem runs its own L-BFGS; every loss evaluation serves all of them, each at its own trial point:
    a problem whose trial step met the weak Wolfe conditions takes it and its next direction, the others
    bisect their step (Lewis and Overton). ``basis`` (features x coordinates, or None) maps the weights back
    to the features for the stopping test."""
    jn, p = len(s), zb.shape[1]
    shape = (outputs, p)

    def evaluate(theta, rows):
        every = len(rows) == jn  # no copies while every problem runs
        f, g = _loss_grad(theta.reshape(len(rows), *shape), zb, y, onehot, s if every else s[rows],
                          l2 if every else l2[rows])
        return f, g.reshape(len(rows), -1)

    def done(g):  # on the features' weights: every |gradient entry| <= tol
        out = np.zeros(len(g), dtype=bool)
        norm = np.linalg.norm(g, axis=1)
        out[norm <= tol] = True  # the largest entry is at most the Euclidean norm, in any orthonormal basis
        if basis is not None:  # ... and at least the norm / sqrt(entries): only in between is there a product
            band = np.flatnonzero((norm > tol) & (norm <= tol * np.sqrt(outputs * (len(basis) + 1))))
            g = g[band].reshape(len(band), outputs, p)
            largest = np.maximum(np.abs(g[:, :, :-1] @ basis.T).max(axis=(1, 2)), np.abs(g[:, :, -1]).max(axis=1))
            out[band] = largest <= tol
        else:
            out |= np.abs(g).max(axis=1) <= tol
        return out

    # the initial inverse Hessian, per problem and output: E (Z' S Z / 4 + l2 I)^-1 E, the binary loss's largest
    # curvature (1/4; the softmax's is at most 1/2) on the second moment of the problem's own fit items, plus the
    # penalty (here on the intercept too), within the span of the fit items (E projects the weights onto it and
    # keeps the intercept). The exact iterates never leave that span; the projection keeps rounding noise out of
    # the other directions, where 1 / l2 = C n would amplify it and the held-out items of a batch's other folds
    # would shape the fit. One eigendecomposition per distinct set of fit items (a cross-validation's folds),
    # shared by its C, from at most MOMENT_ROWS of them (a preconditioner needs no more).
    inverse = np.empty((jn, p, p))
    for weights, members in _fit_sets(s):
        fit = np.flatnonzero(weights)
        sample = fit[:: max(1, -(-len(fit) // MOMENT_ROWS))]
        moment = (zb[sample].T * (weights[sample] * len(fit) / len(sample))) @ zb[sample] * 0.25
        span = np.eye(p)  # an orthonormal basis of the fit items' span, and the intercept
        if p - 1 > len(fit):
            z_curv, z_axes = np.linalg.eigh(zb[fit, :-1].T @ zb[fit, :-1])
            inside = z_axes[:, z_curv > z_curv.max(initial=0.0) * 1e-12]
            span = np.zeros((p, inside.shape[1] + 1))
            span[:-1, :-1], span[-1, -1] = inside, 1.0
        curv, axes = np.linalg.eigh(span.T @ moment @ span)
        axes = span @ axes
        for j in members:
            inverse[j] = (axes / (np.maximum(curv, 0.0) + l2[j])) @ axes.T

    def start(q, rows):
        return (q.reshape(len(rows), outputs, p) @ (inverse if len(rows) == jn else inverse[rows])).reshape(q.shape)

    everything = np.arange(jn)
    theta = np.zeros((jn, outputs * p))
    f, g = evaluate(theta, everything)
    hs, hy = np.zeros((jn, HISTORY, theta.shape[1])), np.zeros((jn, HISTORY, theta.shape[1]))  # newest first
    rho, gamma = np.zeros((jn, HISTORY)), np.ones(jn)
    d = -start(g, everything)
    slope = np.einsum("jp,jp->j", g, d)
    step = np.ones(jn)
    low, high = np.zeros(jn), np.full(jn, np.inf)
    tries, iterations = np.zeros(jn, dtype=np.int64), np.zeros(jn, dtype=np.int64)
    running = ~done(g)
    converged = ~running
    while running.any():
        a = np.flatnonzero(running)
        trial = theta[a] + step[a, None] * d[a]
        ft, gt = evaluate(trial, a)
        decrease = ft <= f[a] + ARMIJO * step[a] * slope[a]
        ok = decrease & (np.einsum("jp,jp->j", gt, d[a]) >= CURVATURE * slope[a])
        # the others bisect: too long where the objective did not decrease enough, else too short
        high[a[~decrease]] = step[a[~decrease]]
        low[a[decrease & ~ok]] = step[a[decrease & ~ok]]
        failed = a[~ok]
        step[failed] = np.where(np.isinf(high[failed]), 2.0 * low[failed], 0.5 * (low[failed] + high[failed]))
        tries[failed] += 1
        gave_up = failed[tries[failed] >= MAX_STEPS]  # no step was good enough
        running[gave_up], converged[gave_up] = False, False
        took = a[ok]
        if not len(took):
            continue
        ds, dy = trial[ok] - theta[took], gt[ok] - g[took]
        curvature = np.einsum("jp,jp->j", ds, dy)
        usable = curvature > 1e-10 * np.einsum("jp,jp->j", dy, dy)  # positive curvature: H stays positive definite
        u = took[usable]
        for history, new in ((hs, ds[usable]), (hy, dy[usable]), (rho, 1.0 / curvature[usable])):
            history[u, 1:] = history[u, :-1]
            history[u, 0] = new
        gamma[u] = curvature[usable] / np.einsum("jp,jp->j", dy[usable], start(dy[usable], u))
        small = (f[took] - ft[ok]) <= FTOL * np.maximum(np.maximum(np.abs(f[took]), np.abs(ft[ok])), 1.0)
        theta[took], f[took], g[took] = trial[ok], ft[ok], gt[ok]
        iterations[took] += 1
        finished = done(g[took]) | small
        converged[took] = finished
        running[took] = ~(finished | (iterations[took] >= max_iter))
        go = took[running[took]]
        d[go] = _direction(g[go], hs[go], hy[go], rho[go], gamma[go], lambda q, rows=go: start(q, rows))
        slope[go] = np.einsum("jp,jp->j", g[go], d[go])
        uphill = go[slope[go] >= 0]
        if len(uphill):  # rounding made H indefinite: forget the history, start again
            d[uphill], rho[uphill], gamma[uphill] = -start(g[uphill], uphill), 0.0, 1.0
            slope[uphill] = np.einsum("jp,jp->j", g[uphill], d[uphill])
        step[go], low[go], high[go], tries[go] = 1.0, 0.0, np.inf, 0
    return theta.reshape(jn, *shape), converged


def per_run(items: int, outputs: int, parameters: int) -> int:
    """How many problems on ``items`` fit items share one solver run within :data:`BUDGET`."""
    return max(1, BUDGET // max(items * outputs, parameters ** 2))


def one_run(items: int, dims: int, n_classes: int, problems: int) -> bool:
    """Whether :func:`fit_logistic_many` solves ``problems`` problems on ``items`` items of ``dims`` features in one
    run (where a run costs about as much as its slowest problem, so an extra problem is almost free)."""
    return problems <= per_run(items, 1 if n_classes == 2 else n_classes, min(items, dims) + 1)


def _runs(problems: Sequence[tuple[np.ndarray, float]], items: int, outputs: int, parameters: int) -> list[list[int]]:
    """The problems (positions) of each solver run: all of them in one where :data:`BUDGET` allows. Otherwise the
    problems with the same fit items run together, so that each run reads only its own items: the others
    would only be multiplied by zero (a cross-validation's fold problems skip their held-out fifth)."""
    if len(problems) <= per_run(items, outputs, parameters):
        return [list(range(len(problems)))] if len(problems) else []
    groups: dict[bytes, list[int]] = {}
    for j, (rows, _) in enumerate(problems):
        groups.setdefault(np.asarray(rows).tobytes(), []).append(j)
    runs = []
    for members in groups.values():
        size = per_run(len(problems[members[0]][0]), outputs, parameters)
        runs += [members[i:i + size] for i in range(0, len(members), size)]
    return runs


def fit_logistic_many(x: np.ndarray, codes: np.ndarray, n_classes: int, problems: Sequence[tuple[np.ndarray, float]],
                      tol: float = TOL, max_iter: int = MAX_ITER) -> list[np.ndarray]:
    """For each (fit rows, C) of ``problems``: the (outputs, features + 1) weights and intercepts of
    scikit-learn's L2 logistic regression fitted on ``x[rows]`` (float64) with label codes ``codes[rows]`` in
    0..n_classes-1 (one output for two classes, else one per class). Problems share one solver run as far as
    :data:`BUDGET` allows (:func:`_runs`)."""
    x = np.asarray(x, dtype=np.float64)
    outputs = 1 if n_classes == 2 else n_classes
    z, basis = reduced(x)
    zb = np.hstack([z, np.ones((len(z), 1))])
    out: list[np.ndarray] = [np.empty(0)] * len(problems)
    stopped = 0
    for members in _runs(problems, len(zb), outputs, zb.shape[1]):
        batch = [problems[j] for j in members]
        first = batch[0][0]
        shared = len(members) < len(problems) and all(rows is first or np.array_equal(rows, first) for rows, _ in batch)
        if len(batch) == 1 or shared:  # only its own items (one run of several shares them)
            items, y, s = zb[first], codes[first], np.full((len(batch), len(first)), 1.0 / len(first))
        else:
            items, y, s = zb, codes, np.zeros((len(batch), len(zb)))
            for j, (rows, _) in enumerate(batch):
                np.add.at(s[j], rows, 1.0 / len(rows))  # a repeated row counts as often as it appears
        l2 = np.array([1.0 / (C * len(rows)) for rows, C in batch])
        onehot = None if n_classes == 2 else np.eye(n_classes)[y]
        theta, converged = _lbfgs(items, y.astype(np.float64) if onehot is None else y, onehot, s, l2, outputs, tol,
                                  max_iter, basis)
        stopped += int((~converged).sum())
        for j, w in zip(members, theta):
            out[j] = w if basis is None else np.hstack([w[:, :-1] @ basis.T, w[:, -1:]])
    if stopped:
        warnings.warn(ConvergenceWarning(stopped, len(problems), tol, max_iter), stacklevel=2)
    return out


def fit_logistic(x: np.ndarray, codes: np.ndarray, n_classes: int, C: float) -> np.ndarray:
    """(outputs, features + 1) weights and intercepts of scikit-learn's L2 logistic regression on ``x`` with
    label codes ``codes`` in 0..n_classes-1: one problem of :func:`fit_logistic_many`."""
    return fit_logistic_many(x, codes, n_classes, [(np.arange(len(x)), C)])[0]
