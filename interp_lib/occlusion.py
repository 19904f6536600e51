"""Lesson 07 - Occlusion sensitivity: explain by hiding parts of the image.

Zeiler & Fergus' other experiment needs no gradient and no access to the model's
inside: slide a grey patch over the image and record how much the class score drops.
Exercise: :func:`occlusion` (07.4); it matches captum's ``Occlusion`` with the same
window, stride and baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks.occlusion import check_baseline, check_batch, check_stride, check_window
from .exercises import exercise

__all__ = ["occlusion", "window_positions"]


@exercise(
    "07.4",
    points=3,
    attribution=True,
    checks={
        "window": check_window,
        "stride": check_stride,
        "baseline": check_baseline,
        "batch_size": check_batch,
    },
)
def occlusion(
    model: nn.Module, x: torch.Tensor, target, window=4, stride=2, baseline=0.5, batch_size: int = 256
) -> torch.Tensor:
    """Occlusion sensitivity: the drop of the class score when a patch is hidden.

    For every position ``p`` of an ``h x w`` window (all channels) sliding with
    ``stride`` over the image (positions from :func:`window_positions` in each
    direction; a window that sticks out is cut at the border), replace the pixels under
    the window by ``baseline`` and record the drop of the target score::

        d[n, p] = S_target(x[n]) - S_target(x[n] with window p set to baseline)

    Every pixel gets the *average* drop of the windows that cover it::

        A[n, :, i, j] = sum_p d[n, p] 1[(i, j) in p] / sum_p 1[(i, j) in p]

    (what captum's ``Occlusion`` returns with ``sliding_window_shapes=(C, h, w)``,
    ``strides=(C, s_h, s_w)`` and the same baseline).

    Args:
        model: a classifier; only forward passes are needed (no gradients).
        x: images ``(N, C, H, W)``.
        target: an int or an int64 tensor ``(N,)``.
        window: the patch size, an int or ``(h, w)``, at most the image size.
        stride: the step, an int or ``(s_h, s_w)``, at most the window.
        baseline: the grey value, a number or a tensor that broadcasts to ``x``.
        batch_size: how many occluded images go through the model at once.

    Returns:
        A tensor shaped like ``x`` (the same map in every channel).

    Hint: build the ``P`` window masks ``(P, H, W)`` once; the occluded images are
    ``x * (1 - mask) + baseline * mask``; run them in batches under ``torch.no_grad()``;
    then ``einsum("np,phw->nhw", d, masks) / masks.sum(0)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 07.4 `occlusion` (lesson 07): write it in interp_lib/occlusion.py")


# --------------------------------------------------------------------------- helpers


def window_positions(size: int, window: int, stride: int) -> list[int]:
    """Start positions of a window sliding over ``size`` pixels, captum's convention.

    ``0, stride, 2 stride, ...`` for ``ceil((size - window) / stride) + 1`` positions;
    the last window may stick out of the image and is then cut at the border.
    """
    count = -(-(size - window) // stride) + 1
    return [k * stride for k in range(count)]
