"""Benchmark rows for lesson 01: label issues against cleanlab."""

from interp_lib import data, labels
from interp_lib.course.bench import Row
from interp_lib.utils import cross_val_probs


def rows():
    import cleanlab.filter

    x, y = data.load_digits("all", size=8)
    noisy, _ = data.flip_labels(y.numpy(), 0.03, seed=0)
    probs = cross_val_probs(x.reshape(len(x), -1).numpy(), noisy, seed=0)
    out = []
    for filter_by in ("prune_by_noise_rate", "confident_learning"):
        out.append(
            Row(
                f"find_label_issues {filter_by} (1797 x 10)",
                lambda f=filter_by: labels.find_label_issues(noisy, probs, filter_by=f),
                lambda f=filter_by: cleanlab.filter.find_label_issues(noisy, probs, filter_by=f, n_jobs=1),
                against="cleanlab",
                goal=1.1,
                lesson="01",
            )
        )
    return out
