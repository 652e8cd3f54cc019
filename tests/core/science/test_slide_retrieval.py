"""Slide retrieval's Acc@K and MVAcc@K, as TITAN defines them."""
import numpy as np

from pathboard.core.science.slide_retrieval import majority, slide_retrieval_metrics, top_labels


def test_top_labels_rank_by_similarity_and_skip_the_excluded():
    gallery = np.eye(4, dtype=np.float32)
    queries = np.array([[1.0, 0.9, 0.1, 0.0]], dtype=np.float32)
    labels = np.array([0, 1, 2, 3])
    assert top_labels(queries, gallery, labels, 3).tolist() == [[0, 1, 2]]
    exclude = np.array([[True, False, False, False]])
    assert top_labels(queries, gallery, labels, 3, exclude).tolist() == [[1, 2, 3]]
    exclude = np.array([[True, True, True, False]])
    assert top_labels(queries, gallery, labels, 3, exclude).tolist() == [[3, -1, -1]]  # fewer than K left


def test_majority_ties_go_to_the_label_ranked_first():
    assert majority(np.array([[2, 1, 1], [2, 1, 3], [1, 2, 2], [-1, -1, -1]])).tolist() == [1, 2, 2, -1]


def test_acc_and_mvacc_at_k():
    # query 0 (label 0): neighbours labelled 1, 0, 0 -> acc@1 0, acc@3 1, mvacc@3 1
    # query 1 (label 1): neighbours labelled 0, 0, 1 -> acc@1 0, acc@3 1, mvacc@3 0
    gallery = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], dtype=np.float32)
    gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    metrics = {m.name: m.value for m in slide_retrieval_metrics(
        gallery[[0, 3]], [0, 1], gallery, np.array([1, 0, 0, 1]), ks=(1, 3))}
    assert metrics["acc@1"] == 0.5  # query 1 is the last gallery slide itself: its own label first
    assert metrics["acc@3"] == 1.0
    assert metrics["mvacc@1"] == 0.5
    assert metrics["mvacc@3"] == 0.5


def test_the_interval_resamples_patients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    y = np.arange(40) % 2
    by_slide = slide_retrieval_metrics(x, y, x, y, np.eye(40, dtype=bool))
    patients = np.repeat(np.arange(4), 10)
    by_patient = slide_retrieval_metrics(x, y, x, y, np.eye(40, dtype=bool), groups=patients)
    assert by_slide[0].value == by_patient[0].value
    assert by_patient[0].units == 4 and by_slide[0].units == 40
