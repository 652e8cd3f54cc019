"""Gated-attention MIL: trained on support bags only, seeded, and leaving torch's global generator as it was."""
import numpy as np
import torch

from pathboard.core.science.abmil import GatedABMIL, abmil_predict


def bags(n, label, rng, signal=4.0, tiles=10, dim=8):
    """Bags whose few informative tiles carry the class: attention has to find them."""
    out = []
    for _ in range(n):
        x = rng.normal(size=(tiles, dim)).astype(np.float32)
        x[:3, 0] += signal if label else -signal
        out.append(x)
    return out


def test_abmil_learns_where_the_mean_is_diluted_and_is_reproducible():
    rng = np.random.default_rng(0)
    support = bags(6, 0, rng) + bags(6, 1, rng)
    test = bags(20, 0, rng) + bags(20, 1, rng)
    y, truth = np.repeat([0, 1], 6), np.repeat([0, 1], 20)
    state = torch.random.get_rng_state()
    first = abmil_predict(support, y, np.array([0, 1]), test, seed=7)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's generator is untouched
    assert np.mean(first == truth) > 0.8, np.mean(first == truth)
    assert np.array_equal(first, abmil_predict(support, y, np.array([0, 1]), test, seed=7))
    # classes are positions into ``classes``, not labels
    relabelled = abmil_predict(support, y + 3, np.array([3, 4]), test, seed=7)
    assert np.array_equal(relabelled, first)


def test_gated_attention_weights_sum_to_one_over_a_bag():
    model = GatedABMIL(dim=8, n_classes=3)
    h = torch.randn(11, 8)
    logits = model(h)
    assert logits.shape == (3,)
    a = model.w(torch.tanh(model.v(h)) * torch.sigmoid(model.u(h))).squeeze(1).softmax(dim=0)
    torch.testing.assert_close(logits, model.head(a @ h))


def test_classifying_with_many_models_reads_each_test_bag_once(monkeypatch):
    """A cell's k and draws' models share one pass over the test bags: each bag is converted once, and every
    model predicts what it predicts alone."""
    from pathboard.core.science import abmil

    rng = np.random.default_rng(1)
    support = bags(4, 0, rng) + bags(4, 1, rng)
    test = bags(5, 0, rng) + bags(5, 1, rng)
    y = np.repeat([0, 1], 4)
    alone = [abmil_predict(support, y, np.array([0, 1]), test, seed=s) for s in (1, 2, 3)]
    models = [abmil.abmil_fit(support, y, np.array([0, 1]), seed=s) for s in (1, 2, 3)]
    converted = []
    monkeypatch.setattr(abmil, "_bag", lambda a: converted.append(id(a)) or torch.from_numpy(np.array(a)))
    together = abmil.abmil_classify(models, test)
    assert together.shape == (3, 10)
    assert all(np.array_equal(row, a) for row, a in zip(together, alone))
    assert sorted(converted) == sorted(id(b) for b in test)  # once each, not once per model
