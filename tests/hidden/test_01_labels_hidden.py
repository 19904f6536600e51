"""Hidden tests for lesson 01 (instructors only: left out of the student release; their
output is shown to students after the due date)."""

import numpy as np
import pytest

from interp_lib.labels import confident_joint, confident_thresholds


def _random_problem(seed, n=300, k=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, k, size=n)
    return labels, probs


@pytest.mark.hidden
@pytest.mark.exercise("01.1", weight=1)
def test_thresholds_on_random_problems():
    for seed in range(3):
        labels, probs = _random_problem(seed)
        expected = [probs[labels == j, j].mean() for j in range(probs.shape[1])]
        np.testing.assert_allclose(confident_thresholds(labels, probs), expected, rtol=1e-12)


@pytest.mark.hidden
@pytest.mark.exercise("01.2", weight=1)
def test_confident_joint_counts_only_confident_examples():
    for seed in range(3):
        labels, probs = _random_problem(seed)
        cj = confident_joint(labels, probs, calibrate=False)
        thresholds = np.array([probs[labels == j, j].mean() for j in range(probs.shape[1])])
        counted = (probs >= thresholds - 1e-6).any(1).sum()
        diag_fill = (np.diag(cj) == 1).sum()  # entries raised to 1 may add at most one each
        assert counted <= cj.sum() <= counted + diag_fill
