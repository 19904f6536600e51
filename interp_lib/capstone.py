"""Lesson 14 - Capstone: audit a model.

The course ships a model, ``capstone``, that classifies the shapes of lesson 03 well on
clean test images. Something else was planted in its training data. You audit it with
the methods of lessons 02-13, support your finding with a metric and its confidence
interval (:func:`interp_lib.evaluation.bootstrap_ci`) and write a short report.

Exercises: :func:`intervention_effect` (14.1), a generic audit tool: how much a class
score changes when a region of the image is replaced; :func:`suspected_shortcut` (14.2),
your finding: the region you suspect and the class it pushes the model towards.

Helpers: :func:`box` (a rectangular region mask), :func:`overlap` (how a submitted region
meets another one: recall and precision), :func:`class_templates` (the mean input
gradient of each class score over images, a class-wide saliency map).
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks.capstone import check_region
from .exercises import baseline_for, boolean, exercise

__all__ = ["intervention_effect", "suspected_shortcut", "box", "overlap", "class_templates"]


# --------------------------------------------------------------------------- exercises


@exercise(
    "14.1",
    points=2,
    checks={"region": check_region, "fill": baseline_for("x"), "probability": boolean},
)
def intervention_effect(
    model: nn.Module, x: torch.Tensor, target, region: torch.Tensor, fill=0.0, probability: bool = True
) -> torch.Tensor:
    """The drop of the target score when ``region`` of each image is replaced by ``fill``::

        x'[n]      = where(region, fill, x)[n]            (all channels of the region)
        effect[n]  = f(x[n])[target[n]] - f(x'[n])[target[n]]

    where ``f`` is the model's softmax probability (``probability=True``) or its logit.
    Positive: the region supported the class; negative: the replacement adds evidence
    for it. One value per image, so that a confidence interval over images can be computed
    (``evaluation.bootstrap_ci(effect)``).

    ``fill`` is a number (a grey value), or a tensor broadcasting to ``x``: a blurred copy
    of ``x`` (remove the region's detail), or *other images* (transplant the region of a
    donor image into ``x``: ``fill=donors`` shaped like ``x``).

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits (not modified).
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)``.
        region: boolean ``(1, 1, H, W)`` or ``(N, 1, H, W)``, True where pixels are replaced.
        fill: a number or a float tensor broadcasting to ``x``.
        probability: softmax probabilities (True) or logits (False).

    Returns:
        ``(N,)`` float, detached.

    Hint: ``torch.where(region, fill, x)`` broadcasts the mask over the channels; run the
    original and the changed images through the model in one batch under
    ``torch.no_grad()``, and pick the target scores with ``attacks.class_scores``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 14.1 `intervention_effect` (lesson 14): write it in interp_lib/capstone.py"
    )


@exercise("14.2", points=3)
def suspected_shortcut() -> tuple[torch.Tensor, int]:
    """Your audit's finding about the ``capstone`` model: ``(region, cls)``.

    ``region`` is a boolean ``(1, 1, 32, 32)`` tensor, True on the pixels where you believe
    the planted shortcut lies (e.g. ``box(rows, cols)``); ``cls`` is the class index (into
    ``data.SHAPES``) that the shortcut pushes the model towards. Return constants you found
    (or compute them from the model): the function takes no arguments.

    Graded by hidden tests: the region must cover at least half of the planted pixels,
    and at least a quarter of your region must be planted pixels (so "the whole image"
    does not count); the class must be right. Your report, the evidence with its
    confidence interval, and the discussion are graded by the rubric.

    Hint: evidence first (which method shows what, on which images, against which control),
    then the region: the smallest box that holds what your methods agree on.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 14.2 `suspected_shortcut` (lesson 14): write it in interp_lib/capstone.py"
    )


# --------------------------------------------------------------------------- helpers


def box(rows: tuple[int, int], cols: tuple[int, int], size: int = 32) -> torch.Tensor:
    """A boolean ``(1, 1, size, size)`` mask, True on rows ``[r0, r1)`` and columns ``[c0, c1)``."""
    (r0, r1), (c0, c1) = rows, cols
    if not (0 <= r0 < r1 <= size and 0 <= c0 < c1 <= size):
        raise ValueError(f"`rows` {rows} and `cols` {cols} must be non-empty ranges inside 0..{size}")
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    mask[..., r0:r1, c0:c1] = True
    return mask


def overlap(region: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """How ``region`` meets ``other`` (boolean masks of one shape): ``recall`` (the share of
    ``other`` inside ``region``), ``precision`` (the share of ``region`` inside ``other``)
    and ``iou`` (intersection over union)."""
    for name, m in (("region", region), ("other", other)):
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(f"`{name}` must be a boolean tensor, got {getattr(m, 'dtype', type(m).__name__)}")
    if region.shape[-2:] != other.shape[-2:]:
        raise ValueError(f"the masks differ in size: {tuple(region.shape)} vs {tuple(other.shape)}")
    a, b = region.reshape(-1, *region.shape[-2:]).any(0), other.reshape(-1, *other.shape[-2:]).any(0)
    inter, union = (a & b).sum().item(), (a | b).sum().item()
    return {
        "recall": inter / max(b.sum().item(), 1),
        "precision": inter / max(a.sum().item(), 1),
        "iou": inter / max(union, 1),
    }


def class_templates(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``(K, C, H, W)``: for each class ``k`` the mean over the images of the input gradient
    of the logit ``k`` (a class-wide saliency map, lesson 04). Image-specific evidence (the
    object, wherever it is) averages out; what pushes the class *at a fixed place* stays."""
    from . import attacks

    with torch.no_grad():
        k = model(x[:1]).shape[1]
    total = torch.zeros(k, *x.shape[1:])
    for cls in range(k):
        for i in range(0, len(x), batch_size):
            total[cls] += attacks.input_gradient(model, x[i : i + batch_size], cls).sum(0)
    return total / len(x)
