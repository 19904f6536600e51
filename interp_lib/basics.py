"""Lesson 00 - What is AI? The warm-up exercise: reading a classifier's output."""

from __future__ import annotations

import torch
from torch import nn

from .exercises import exercise, nonempty, positive_int

__all__ = ["predict"]


@exercise("00.1", points=1, checks={"x": nonempty, "batch_size": positive_int})
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Classify a batch of images: the predicted class and the class probabilities.

    A classifier outputs one real number per class, the *logits* ``z``. The softmax turns
    them into probabilities, ``p_k = exp(z_k) / sum_j exp(z_j)``, and the prediction is
    the class with the largest logit (equivalently, the largest probability).

    Args:
        model: a classifier mapping images ``(N, C, H, W)`` to logits ``(N, K)``.
            (The course's wrapper already puts it in eval mode for the call.)
        x: a batch of images, float tensor ``(N, C, H, W)``, at least one image (the
            wrapper refuses an empty batch).
        batch_size: pass at most this many images through the model at once, so that
            large datasets fit in memory.

    Returns:
        ``(classes, probs)``: ``classes`` int64 ``(N,)``, ``probs`` float ``(N, K)``
        whose rows sum to 1. No gradients are needed: run the model under
        ``torch.no_grad()``.

    Hint: ``torch.softmax(logits, dim=1)``; slice ``x[i:i + batch_size]`` in a loop and
    ``torch.cat`` the pieces.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 00.1 `predict` (lesson 00): write it in interp_lib/basics.py")
