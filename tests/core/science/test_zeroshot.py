"""The zero-shot classifier (the renormalised mean of prompt embeddings), checked against CLIP_benchmark's own
evaluate, and MI-Zero top-K pooling."""
import numpy as np
import pytest

from pathboard.core.science.metrics import normalised
from pathboard.core.science.zeroshot import predict, topk_pool, zero_shot_classifier


def test_topk_pooling():
    sims = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.95], [0.2, 0.3]])
    np.testing.assert_allclose(topk_pool(sims, 1), [0.9, 0.95])
    np.testing.assert_allclose(topk_pool(sims, 2), [0.85, 0.625])
    np.testing.assert_allclose(topk_pool(sims, 100), sims.mean(0))  # K beyond the tile count


def test_ensemble_classifier_is_the_renormalised_mean():
    rng = np.random.default_rng(0)
    table = {t: v / np.linalg.norm(v) for t, v in ((f"t{i}", rng.normal(size=8)) for i in range(6))}
    clf = zero_shot_classifier(lambda texts: np.stack([table[t] for t in texts]),
                               {"a": ["t0", "t1", "t2"], "b": ["t3", "t4", "t5"]})
    mean = (table["t0"] + table["t1"] + table["t2"]) / 3
    np.testing.assert_allclose(clf[0], mean / np.linalg.norm(mean), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(clf, axis=1), 1, rtol=1e-6)


def test_zero_shot_classification_is_clip_benchmarks():
    """CLIP_benchmark's own zero-shot classifier and classification (zeroshot_classification) on the same
    embeddings (a model that hands them back): its acc1 and mean_per_class_recall are pathboard's accuracy and
    balanced accuracy."""
    import torch
    from clip_benchmark.metrics import zeroshot_classification

    from pathboard.core.science.metrics import classification_metrics

    rng = np.random.default_rng(4)
    classnames, templates = ["adipose", "tumour", "stroma", "mucus", "lymphocytes"], ["{c}.", "an image of {c}."]
    texts = [t.format(c=c) for c in classnames for t in templates]
    table = rng.normal(size=(len(texts), 16))  # each prompt text's embedding
    labels = rng.integers(0, len(classnames), 120)
    images = table[labels * len(templates)] + rng.normal(scale=2.5, size=(120, 16))  # near their class's prompt

    class Embedded(torch.nn.Module):  # "encodes" by looking the embedding up, as a CLIP model would compute it
        def encode_image(self, x):
            return x

        def encode_text(self, ids):
            return torch.tensor(table, dtype=torch.float32)[ids]

    class Images(torch.utils.data.TensorDataset):
        classes = classnames

    loader = torch.utils.data.DataLoader(Images(torch.tensor(images, dtype=torch.float32), torch.tensor(labels)),
                                         batch_size=32)
    tokenizer = lambda batch: torch.tensor([texts.index(t) for t in batch])  # noqa: E731
    # evaluate() itself, step by step: its accuracy() calls float() on a 1-element array, which numpy 2.4 refuses
    classifier = zeroshot_classification.zero_shot_classifier(Embedded(), tokenizer, classnames, templates, "cpu",
                                                              amp=False)
    logits, target = zeroshot_classification.run_classification(Embedded(), classifier, loader, "cpu", amp=False)
    pred = logits.argmax(axis=1)
    theirs = {"acc1": float((pred == target).float().mean()),
              "mean_per_class_recall": zeroshot_classification.balanced_accuracy_score(target, pred)}

    def encode(batch):
        return normalised(table[[texts.index(t) for t in batch]])

    classifier = zero_shot_classifier(encode, {c: [t.format(c=c) for t in templates] for c in classnames})
    ours = {m.name: m.value for m in classification_metrics(labels, predict(images, classifier), classnames,
                                                           n_boot=0)}
    assert 0.3 < theirs["acc1"] < 0.95  # neither chance nor trivial
    assert ours["accuracy"] == pytest.approx(theirs["acc1"])
    assert ours["balanced_accuracy"] == pytest.approx(theirs["mean_per_class_recall"])
