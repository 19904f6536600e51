"""Lesson 01: confident learning, checked by hand and against cleanlab."""

import numpy as np
import pytest

from interp_lib import data
from interp_lib.labels import (
    confident_joint,
    confident_thresholds,
    find_label_issues,
    observed_accuracy,
    round_preserving_row_totals,
)
from interp_lib.utils import cross_val_probs

# A hand-worked example: 6 examples, 3 classes.
LABELS = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.2, 0.7, 0.1],  # given 0, looks like 1
        [0.1, 0.8, 0.1],
        [0.1, 0.6, 0.3],
        [0.1, 0.1, 0.8],
        [0.6, 0.1, 0.3],  # given 2, looks like 0
    ]
)


class _NoisyDigits:
    """Ten noisy-label problems (seeds 0..9), each built when first indexed: the
    library-free tests need the first three, the cleanlab cross-checks all ten."""

    def __init__(self):
        x, y = data.load_digits("all", size=8)
        self.x, self.y, self.cache = x.reshape(len(x), -1).numpy(), y.numpy(), {}

    def _problem(self, seed):
        if seed not in self.cache:
            noisy, flipped = data.flip_labels(self.y, 0.03, seed=seed)
            self.cache[seed] = (noisy, flipped, cross_val_probs(self.x, noisy, seed=seed))
        return self.cache[seed]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._problem(seed) for seed in range(10)[index]]
        return self._problem(range(10)[index])

    def __len__(self):
        return 10

    def __iter__(self):
        return (self._problem(seed) for seed in range(10))


@pytest.fixture(scope="module")
def noisy_digits():
    return _NoisyDigits()


@pytest.mark.exercise("01.1", weight=2)
def test_thresholds_by_hand():
    t = confident_thresholds(LABELS, PROBS)
    np.testing.assert_allclose(t, [(0.8 + 0.2) / 2, (0.8 + 0.6) / 2, (0.8 + 0.3) / 2])


@pytest.mark.exercise("01.1", weight=1)
def test_thresholds_missing_class_and_clipping():
    labels = np.array([0, 0, 1])
    probs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    t = confident_thresholds(labels, probs)
    np.testing.assert_allclose(t, [1.0, 2e-6, 2.0])


@pytest.mark.exercise("01.2", weight=2)
def test_confident_joint_by_hand_uncalibrated():
    # t = [0.5, 0.7, 0.55]; confident sets: ex0 {0}; ex1 {1}; ex2 {1}; ex3 none... p=0.6<0.7,
    # 0.3<0.55 -> not counted; ex4 {2}; ex5 {0} (0.6 >= 0.5)
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(confident_joint(LABELS, PROBS, calibrate=False), expected)


@pytest.mark.exercise("01.2", weight=1)
def test_confident_joint_diagonal_at_least_one_and_argmax_on_ties():
    labels = np.array([0, 1, 1])
    probs = np.array([[0.1, 0.9], [0.45, 0.55], [0.6, 0.4]])
    # t = [0.1, 0.475]; ex0 confident for both -> argmax 1; ex1 both -> argmax 1; ex2 {0}
    cj = confident_joint(labels, probs, calibrate=False)
    np.testing.assert_array_equal(cj, [[1, 1], [1, 1]])


@pytest.mark.exercise("01.2", weight=1)
def test_confident_joint_counts_a_probability_just_below_its_threshold():
    # t = [0.8, 0.50000025]; example 2 (given 1) has p_0 = 0.8 - 5e-7: within the 1e-6 slack
    # of t_0, so it counts as a confident 0 (cleanlab compares with t - 1e-6)
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.8 - 5e-7, 0.2 + 5e-7], [0.2, 0.8]])
    np.testing.assert_array_equal(confident_joint(labels, probs, calibrate=False), [[1, 0], [1, 1]])


@pytest.mark.exercise("01.2", weight=2)
def test_confident_joint_calibration_preserves_counts(noisy_digits):
    noisy, _, probs = noisy_digits[0]
    cj = confident_joint(noisy, probs)
    assert cj.dtype.kind == "i"
    np.testing.assert_array_equal(cj.sum(axis=1), np.bincount(noisy, minlength=10))
    assert cj.sum() == len(noisy)


@pytest.mark.exercise("01.2", weight=2)
@pytest.mark.reference
def test_confident_joint_equals_cleanlab(noisy_digits):
    count = pytest.importorskip("cleanlab.count")
    for noisy, _, probs in noisy_digits[:5]:
        np.testing.assert_array_equal(
            confident_joint(noisy, probs), count.compute_confident_joint(noisy, probs)
        )
        np.testing.assert_array_equal(
            confident_joint(noisy, probs, calibrate=False),
            count.compute_confident_joint(noisy, probs, calibrate=False),
        )


