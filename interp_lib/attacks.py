"""Lesson 02 - Adversarial noise: gradients with respect to the input."""
from __future__ import annotations

import torch
from torch import nn

from .exercises import exercise

__all__ = ["input_gradient", "class_scores"]


def class_scores(logits: torch.Tensor, target) -> torch.Tensor:
    """``logits[n, target[n]]`` for each row ``n`` (``target``: an int or an ``(N,)`` tensor)."""
    index = torch.as_tensor(target, device=logits.device).expand(len(logits))
    return logits.gather(1, index[:, None]).squeeze(1)


@exercise("02.1", points=2, attribution=True)
def input_gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """The gradient of a class score with respect to the *input* image.

    Training takes the gradient of the loss with respect to the weights; here we take
    the gradient of the logit ``S_c(x)`` of class ``c = target[n]`` with respect to
    each input image ``x[n]``::

        g[n] = dS_{target[n]}(x[n]) / dx[n]

    Images in a batch do not interact, so one backward pass of the *sum* of the
    chosen scores gives every image's gradient at once.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits. The course's wrapper
            freezes its parameters during the call, so only the input needs gradients.
        x: images ``(N, C, H, W)``. Do not modify it: work on ``x.detach().clone()``
            with ``requires_grad_(True)``.
        target: an int (the same class for every image) or an int64 tensor ``(N,)``.

    Returns:
        A tensor shaped like ``x`` (detached, no ``grad_fn``).

    Hint: :func:`class_scores` picks ``logits[n, target[n]]``; then
    ``torch.autograd.grad(scores.sum(), x_leaf)[0]``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 02.1 `input_gradient` (lesson 02): write it in interp_lib/attacks.py")
