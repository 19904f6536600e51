"""Lesson 05 - Integrated gradients: the path from a baseline, quadrature, completeness.

Integrated gradients (Sundararajan, Taly & Yan 2017) attribute ``F(x) - F(x')`` to the
input's elements by integrating the gradient *with respect to the input* along the
straight path from a baseline ``x'`` to ``x``::

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x'))/dx_i da

The integral is a quadrature: nodes ``a_k`` in [0, 1] and weights ``w_k``
(:func:`quadrature`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._checks.integrated_gradients import (
    check_alphas,
    check_attributions,
    check_baseline,
    check_batch,
    check_grid,
    check_steps,
)
from .exercises import exercise, one_of
from .featvis_param import gaussian_blur

__all__ = [
    "METHODS",
    "quadrature",
    "interpolation_path",
    "integrated_gradients",
    "completeness_gap",
    "patch_shapley",
    "blurred",
    "patch_masks",
]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


# --------------------------------------------------------------------------- exercises


@exercise("05.1", points=1, checks={"baseline": check_baseline, "alphas": check_alphas})
def interpolation_path(x: torch.Tensor, baseline: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Images on the straight path from ``baseline`` to ``x``.

    ::

        path[k, n] = baseline[n] + alphas[k] * (x[n] - baseline[n])

    so ``alphas[k] = 0`` gives the baseline and ``1`` gives ``x``.

    Args:
        x: images ``(N, C, H, W)``.
        baseline: a float tensor that broadcasts to ``x`` (e.g. ``torch.zeros_like(x)``
            or one image ``(1, C, H, W)``).
        alphas: positions on the path, a 1-D tensor of length S (any float dtype; use
            it in ``x``'s dtype).

    Returns:
        ``(S, N, C, H, W)`` in ``x``'s dtype.

    Hint: broadcasting: ``alphas.view(-1, 1, 1, 1, 1)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 05.1 `interpolation_path` (lesson 05): write it in interp_lib/integrated_gradients.py"
    )


@exercise(
    "05.2",
    points=4,
    attribution=True,
    checks={
        "baseline": check_baseline,
        "steps": check_steps,
        "method": one_of(*METHODS),
        "internal_batch_size": check_batch,
    },
)
def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target,
    baseline: torch.Tensor | None = None,
    steps: int = 64,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
) -> torch.Tensor:
    """Integrated gradients along the straight path from ``baseline`` to ``x``.

    ::

        IG[n] = (x[n] - x'[n]) * sum_k w_k * dS_c/dx evaluated at x'[n] + a_k (x[n] - x'[n])

    with nodes and weights ``a_k, w_k = quadrature(method, steps)``. The gradients are
    with respect to the *input* at each path image (exercise 02.1), never the weights.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)``.
        baseline: ``x'``, a float tensor broadcasting to ``x``; None means black
            (``torch.zeros_like(x)``).
        steps: the number of quadrature nodes (>= 1; >= 2 for the trapezoid).
        method: one of ``METHODS`` (see :func:`quadrature`).
        internal_batch_size: at most this many path images per forward/backward pass
            (but at least one node for the whole batch, i.e. ``N`` images): the nodes
            are processed in chunks of ``max(1, internal_batch_size // N)``. None: all
            ``steps * N`` images at once. It bounds memory; results change only by float
            rounding.

    Returns:
        A tensor shaped like ``x``, detached, in ``x``'s dtype.

    Hint: :func:`quadrature`, then for each chunk of nodes :func:`interpolation_path`
    (05.1) reshaped to ``(S_chunk * N, C, H, W)``, one call of
    :func:`interp_lib.attacks.input_gradient` with the target repeated, and a weighted
    sum over the chunk's nodes.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 05.2 `integrated_gradients` (lesson 05): write it in interp_lib/integrated_gradients.py"
    )


@exercise("05.3", points=2, checks={"attributions": check_attributions, "baseline": check_baseline})
def completeness_gap(
    model: nn.Module,
    x: torch.Tensor,
    target,
    attributions: torch.Tensor,
    baseline: torch.Tensor | None = None,
) -> torch.Tensor:
    """How far attributions are from completeness, per image.

    ::

        gap[n] = sum_{c,i,j} attributions[n, c, i, j] - (S_c(x[n]) - S_c(x'[n]))

    (0 for exact integrated gradients). Divide by ``|S_c(x) - S_c(x')|`` yourself for a
    relative error.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)``.
        target: an int or an int64 tensor ``(N,)``.
        attributions: shaped like ``x``.
        baseline: ``x'`` broadcasting to ``x``; None means black.

    Returns:
        ``(N,)`` float tensor, detached.

    Hint: :func:`interp_lib.attacks.class_scores` under ``torch.no_grad()``; expand the
    baseline to ``x.shape`` before the forward pass.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 05.3 `completeness_gap` (lesson 05): write it in interp_lib/integrated_gradients.py"
    )


@exercise(
    "05.4",
    points=3,
    stretch=True,
    attribution=True,
    checks={"baseline": check_baseline, "grid": check_grid},
)
def patch_shapley(
    model: nn.Module, x: torch.Tensor, target, baseline: torch.Tensor | None = None, grid: int = 3
) -> torch.Tensor:
    """Exact Shapley values of ``grid x grid`` image patches (stretch).

    The players are the ``d = grid * grid`` patches of :func:`patch_masks` (all channels
    of a patch together). A coalition ``T`` is the image that shows ``x`` on the
    patches in ``T`` and the baseline elsewhere; ``v(T) = S_c(image)``. Then::

        phi_i = sum_{T not containing i} |T|! (d - |T| - 1)! / d! * (v(T + i) - v(T))

    which needs all ``2^d`` coalitions (3 x 3: 512 forward passes per image). The
    values sum to ``v(all) - v(none) = S_c(x) - S_c(x')`` (efficiency).

    Args:
        model, x, target: as for the other methods.
        baseline: ``x'`` broadcasting to ``x``; None means black.
        grid: patches per side (>= 1; cost ``2^(grid^2)``: keep it <= 4).

    Returns:
        A tensor shaped like ``x``: every element of patch ``i`` holds
        ``phi_i / (number of elements of the patch, channels included)``, so the map sums
        to the same total as ``phi``.

    Hint: enumerate coalitions as the bits of ``0 .. 2^d - 1``; evaluate them in
    batches under ``torch.no_grad()``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 05.4 `patch_shapley` (lesson 05): write it in interp_lib/integrated_gradients.py"
    )


# --------------------------------------------------------------------------- helpers


def quadrature(method: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes ``alphas`` and weights ``w`` (float64, length ``steps``) of a rule on [0, 1].

    ``integral_0^1 f(a) da ~ sum_k w[k] f(alphas[k])``:

    * ``riemann_left``:   a_k = k/n,           w_k = 1/n      (k = 0..n-1)
    * ``riemann_right``:  a_k = (k+1)/n,       w_k = 1/n
    * ``riemann_middle``: a_k = (k+1/2)/n,     w_k = 1/n
    * ``riemann_trapezoid``: a_k = k/(n-1) (n >= 2 points including both ends),
      w_k = 1/(n-1) inside and 1/(2(n-1)) at the two ends (weights sum to 1; captum's
      version uses 1/n and 1/(2n), which sum to 1 - 1/n: biased by about 1/n)
    * ``gausslegendre``:  the n Gauss-Legendre nodes and weights mapped from [-1, 1] to
      [0, 1] (exact for polynomials of degree 2n - 1).
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}; got {method!r}")
    if not isinstance(steps, int) or isinstance(steps, bool):
        raise TypeError(f"`steps` must be an int, got {type(steps).__name__}")
    if steps < 1 or (method == "riemann_trapezoid" and steps < 2):
        need = 2 if method == "riemann_trapezoid" else 1
        raise ValueError(f"`steps` must be >= {need} for {method}, got {steps}")
    n = steps
    k = torch.arange(n, dtype=torch.float64)
    if method == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)
        return torch.from_numpy(0.5 * (1 + nodes)), torch.from_numpy(0.5 * w)
    if method == "riemann_trapezoid":
        w = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (n - 1)
        return k / (n - 1), w
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (k + offset) / n, torch.full((n,), 1.0 / n, dtype=torch.float64)


def blurred(x: torch.Tensor, sigma: float = 3.0) -> torch.Tensor:
    """A Gaussian blur of ``x`` (a "blurred" IG baseline), same shape; kernel radius
    ``ceil(3 sigma)``, reflect padding."""
    return gaussian_blur(x, sigma, truncate=3.0)


def patch_masks(height: int, width: int, grid: int) -> torch.Tensor:
    """``(grid * grid, height, width)`` boolean masks of a grid x grid patch partition.

    Row-major order; patch edges at ``round(i * size / grid)``.
    """
    rows = [round(i * height / grid) for i in range(grid + 1)]
    cols = [round(j * width / grid) for j in range(grid + 1)]
    masks = torch.zeros(grid * grid, height, width, dtype=torch.bool)
    for i in range(grid):
        for j in range(grid):
            masks[i * grid + j, rows[i] : rows[i + 1], cols[j] : cols[j + 1]] = True
    return masks
