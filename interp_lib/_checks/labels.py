"""Argument validators of lesson 01's exercises (interp_lib/labels.py)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_labels",
    "check_probs",
]


def check_labels(value, name, args) -> None:
    arr = np.asarray(value)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must be a 1-D array of integer class labels, got {arr.dtype} {arr.shape}")
    probs = args.get("pred_probs")
    if probs is not None:
        probs = np.asarray(probs)
        if probs.ndim == 2 and len(arr) != len(probs):
            raise ValueError(f"`{name}` has {len(arr)} entries but `pred_probs` has {len(probs)} rows")
        if probs.ndim == 2 and len(arr) and (arr.min() < 0 or arr.max() >= probs.shape[1]):
            raise ValueError(f"`{name}` must lie in 0..{probs.shape[1] - 1} (the columns of `pred_probs`)")


def check_probs(value, name, _args) -> None:
    arr = np.asarray(value)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(
            f"`{name}` must be a 2-D float array (N, K) of probabilities, got {arr.dtype} {arr.shape}"
        )
    if arr.size and (arr.min() < 0 or arr.max() > 1 or not np.allclose(arr.sum(1), 1, atol=1e-4)):
        raise ValueError(f"`{name}` rows must be probabilities: entries in [0, 1] summing to 1")
