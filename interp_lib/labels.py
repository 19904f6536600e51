"""Lesson 01 - Labels lie: finding label errors with confident learning.

Confident learning (Northcutt, Jiang & Chuang 2021) estimates which given labels are
wrong from out-of-sample predicted probabilities alone. The exercises follow
cleanlab's definitions exactly, so your answers can be checked against it.
"""

from __future__ import annotations

import numpy as np

from ._checks.labels import check_labels, check_probs
from .exercises import exercise, one_of

__all__ = [
    "confident_thresholds",
    "confident_joint",
    "find_label_issues",
    "round_preserving_row_totals",
    "observed_accuracy",
]


_CHECKS = {"labels": check_labels, "pred_probs": check_probs}


@exercise("01.1", points=2, checks=_CHECKS)
def confident_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Per-class confidence thresholds ``t_j`` of confident learning.

    ``t_j`` is the average self-confidence of class ``j``: the mean of ``p(y = j | x)``
    over the examples whose *given* label is ``j``::

        t_j = mean_{i : labels[i] == j} pred_probs[i, j]

    A class with no examples gets the threshold 2 (no probability can reach it). Every
    threshold is clipped from below at 2e-6.

    Args:
        labels: int array ``(N,)`` of given (possibly wrong) labels in ``0..K-1``.
        pred_probs: float array ``(N, K)`` of out-of-sample predicted probabilities.

    Returns:
        float array ``(K,)``.

    Hint: a boolean mask ``labels == j`` selects the rows of one class.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 01.1 `confident_thresholds` (lesson 01): write it in interp_lib/labels.py"
    )


@exercise("01.2", points=3, checks=_CHECKS)
def confident_joint(labels: np.ndarray, pred_probs: np.ndarray, calibrate: bool = True) -> np.ndarray:
    """The confident joint ``C``: counts of (given label i, likely true label j).

    1. Thresholds ``t = confident_thresholds(labels, pred_probs)`` (exercise 01.1).
    2. Example ``n`` is *confident* for class ``j`` when ``pred_probs[n, j] >= t_j - 1e-6``.
       Examples confident for no class are not counted. For the rest, the likely true
       label is the confident class if there is exactly one, otherwise the argmax of
       ``pred_probs[n]`` over all classes.
    3. ``C[i, j]`` counts the counted examples with given label ``i`` and likely true
       label ``j``. Then every diagonal entry is raised to at least 1.
    4. With ``calibrate=True``: scale each row ``i`` to sum to the number of examples
       with given label ``i`` (``C[i] / C[i].sum() * count_i``), then scale the whole
       matrix to sum to ``N``, then round with :func:`round_preserving_row_totals`.

    Args:
        labels: int array ``(N,)``; pred_probs: float array ``(N, K)``.
        calibrate: apply step 4.

    Returns:
        int array ``(K, K)``; rows are given labels, columns likely true labels.

    Hint: ``np.add.at(C, (rows, cols), 1)`` counts pairs.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 01.2 `confident_joint` (lesson 01): write it in interp_lib/labels.py")


@exercise(
    "01.3",
    points=2,
    stretch=True,
    checks={**_CHECKS, "filter_by": one_of("prune_by_noise_rate", "confident_learning")},
)
def find_label_issues(
    labels: np.ndarray, pred_probs: np.ndarray, filter_by: str = "prune_by_noise_rate"
) -> np.ndarray:
    """Flag the examples whose given label is probably wrong (a boolean mask ``(N,)``).

    ``filter_by="confident_learning"``: flag the off-diagonal examples of the confident
    joint - the counted examples (step 2 of exercise 01.2) whose likely true label
    differs from the given one.

    ``filter_by="prune_by_noise_rate"`` (cleanlab's default):

    1. ``C = confident_joint(labels, pred_probs)`` (calibrated) and ``P = C.T`` (rows:
       likely true label j, columns: given label k).
    2. Keep at least one example per class: for each column ``k``, raise ``P[k, k]`` to
       at least 1 and take the added amount from the column's other *non-zero*
       entries in equal shares (entries cannot go below 0); then round with
       :func:`round_preserving_row_totals`.
    3. For each given label ``k`` with more than one example, and each ``j != k``,
       flag the ``P[j, k]`` examples of given label ``k`` with the largest margin
       ``pred_probs[:, j] - pred_probs[:, k]``.

    In both modes, finally un-flag every example whose ``pred_probs`` argmax (with
    ``1e-6`` added to its given label's probability first) equals its given label.

    Returns:
        bool array ``(N,)``.

    Hint: ``np.argsort(-margin)[:count]`` picks the largest margins.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 01.3 `find_label_issues` (lesson 01): write it in interp_lib/labels.py"
    )


# --------------------------------------------------------------------------- helpers


def observed_accuracy(acc_clean: float, error_rate: float, p_reproduce: float) -> float:
    """Accuracy measured against noisy test labels.

    ``(1 - e) * acc_clean + e * p_reproduce``: correct on the correctly labelled part,
    and "correct" on the mislabelled part only where the model reproduces the wrong
    label.
    """
    return (1 - error_rate) * acc_clean + error_rate * p_reproduce


def round_preserving_row_totals(matrix: np.ndarray) -> np.ndarray:
    """Round each row of a float matrix to integers whose sum is the row's rounded sum.

    Values are rounded to the nearest integer; where that changes a row's total, the
    entries with the largest rounding loss (or gain) are moved by one until the total
    matches, as cleanlab does.
    """
    out = []
    for row in np.asarray(matrix, dtype=float):
        ints = row.round()
        target = row.sum().round()
        while abs(ints.sum() - target) > 1e-6:
            diff = np.round(target - ints.sum())
            step = -1 if diff < 0 else 1
            n_changes = min(int(abs(diff)), len(row))
            for i in np.argsort(row - ints)[::-step][:n_changes]:
                ints[i] += step
        out.append(ints)
    return np.asarray(out).astype(int)
