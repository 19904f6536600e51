"""Lesson 09 - Deep Taylor Decomposition (DTD): where the LRP rules come from.

One layer of ReLU neurons ``a_j = max(0, z_j)``, ``z_j = sum_i a_i w_ji + b_j`` with
``b_j <= 0``. DTD expands each neuron's output to first order at a *root point*
``x~_j`` (a point where ``z_j = 0``) found along a search direction ``v_j`` from the
input: ``x~_j = a - t_j v_j``. Because ``z_j`` is linear on its active side the
expansion is exact, and the input relevances ``R_i = sum_j (a_i - x~_ji) w_ji`` sum to
``sum_j a_j``. The choice of direction gives the LRP rules of lesson 08:

=========  ====================================  ===============
direction  ``v_ji``                               rule
=========  ====================================  ===============
``'w'``    ``w_ji``                               w^2
``'zplus'`` ``a_i 1[w_ji > 0]`` (inputs >= 0)     z+
``'box'``  ``a_i - l_i`` (w > 0), ``a_i - h_i`` (w < 0)  z^B
=========  ====================================  ===============
"""

from __future__ import annotations

import torch

from ._checks.dtd import CHECKS, DIRECTIONS
from .exercises import exercise

__all__ = ["dtd_root_point", "dtd_relevance", "DIRECTIONS", "search_direction"]


@exercise("09.1", points=2, checks=CHECKS)
def dtd_root_point(
    weight: torch.Tensor, bias: torch.Tensor, a: torch.Tensor, direction: str = "w", low=None, high=None
) -> torch.Tensor:
    """Root points of ReLU neurons along a search direction.

    Neuron ``j`` computes ``z_j = w_j . a + b_j``. Search from the input ``a`` along the
    direction ``v_j`` (see :func:`search_direction`: ``'w'``, ``'zplus'`` or ``'box'``)
    for the point where the neuron switches off::

        x~_j = a - t_j v_j,   t_j = max(z_j, 0) / (w_j . v_j)

    (``z_j(x~_j) = 0`` when ``z_j > 0``; an inactive neuron's root point is ``a`` itself,
    ``t_j = 0``; where ``w_j . v_j = 0`` take ``t_j = 0``).

    Args:
        weight: ``(K, D)``, one row per neuron.
        bias: ``(K,)``, ``<= 0`` for the root point to lie in the input domain.
        a: inputs ``(N, D)`` (``>= 0`` for ``'zplus'``).
        direction: ``'w'``, ``'zplus'`` or ``'box'``.
        low, high: the box's bounds for ``'box'`` (numbers or tensors broadcastable to ``(D,)``).

    Returns:
        ``(N, K, D)``: the root point of every neuron for every input.

    Hint: ``search_direction(weight, a, direction, low, high)`` gives ``v``;
    ``torch.einsum('nkd,kd->nk', v, weight)`` gives ``w_j . v_j``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 09.1 `dtd_root_point` (lesson 09): write it in interp_lib/dtd.py")


@exercise("09.2", points=2, checks=CHECKS)
def dtd_relevance(
    weight: torch.Tensor, bias: torch.Tensor, a: torch.Tensor, direction: str = "w", low=None, high=None
) -> torch.Tensor:
    """Input relevance of a ReLU layer by deep Taylor decomposition.

    Each neuron's relevance is its output, ``R_j = a_j = max(0, z_j)``. Expand it to first
    order at its root point ``x~_j`` (:func:`dtd_root_point`) and sum over the neurons::

        R_i = sum_j (a_i - x~_ji) w_ji

    Args: as :func:`dtd_root_point`.

    Returns:
        ``(N, D)``: the relevance of every input; each row sums to ``sum_j a_j``.

    Hint: one line after the root points, with broadcasting over ``(N, K, D)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 09.2 `dtd_relevance` (lesson 09): write it in interp_lib/dtd.py")


# --------------------------------------------------------------------------- helpers


def search_direction(weight, a, direction, low=None, high=None) -> torch.Tensor:
    """The search directions ``v`` ``(N, K, D)`` of the table in the module docstring."""
    w = weight[None]  # (1, K, D)
    x = a[:, None, :]  # (N, 1, D)
    if direction == "w":
        return w.expand(len(a), -1, -1)
    if direction == "zplus":
        return x * (w > 0)
    low = torch.as_tensor(low, dtype=a.dtype)
    high = torch.as_tensor(high, dtype=a.dtype)
    return torch.where(w > 0, x - low, torch.where(w < 0, x - high, torch.zeros_like(x)))