@pytest.mark.exercise("01.1", weight=1)
@pytest.mark.reference
def test_thresholds_equal_cleanlab(noisy_digits):
    count = pytest.importorskip("cleanlab.count")
    noisy, _, probs = noisy_digits[0]
    np.testing.assert_allclose(
        confident_thresholds(noisy, probs), count.get_confident_thresholds(noisy, probs), rtol=1e-12
    )


@pytest.mark.exercise("01.3", weight=1)
def test_find_label_issues_by_hand():
    issues = find_label_issues(LABELS, PROBS, filter_by="confident_learning")
    np.testing.assert_array_equal(issues, [False, True, False, False, False, True])
    issues = find_label_issues(LABELS, PROBS, filter_by="prune_by_noise_rate")
    assert issues.dtype == bool and issues.shape == (6,)
    assert not issues[[0, 2, 4]].any(), "an example predicted as its given label is never flagged"


@pytest.mark.exercise("01.3", weight=1)
def test_find_label_issues_prune_by_noise_rate_by_hand():
    # t = [0.7325, 0.4]; confident joint [[2, 2], [0, 3]], calibrated [[2, 2], [0, 4]]: prune
    # the 2 given-0 examples with the largest p_1 - p_0 (2 and 3); example 3 is still
    # predicted as its given label 0, so the final filter un-flags it
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    probs = np.array(
        [
            [0.99, 0.01],
            [0.99, 0.01],
            [0.40, 0.60],
            [0.55, 0.45],
            [0.55, 0.45],
            [0.60, 0.40],
            [0.65, 0.35],
            [0.60, 0.40],
        ]
    )
    issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate")
    np.testing.assert_array_equal(issues, [False, False, True, False, False, False, False, False])


@pytest.mark.exercise("01.3", weight=2)
def test_find_label_issues_recovers_flips(noisy_digits):
    for noisy, flipped, probs in noisy_digits[:3]:
        for filter_by in ("prune_by_noise_rate", "confident_learning"):
            found = find_label_issues(noisy, probs, filter_by=filter_by)
            precision = (found & flipped).sum() / found.sum()
            recall = (found & flipped).sum() / flipped.sum()
            assert precision > 0.6 and recall > 0.6, (filter_by, precision, recall)


@pytest.mark.exercise("01.3", weight=2)
@pytest.mark.reference
def test_find_label_issues_equals_cleanlab(noisy_digits):
    """Equal on >= 9 of 10 seeds, at most one example apart otherwise (float ties)."""
    flt = pytest.importorskip("cleanlab.filter")
    for filter_by in ("prune_by_noise_rate", "confident_learning"):
        diffs = []
        for noisy, _, probs in noisy_digits:
            ours = find_label_issues(noisy, probs, filter_by=filter_by)
            ref = flt.find_label_issues(noisy, probs, filter_by=filter_by, n_jobs=1)
            diffs.append(int((ours != ref).sum()))
        assert sum(d == 0 for d in diffs) >= 9 and max(diffs) <= 1, (filter_by, diffs)


def test_label_checks():
    with pytest.raises(ValueError, match="`labels`"):
        confident_thresholds(np.array([0, 1, 5]), np.full((3, 3), 1 / 3))
    with pytest.raises(TypeError, match="`labels`"):
        confident_thresholds(np.array([0.0, 1.0]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="`pred_probs`"):
        confident_thresholds(np.array([0, 1]), np.array([[0.9, 0.9], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="`filter_by`"):
        find_label_issues(np.array([0, 1]), np.full((2, 2), 0.5), filter_by="both")


def test_observed_accuracy_formula():
    # a perfect classifier on 3 % wrong labels, and what 99 % observed accuracy demands
    assert observed_accuracy(1.0, 0.03, 0.0) == pytest.approx(0.97)
    needed = (0.99 - 0.97) / 0.03
    assert observed_accuracy(1.0, 0.03, needed) == pytest.approx(0.99)
    assert needed == pytest.approx(2 / 3)


def test_round_preserving_row_totals():
    m = np.array([[0.4, 0.4, 0.2], [1.5, 1.5, 0.0]])
    r = round_preserving_row_totals(m)
    np.testing.assert_array_equal(r.sum(1), [1, 3])
    assert np.abs(r - m).max() < 1
