from __future__ import annotations

import time

import numpy as np
import pytest

from classifiers.heads import HEADS, CentroidHead, Head, KnnHead, LogisticHead, fit_head, softmax


def _blobs(n_per: int = 40, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 3
    X = np.vstack([c + rng.normal(size=(n_per, dim)) for c in centres])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.repeat(np.arange(3), n_per).astype(np.int64)
    return X.astype(np.float32), y


LABELS = ("a", "b", "c")


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_head_learns_and_round_trips_through_arrays(kind: str) -> None:
    X, y = _blobs()
    head = fit_head(kind, X, y, LABELS)
    assert isinstance(head, Head)
    assert head.kind == kind
    proba = head.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == y).mean() > 0.95
    arrays = head.to_arrays()
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    restored = type(head).from_arrays(arrays, head.params())
    assert restored.labels == LABELS
    assert restored.input_dim == 16
    np.testing.assert_allclose(restored.predict_proba(X[:5]), proba[:5], rtol=1e-6, atol=1e-9)


def test_logistic_head_serves_with_numpy_formula() -> None:
    X, y = _blobs()
    head = LogisticHead.fit(X, y, LABELS)
    arrays = head.to_arrays()
    logits = (X @ arrays["weights"].T + arrays["bias"]) / arrays["temperature"][0]
    np.testing.assert_allclose(head.predict_proba(X), softmax(logits.astype(np.float64)), rtol=1e-6)
    assert 0.01 < head.temperature < 100


def test_logistic_head_temperature_softens_overconfidence() -> None:
    # Noisy labels: a well-calibrated head must not claim near-certainty on average.
    X, y = _blobs(n_per=60)
    rng = np.random.default_rng(1)
    flip = rng.random(len(y)) < 0.3
    y_noisy = np.where(flip, rng.integers(0, 3, len(y)), y).astype(np.int64)
    head = LogisticHead.fit(X, y_noisy, LABELS, C=1000.0)
    confidence = head.predict_proba(X).max(axis=1).mean()
    assert head.temperature > 1.0
    assert confidence < 0.97


def test_logistic_head_two_labels() -> None:
    X, y = _blobs()
    keep = y < 2
    head = LogisticHead.fit(X[keep], y[keep], ("a", "b"))
    proba = head.predict_proba(X[keep])
    assert proba.shape == (keep.sum(), 2)
    assert (proba.argmax(axis=1) == y[keep]).mean() > 0.95


def test_centroid_head_scale_and_cosine() -> None:
    X, y = _blobs()
    head = CentroidHead.fit(X, y, LABELS)
    assert head.scale > 1.0
    # Scaling an input does not change cosine similarity.
    np.testing.assert_allclose(head.predict_proba(X[:3] * 5), head.predict_proba(X[:3]), atol=1e-9)


def test_knn_head_similarity_weighted_vote() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    head = KnnHead(("x", "y"), vectors, np.array([0, 0, 1]), k=2)
    proba = head.predict_proba(np.array([[1.0, 0.05]]))
    assert proba[0, 0] == pytest.approx(1.0, abs=1e-5)
    head3 = KnnHead(("x", "y"), vectors, np.array([0, 0, 1]), k=3)
    p = head3.predict_proba(np.array([[0.6, 0.8]]))[0]
    sims = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) @ np.array([0.6, 0.8])
    assert p[1] == pytest.approx(sims[2] / sims.sum(), rel=1e-4)
    assert head3.params() == {"labels": ["x", "y"], "k": 3}


def test_from_arrays_rejects_wrong_shapes() -> None:
    X, y = _blobs()
    head = LogisticHead.fit(X, y, LABELS, calib_folds=2)
    arrays = head.to_arrays()
    arrays["bias"] = np.zeros(5)
    with pytest.raises(ValueError, match="'bias' has shape"):
        LogisticHead.from_arrays(arrays, head.params())
    with pytest.raises(ValueError, match="labels"):
        LogisticHead.from_arrays(head.to_arrays(), {"labels": "abc"})


def test_unknown_head_kind() -> None:
    X, y = _blobs()
    with pytest.raises(ValueError, match="known heads: logreg, centroid, knn"):
        fit_head("forest", X, y, LABELS)


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_single_row_is_fast(kind: str) -> None:
    X, y = _blobs(n_per=300, dim=384)
    head = fit_head(kind, X, y, LABELS)
    row = X[:1]
    head.predict_proba(row)
    runs = 500
    start = time.perf_counter()
    for _ in range(runs):
        head.predict_proba(row)
    per_row = (time.perf_counter() - start) / runs
    assert per_row < 500e-6, f"{kind}: {per_row * 1e6:.0f} µs per row"
