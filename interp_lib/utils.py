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
    "diagnose",
    "cross_val_probs",
]

DEFAULT_THREADS = 1


def seed_everything(seed: int = 0, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch and pin torch's thread count (on a GPU, also switch
    torch to its deterministic algorithms).

    ``threads`` defaults to the environment variable ``INTERP_LIB_THREADS`` or 1; one
    thread makes every float sum come out in the same order on every run. On the CPU that
    is all it takes: the kernels the course uses give the same numbers for a given thread
    count (the lessons' stored outputs come from one thread; CI compares them at two). On
    a GPU, atomic additions reorder sums from run to run, so there
    ``torch.use_deterministic_algorithms`` is switched on too (not on the CPU: there it
    changes nothing the course uses and costs over a second, loading torch's compiler
    configuration). Returns a ``torch.Generator`` seeded with ``seed`` for the exercises
    that take one.
    """
    threads = int(os.environ.get("INTERP_LIB_THREADS", DEFAULT_THREADS)) if threads is None else threads
    if threads < 1:
        raise ValueError(f"`threads` must be >= 1, got {threads}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if torch.cuda.is_available():
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


def _fits(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    return a.shape == b.shape and rel_error(a, b) <= tol


def _shape_diagnosis(a: torch.Tensor, b: torch.Tensor) -> list[str]:
    """Likely causes of a shape mismatch: permuted axes, a missing or extra axis, a
    reduction over the wrong axis, a flatten."""
    out = []
    if sorted(a.shape) == sorted(b.shape) and a.dim() == b.dim():
        if a.dim() >= 2 and a.transpose(-1, -2).shape == b.shape:
            out.append("transposed? the last two axes are swapped")
        else:
            out.append("the same axes in another order: permuted or transposed?")
    elif a.numel() == b.numel():
        if [n for n in a.shape if n != 1] == [n for n in b.shape if n != 1]:
            out.append("an axis of size 1 too many or too few (keepdim, squeeze or unsqueeze?)")
        else:
            out.append("the same number of elements: reshaped or flattened differently?")
    else:
        for axis in range(b.dim() + 1):
            shape = list(b.shape)
            if a.dim() == b.dim() + 1 and list(a.shape[:axis]) + list(a.shape[axis + 1 :]) == shape:
                out.append(f"an extra axis {axis} of size {a.shape[axis]}: not reduced over it?")
                break
            if a.dim() + 1 == b.dim() and shape[:axis] + shape[axis + 1 :] == list(a.shape):
                out.append(
                    f"axis {axis} (size {b.shape[axis]}) is missing: summed or averaged over the wrong axis?"
                )
                break
    return out


def _ratio_text(c: float) -> str:
    if c >= 1:
        return f"about {c:.3g}x too large"
    return f"about {1 / c:.3g}x too small ({c:.3g} x expected)"


def diagnose(actual, expected, rtol: float = 1e-5, factors: dict | None = None) -> list[str]:
    """Likely causes of ``actual`` differing from ``expected``, for the common mistakes
    that can be recognised from the two values: a constant or all-zero output (an
    unfinished stub), NaN/inf, a shape that is permuted, flattened, missing an axis or
    not reduced, a flipped sign, a wrong scale ("about 64x too large"), an offset,
    swapped last axes, and - when the test names them in ``factors`` (name -> tensor,
    e.g. ``{"(x - baseline)": x - baseline}``) - a factor left out or applied twice.
    Returns short phrases (empty: nothing recognised)."""
    a = torch.as_tensor(actual, dtype=torch.float64)
    b = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != b.shape:
        return _shape_diagnosis(a, b)
    out = []
    bad = ~torch.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        kinds = "NaN" if torch.isnan(a).any() else "inf"
        out.append(
            f"{int(bad.sum())} of {a.numel()} elements are not finite ({kinds}, first at index {first}): "
            "a division by zero or the log of 0?"
        )
        return out
    if a.numel() == 0:
        return out
    tol = max(10 * rtol, 1e-3)  # near enough to name the cause
    if (a == 0).all() and (b != 0).any():
        out.append("every element is 0: still a placeholder (zeros_like) or nothing accumulated?")
        return out
    if a.numel() > 1 and (a == a.flatten()[0]).all() and not (b == b.flatten()[0]).all():
        out.append(f"every element is {a.flatten()[0].item():.4g}: a constant, like an unfinished stub")
        return out
    bb = float((b * b).sum())
    if bb > 0:
        c = float((a * b).sum()) / bb  # least-squares scale of expected onto actual
        if _fits(-a, b, tol):
            out.append("the sign is flipped: -actual matches the expected")
        elif c > 0 and abs(c - 1) > tol and _fits(a, c * b, tol):
            out.append(_ratio_text(c))
    offset = (a - b).mean()
    if not out and abs(float(offset)) > 0 and _fits(a - offset, b, tol):
        out.append(f"off by a constant {float(offset):.4g} everywhere (a missing baseline or offset?)")
    if not out and a.dim() >= 2 and a.shape[-1] == a.shape[-2] and _fits(a.transpose(-1, -2), b, tol):
        out.append("transposed: the last two axes are swapped (the wrong axis?)")
    for name, f in (factors or {}).items():
        f = torch.as_tensor(f, dtype=torch.float64)
        try:
            missing, twice = _fits(a * f, b, tol), _fits(a, b * f, tol)
        except RuntimeError:  # not broadcastable: not this mistake
            continue
        if missing:
            out.append(f"the factor {name} is missing: actual * {name} matches the expected")
        elif twice:
            out.append(f"the factor {name} is applied twice: actual / {name} matches the expected")
    return out


def assert_close(
    actual,
    expected,
    rtol: float = 1e-5,
    atol_scale: float | None = None,
    what: str = "result",
    factors: dict | None = None,
    hint: str | None = None,
) -> None:
    """Assert ``||a - b|| / ||b|| <= rtol`` and, per element, ``|a - b| <= atol_scale * max|b|``.

    ``atol_scale`` defaults to ``10 * rtol``. Raw per-element relative error is never
    used: it explodes where the reference is tiny. A failure keeps the exact tolerance
    message and adds, on the same line, the likely cause when :func:`diagnose`
    recognises one (``factors``: named factors a common mistake leaves out, e.g.
    ``{"(x - baseline)": x - baseline}``), then ``hint`` (the test's own advice).
    """
    a = torch.as_tensor(actual, dtype=torch.float64)
    b = torch.as_tensor(expected, dtype=torch.float64)

    def fail(message: str) -> None:
        causes = diagnose(a, b, rtol, factors) + ([hint] if hint else [])
        raise AssertionError(message + "".join(f"; {c}" for c in causes))

    if a.shape != b.shape:
        fail(f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}")
    if not torch.isfinite(a).all():
        fail(f"{what}: contains NaN or infinite values")
    err = rel_error(a, b)
    if err > rtol:
        fail(f"{what}: relative error ||a-b||/||b|| = {err:.3g} > {rtol:g}")
    scale = (10 * rtol if atol_scale is None else atol_scale) * b.abs().max().item()
    worst = (a - b).abs().max().item() if a.numel() else 0.0
    if worst > scale:
        fail(f"{what}: largest element difference {worst:.3g} > {scale:.3g}")


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
