"""Classifier heads: vectors in, label probabilities out.

A head is fitted with scikit-learn or numpy (``fit`` imports sklearn lazily) and served with
numpy alone: everything it needs is a few arrays (``to_arrays``) and a JSON-able dict
(``params``), which is what an artefact stores. One row costs a few microseconds.

- :class:`LogisticHead`: multinomial logistic regression, ``softmax((X @ W.T + b) / T)``, with
  the temperature ``T`` fitted on cross-validated out-of-fold logits (temperature scaling).
- :class:`CentroidHead`: one unit centroid per label; ``softmax(s * cos)`` with the scale ``s``
  fitted the same way.
- :class:`KnnHead`: cosine k-nearest neighbours; a label's probability is its share of the
  (non-negative) similarity of the k neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
Matrix = npt.NDArray[np.float64]
Targets = npt.NDArray[np.int64]
JsonDict = dict[str, Any]


@runtime_checkable
class Head(Protocol):
    kind: str

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def input_dim(self) -> int: ...

    def predict_proba(self, X: Array) -> Matrix:
        """Return ``(n, len(labels))`` probabilities for ``(n, input_dim)`` rows."""
        ...

    def to_arrays(self) -> dict[str, Array]: ...

    def params(self) -> JsonDict: ...

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Array], params: Mapping[str, Any]) -> Self: ...


def softmax(z: Matrix) -> Matrix:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def fit_scale(scores: Matrix, y: Targets, *, max_scale: float = 100.0) -> float:
    """The ``s`` in ``[0.01, max_scale]`` minimising the log-loss of ``softmax(s * scores)`` against ``y``.

    The bound matters when the held-out rows are perfectly separated: the log-loss then keeps
    falling as ``s`` grows, and an unbounded fit would claim certainty.
    """
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y))

    def nll(log_s: float) -> float:
        z = scores * np.exp(log_s)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z[rows, y] - np.log(np.exp(z).sum(axis=1))
        return float(-log_p.mean())

    result = minimize_scalar(nll, bounds=(np.log(1e-2), np.log(max_scale)), method="bounded")
    return float(np.exp(result.x))


def out_of_fold_scores(
    X: Matrix, y: Targets, folds: int, seed: int, score: Callable[[Matrix, Targets, Matrix], Matrix]
) -> tuple[Matrix, Targets] | None:
    """Scores for every row from a model fitted without its fold; ``None`` if too few rows."""
    from sklearn.model_selection import StratifiedKFold

    splits = min(folds, int(np.bincount(y).min()))
    if splits < 2:
        return None
    out = np.zeros((len(y), int(y.max()) + 1))
    for train, test in StratifiedKFold(splits, shuffle=True, random_state=seed).split(X, y):
        out[test] = score(X[train], y[train], X[test])
    return out, y


def _labels(params: Mapping[str, Any]) -> tuple[str, ...]:
    labels = params.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or len(labels) < 2:
        raise ValueError("params.labels must be a list of at least two label names")
    return tuple(labels)


def _array(arrays: Mapping[str, Array], name: str, shape: Sequence[int | None]) -> Array:
    if name not in arrays:
        raise ValueError(f"missing array {name!r}")
    array = arrays[name]
    if array.ndim != len(shape) or any(
        w is not None and w != n for w, n in zip(shape, array.shape, strict=True)
    ):
        want = "x".join("?" if w is None else str(w) for w in shape)
        raise ValueError(f"array {name!r} has shape {array.shape}, expected {want}")
    return array


def _check_fit_inputs(X: Array, y: Targets, labels: Sequence[str]) -> Matrix:
    if len(labels) < 2:
        raise ValueError("a head needs at least two labels")
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, dim) with n == len(y); got {X.shape} and {len(y)}")
    if y.min() < 0 or y.max() >= len(labels):
        raise ValueError("y must index into labels")
    return np.asarray(X, dtype=np.float64)


class LogisticHead:
    kind = "logreg"

    def __init__(self, labels: Sequence[str], weights: Array, bias: Array, temperature: float) -> None:
        self._labels = tuple(labels)
        self._w_t = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).T)
        self._b = np.asarray(bias, dtype=np.float64)
        self._inv_t = 1.0 / float(temperature)
        self.temperature = float(temperature)

    @classmethod
    def fit(
        cls,
        X: Array,
        y: Targets,
        labels: Sequence[str],
        *,
        C: float = 10.0,
        calib_folds: int = 5,
        seed: int = 0,
    ) -> LogisticHead:
        Xf = _check_fit_inputs(X, y, labels)
        n_labels = len(labels)

        def fit_lr(Xt: Matrix, yt: Targets) -> tuple[Matrix, Matrix]:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=C, max_iter=2000)
            lr.fit(Xt, yt)
            w = np.zeros((n_labels, Xf.shape[1]))
            b = np.zeros(n_labels)
            present = lr.classes_.astype(np.int64)
            if len(present) == 2:  # sklearn keeps one row for two classes; softmax([-z/2, z/2]) = sigmoid(z)
                w[present] = np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
                b[present] = [-lr.intercept_[0] / 2, lr.intercept_[0] / 2]
            else:
                w[present], b[present] = lr.coef_, lr.intercept_
            b[np.setdiff1d(np.arange(n_labels), present)] = -1e4  # a label absent from these rows
            return w, b

        def logits(Xt: Matrix, yt: Targets, Xv: Matrix) -> Matrix:
            w, b = fit_lr(Xt, yt)
            return Xv @ w.T + b

        oof = out_of_fold_scores(Xf, y, calib_folds, seed, logits)
        temperature = 1.0 if oof is None else 1.0 / fit_scale(*oof)
        w, b = fit_lr(Xf, y)
        return cls(labels, w, b, temperature)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def input_dim(self) -> int:
        return int(self._w_t.shape[0])

    def predict_proba(self, X: Array) -> Matrix:
        z = np.asarray(X, dtype=np.float64) @ self._w_t
        z += self._b
        z *= self._inv_t
        return softmax(z)

    def to_arrays(self) -> dict[str, Array]:
        return {
            "weights": self._w_t.T.copy(),
            "bias": self._b.copy(),
            "temperature": np.array([self.temperature]),
        }

    def params(self) -> JsonDict:
        return {"labels": list(self._labels)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Array], params: Mapping[str, Any]) -> Self:
        labels = _labels(params)
        n = len(labels)
        weights = _array(arrays, "weights", (n, None))
        bias = _array(arrays, "bias", (n,))
        temperature = float(_array(arrays, "temperature", (1,))[0])
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        return cls(labels, weights, bias, temperature)


def _unit_rows(X: Array) -> Matrix:
    rows: Matrix = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Matrix = rows / norms
    return unit


def _centroids(X: Matrix, y: Targets, n_labels: int) -> Matrix:
    sums = np.zeros((n_labels, X.shape[1]))
    np.add.at(sums, y, X)
    return _unit_rows(sums)


class CentroidHead:
    kind = "centroid"

    def __init__(self, labels: Sequence[str], centroids: Array, scale: float) -> None:
        self._labels = tuple(labels)
        self._c_t = np.ascontiguousarray(_unit_rows(centroids).T)
        self.scale = float(scale)

    @classmethod
    def fit(
        cls, X: Array, y: Targets, labels: Sequence[str], *, calib_folds: int = 5, seed: int = 0
    ) -> CentroidHead:
        Xf = _unit_rows(_check_fit_inputs(X, y, labels))
        n_labels = len(labels)

        def cosines(Xt: Matrix, yt: Targets, Xv: Matrix) -> Matrix:
            return Xv @ _centroids(Xt, yt, n_labels).T

        oof = out_of_fold_scores(Xf, y, calib_folds, seed, cosines)
        scale = fit_scale(*oof, max_scale=1000.0) if oof is not None else 20.0
        return cls(labels, _centroids(Xf, y, n_labels), scale)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def input_dim(self) -> int:
        return int(self._c_t.shape[0])

    def predict_proba(self, X: Array) -> Matrix:
        z = _unit_rows(X) @ self._c_t
        z *= self.scale
        return softmax(z)

    def to_arrays(self) -> dict[str, Array]:
        return {"centroids": self._c_t.T.copy(), "scale": np.array([self.scale])}

    def params(self) -> JsonDict:
        return {"labels": list(self._labels)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Array], params: Mapping[str, Any]) -> Self:
        labels = _labels(params)
        centroids = _array(arrays, "centroids", (len(labels), None))
        scale = float(_array(arrays, "scale", (1,))[0])
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        return cls(labels, centroids, scale)


class KnnHead:
    kind = "knn"

    def __init__(self, labels: Sequence[str], vectors: Array, targets: Array, k: int) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        targets = np.asarray(targets, dtype=np.int64)
        if len(targets) != len(vectors) or len(targets) == 0:
            raise ValueError("vectors and targets must be non-empty and of equal length")
        if targets.min() < 0 or targets.max() >= len(labels):
            raise ValueError("targets must index into labels")
        self._labels = tuple(labels)
        self._vectors = np.ascontiguousarray(_unit_rows(vectors), dtype=np.float32)
        self._targets = targets
        self.k = min(k, len(targets))

    @classmethod
    def fit(cls, X: Array, y: Targets, labels: Sequence[str], *, k: int = 10) -> KnnHead:
        _check_fit_inputs(X, y, labels)
        return cls(labels, X, y, k)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def input_dim(self) -> int:
        return int(self._vectors.shape[1])

    def predict_proba(self, X: Array) -> Matrix:
        sims = _unit_rows(X).astype(np.float32) @ self._vectors.T
        k = self.k
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.indices(sims.shape)[1]
        weights = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0).astype(np.float64) + 1e-6
        votes = np.zeros((len(sims), len(self._labels)))
        np.add.at(votes, (np.arange(len(sims))[:, None], self._targets[top]), weights)
        votes /= votes.sum(axis=1, keepdims=True)
        return votes

    def to_arrays(self) -> dict[str, Array]:
        return {"vectors": self._vectors.copy(), "targets": self._targets.copy()}

    def params(self) -> JsonDict:
        return {"labels": list(self._labels), "k": self.k}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Array], params: Mapping[str, Any]) -> Self:
        labels = _labels(params)
        k = params.get("k")
        if not isinstance(k, int) or isinstance(k, bool):
            raise ValueError("params.k must be an integer")
        vectors = _array(arrays, "vectors", (None, None))
        targets = _array(arrays, "targets", (len(vectors),))
        return cls(labels, vectors, targets, k)


HEADS: Mapping[str, type[LogisticHead] | type[CentroidHead] | type[KnnHead]] = MappingProxyType(
    {"logreg": LogisticHead, "centroid": CentroidHead, "knn": KnnHead}
)


def fit_head(kind: str, X: Array, y: Targets, labels: Sequence[str], **options: Any) -> Head:
    """Fit the head registered as ``kind`` (``logreg``, ``centroid`` or ``knn``)."""
    cls = HEADS.get(kind)
    if cls is None:
        raise ValueError(f"unknown head {kind!r}; known heads: {', '.join(HEADS)}")
    head: Head = cls.fit(X, y, labels, **options)
    return head
