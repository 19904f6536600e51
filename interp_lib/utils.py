"""Small helpers used across the course: seeding, batching, accuracy, closeness."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

__all__ = [
    "seed_everything",
    "batches",
    "predict_logits",
    "accuracy",
    "rel_error",
    "assert_close",
    "cross_val_probs",
]

DEFAULT_THREADS = 1


def seed_everything(seed: int = 0, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch, pin torch's thread count, and make torch deterministic.

    ``threads`` defaults to the environment variable ``INTERP_LIB_THREADS`` or 1; one
    thread makes every float sum come out in the same order on every run. Returns a
    ``torch.Generator`` seeded with ``seed`` for the exercises that take one.
    """
    threads = int(os.environ.get("INTERP_LIB_THREADS", DEFAULT_THREADS)) if threads is None else threads
    if threads < 1:
        raise ValueError(f"`threads` must be >= 1, got {threads}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices ``[0:b], [b:2b], ...`` covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The model's logits for ``x``, computed in eval mode in batches (mode restored)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[s]) for s in batches(len(x), batch_size)])
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    return (predict_logits(model, x, batch_size).argmax(1) == y).float().mean().item()


def rel_error(a, b) -> float:
    """``||a - b|| / ||b||`` (Frobenius norms over all elements); 0 when both are zero."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    denom = b.norm()
    diff = (a - b).norm()
    if denom == 0:
        return 0.0 if diff == 0 else float("inf")
    return (diff / denom).item()


def assert_close(
    actual, expected, rtol: float = 1e-5, atol_scale: float | None = None, what: str = "result"
) -> None:
    """Assert ``||a - b|| / ||b|| <= rtol`` and, per element, ``|a - b| <= atol_scale * max|b|``.

    ``atol_scale`` defaults to ``10 * rtol``. Raw per-element relative error is never
    used: it explodes where the reference is tiny.
    """
    a = torch.as_tensor(actual, dtype=torch.float64)
    b = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}")
    if not torch.isfinite(a).all():
        raise AssertionError(f"{what}: contains NaN or infinite values")
    err = rel_error(a, b)
    if err > rtol:
        raise AssertionError(f"{what}: relative error ||a-b||/||b|| = {err:.3g} > {rtol:g}")
    scale = (10 * rtol if atol_scale is None else atol_scale) * b.abs().max().item()
    worst = (a - b).abs().max().item() if a.numel() else 0.0
    if worst > scale:
        raise AssertionError(f"{what}: largest element difference {worst:.3g} > {scale:.3g}")


def cross_val_probs(
    features: np.ndarray,
    labels: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    make_model: Callable[[], object] | None = None,
) -> np.ndarray:
    """Out-of-sample class probabilities by stratified ``folds``-fold cross-validation.

    Every example's probabilities come from a model that never saw it (what confident
    learning needs). ``make_model`` builds a fresh scikit-learn classifier
    (default: a scaled logistic regression).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(labels)
    k = int(y.max()) + 1
    if make_model is None:
        make_model = lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))  # noqa: E731
    probs = np.zeros((len(y), k))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(X, y):
        clf = make_model()
        clf.fit(X[train], y[train])
        probs[np.ix_(test, clf.classes_)] = clf.predict_proba(X[test])
    return probs
