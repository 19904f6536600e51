import numpy as np

from interp_lib import labels as L
from interp_lib.labels import round_preserving_row_totals


def confident_thresholds(labels, pred_probs):
    labels, pred_probs = np.asarray(labels), np.asarray(pred_probs)
    thresholds = np.array(
        [
            pred_probs[labels == j, j].mean() if np.any(labels == j) else 2.0
            for j in range(pred_probs.shape[1])
        ]
    )
    return np.clip(thresholds, 2e-6, None)


def _likely_true_labels(labels, pred_probs):
    """Indices of the confidently counted examples and their likely true labels."""
    confident = pred_probs >= L.confident_thresholds(labels, pred_probs) - 1e-6
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, pred_probs.argmax(axis=1), confident.argmax(axis=1))
    counted = np.flatnonzero(n_confident > 0)
    return counted, guess[counted]


def confident_joint(labels, pred_probs, calibrate=True):
    labels, pred_probs = np.asarray(labels), np.asarray(pred_probs)
    k = pred_probs.shape[1]
    counted, true_guess = _likely_true_labels(labels, pred_probs)
    joint = np.zeros((k, k), dtype=int)
    np.add.at(joint, (labels[counted], true_guess), 1)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    if not calibrate:
        return joint
    counts = np.bincount(labels, minlength=k)
    calibrated = joint / np.clip(joint.sum(axis=1, keepdims=True), 1e-100, None) * counts[:, None]
    calibrated = calibrated / np.clip(calibrated.sum(), 1e-100, None) * counts.sum()
    return round_preserving_row_totals(calibrated)


def _keep_one_per_class(prune_counts):
    diag = prune_counts.diagonal()
    new_diag = np.maximum(diag, 1)
    shares = np.maximum(np.count_nonzero(prune_counts, axis=0) - 1.0, 1.0)
    out = prune_counts - (new_diag - diag) / shares
    out[out < 0] = 0
    np.fill_diagonal(out, new_diag)
    return round_preserving_row_totals(out.astype(int))


def find_label_issues(labels, pred_probs, filter_by="prune_by_noise_rate"):
    labels, pred_probs = np.asarray(labels), np.asarray(pred_probs)
    n, k = pred_probs.shape
    issues = np.zeros(n, dtype=bool)
    if filter_by == "confident_learning":
        counted, true_guess = _likely_true_labels(labels, pred_probs)
        issues[counted[true_guess != labels[counted]]] = True
    else:
        prune = _keep_one_per_class(L.confident_joint(labels, pred_probs).T)
        for given in range(k):
            members = np.flatnonzero(labels == given)
            if len(members) <= 1:
                continue
            for true in range(k):
                if true != given and prune[true, given] > 0:
                    margin = pred_probs[members, true] - pred_probs[members, given]
                    issues[members[np.argsort(-margin)[: prune[true, given]]]] = True
    boosted = pred_probs.copy()
    boosted[np.arange(n), labels] += 1e-6
    issues[boosted.argmax(axis=1) == labels] = False
    return issues
