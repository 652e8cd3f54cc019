"""Gated-attention MIL: trained on support bags only, seeded, and leaving torch's global generator as it was."""
import numpy as np
import pytest
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


def test_classifying_on_a_device_moves_the_models_and_bags_there_and_predicts_the_same(monkeypatch):
    """``abmil_classify(..., device)``: each model and each bag is moved to the device before the pass (checked here
    by the device each model's forward sees), one transfer back per bag, and the same predictions as the default."""
    from pathboard.core.science import abmil

    rng = np.random.default_rng(2)
    support, test = bags(3, 0, rng) + bags(3, 1, rng), bags(4, 0, rng) + bags(4, 1, rng)
    y = np.repeat([0, 1], 3)
    models = [abmil.abmil_fit(support, y, np.array([0, 1]), seed=s) for s in (1, 2)]
    default = abmil.abmil_classify(models, test)
    seen, moved = [], []
    forward, to = GatedABMIL.forward, GatedABMIL.to
    monkeypatch.setattr(GatedABMIL, "forward", lambda self, h: seen.append(h.device) or forward(self, h))
    monkeypatch.setattr(GatedABMIL, "to", lambda self, *a: moved.append(a) or to(self, *a))
    on_device = abmil.abmil_classify(models, test, torch.device("cpu"))
    assert np.array_equal(on_device, default)
    assert moved == [(torch.device("cpu"),)] * 2 and seen == [torch.device("cpu")] * (2 * len(test))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_predicts_what_the_cpu_predicts():
    from pathboard.core.science import abmil

    rng = np.random.default_rng(3)
    support, test = bags(4, 0, rng) + bags(4, 1, rng), bags(6, 0, rng) + bags(6, 1, rng)
    models = [abmil.abmil_fit(support, np.repeat([0, 1], 4), np.array([0, 1]), seed=s) for s in (1, 2, 3)]
    cpu = abmil.abmil_classify(models, test)
    assert np.array_equal(abmil.abmil_classify(models, test, "cuda"), cpu)


def test_no_models_or_no_bags_classify_to_empty_arrays():
    from pathboard.core.science import abmil

    rng = np.random.default_rng(4)
    model = abmil.abmil_fit(bags(2, 0, rng) + bags(2, 1, rng), np.repeat([0, 1], 2), np.array([0, 1]), seed=1)
    assert abmil.abmil_classify([], bags(3, 0, rng)).shape == (0, 3)
    assert abmil.abmil_classify([model], []).shape == (1, 0)
