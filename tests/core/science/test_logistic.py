"""The batched logistic solver's loss: the plain formula, whatever order it computes in."""
import numpy as np
import pytest

from pathboard.core.science import logistic
from pathboard.core.science.logistic import _loss_grad


def plain(theta, zb, y, onehot, s, l2):
    """Objectives and gradients of J problems, written out over (problems, items, outputs)."""
    z = np.einsum("np,jkp->jnk", zb, theta)
    if onehot is None:
        z = z[:, :, 0]
        loss = np.logaddexp(0.0, z) - y * z
        err = (1.0 / (1.0 + np.exp(-z)) - y)[:, :, None]
    else:
        top = z.max(axis=2, keepdims=True)
        e = np.exp(z - top)
        loss = (np.log(e.sum(axis=2)) + top[:, :, 0]) - np.take_along_axis(z, y[None, :, None], axis=2)[:, :, 0]
        err = e / e.sum(axis=2, keepdims=True) - onehot
    w = theta[:, :, :-1]
    grad = np.einsum("jnk,jn,np->jkp", err, s, zb)
    grad[:, :, :-1] += l2[:, None, None] * w
    return (s * loss).sum(axis=1) + 0.5 * l2 * (w ** 2).sum(axis=(1, 2)), grad


@pytest.mark.parametrize("tall", [False, True], ids=["items-by-outputs", "outputs-by-items"])
@pytest.mark.parametrize("outputs", [1, 4, 9])
def test_the_loss_and_gradient_are_the_plain_formulas(outputs, tall, monkeypatch):
    if tall:  # the decision values' product as it is written for many items
        monkeypatch.setattr(logistic, "TALL", 0)
    rng = np.random.default_rng(outputs)
    n, p, j = 300, 17, 7
    zb = np.hstack([rng.normal(size=(n, p - 1)), np.ones((n, 1))])
    theta = rng.normal(size=(j, outputs, p))
    y = rng.integers(0, max(outputs, 2), n)
    onehot = None if outputs == 1 else np.eye(outputs)[y]
    s = np.where(rng.random((j, n)) < 0.8, 1.0, 0.0)  # each problem's fit items, the rest held out
    s /= s.sum(axis=1, keepdims=True)
    l2 = rng.uniform(1e-4, 1e-1, j)
    y_in = y.astype(np.float64) if onehot is None else y
    theta_before = theta.copy()
    f, g = _loss_grad(theta, zb, y_in, onehot, s, l2)
    f_ref, g_ref = plain(theta, zb, y_in, onehot, s, l2)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-14)
    assert g.shape == theta.shape and np.array_equal(theta, theta_before)  # the point itself is left as it was
