"""Lesson 10 - Can we trust a heatmap? Evaluating explanations.

Exercises: :func:`deletion_curve` (pixel flipping / region perturbation, 10.1),
:func:`aopc` (area over the perturbation curve, 10.2), :func:`relevance_mass` (the share
of relevance inside a ground-truth mask, 10.3) and :func:`sanity_check` (cascading
parameter randomisation with Spearman rank correlation, 10.4).

Infrastructure (not exercises): :func:`deletion_auc` (area under a deletion or insertion
curve), :func:`average_ranks` (ranks with ties averaged, as ``scipy.stats.rankdata``),
:func:`randomisable_layers`, :func:`bootstrap_ci`, :func:`tag_mass_verdict` (the
criterion lessons 04 and 10 share), :func:`lesson_methods` (the methods compared) and :class:`SanityCheck`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from ._checks.evaluation import (
    check_attributions,
    check_baseline,
    check_curves,
    check_layers,
    check_mask,
    check_method,
    check_region,
    check_steps,
)
from .exercises import boolean, exercise, generator, one_of

__all__ = [
    "deletion_curve",
    "aopc",
    "relevance_mass",
    "sanity_check",
    "deletion_auc",
    "average_ranks",
    "randomisable_layers",
    "bootstrap_ci",
    "tag_mass_verdict",
    "lesson_methods",
    "SanityCheck",
    "region_scores",
]


# --------------------------------------------------------------------------- exercises


@exercise(
    "10.1",
    points=3,
    checks={
        "attributions": check_attributions,
        "region": check_region,
        "steps": check_steps,
        "baseline": check_baseline,
        "order": one_of("most", "least"),
        "probability": boolean,
    },
)
def deletion_curve(
    model: nn.Module,
    x: torch.Tensor,
    target,
    attributions: torch.Tensor,
    region: int = 4,
    steps: int | None = None,
    baseline=0.0,
    order: str = "most",
    probability: bool = False,
) -> torch.Tensor:
    """Region perturbation (Samek et al. 2017): the class score as the image's most
    relevant regions are deleted one after the other.

    Cut each image into non-overlapping ``region x region`` squares (all channels); a
    square's relevance is the sum of ``attributions`` over its pixels and channels
    (:func:`region_scores`). Order the squares by relevance, most relevant first
    (``order="most"``) or least relevant first (``"least"``, the control), and let
    ``x_k`` be the image with its first ``k`` squares replaced by ``baseline``::

        curve[n, k] = f(x_k[n]),   k = 0 .. L      (x_0 = x, L = steps)

    where ``f`` is the target logit, or with ``probability=True`` the target's softmax
    probability.

    Ties: order with ``torch.argsort(scores, dim=1, descending=(order == "most"),
    stable=True)``.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)``.
        attributions: maps ``(N, C, H, W)`` or ``(N, 1, H, W)`` (any method).
        region: the side of the squares; it must divide H and W.
        steps: L, how many squares to delete (None: all of them).
        baseline: the value deleted pixels get: a number, or a tensor broadcasting to
            ``x`` (e.g. a blurred copy). With ``x`` a blurred image and ``baseline`` the
            original, the same function draws the *insertion* curve (Petsiuk et al.).
        order: ``"most"`` or ``"least"`` relevant first.
        probability: report softmax probabilities instead of logits.

    Returns:
        ``(N, L + 1)`` scores, detached; column 0 is the unperturbed image.

    Hint: the rank of each square in the order (``argsort`` of the ``argsort``) says at
    which step it disappears: the mask of step ``k`` is ``rank < k``, upsampled with
    ``repeat_interleave``. Build the ``L + 1`` images of a few images at a time and run
    them through the model under ``torch.no_grad()`` in one batch.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 10.1 `deletion_curve` (lesson 10): write it in interp_lib/evaluation.py"
    )


@exercise("10.2", points=1, checks={"curves": check_curves})
def aopc(curves: torch.Tensor) -> torch.Tensor:
    """The area over the perturbation curve of each image (Samek et al. 2017)::

        aopc[n] = 1/(L+1) * sum_{k=0..L} ( curve[n, 0] - curve[n, k] )

    The AOPC of a method is the mean over images, ``aopc(curves).mean()``: the larger,
    the faster the score falls when the "most relevant" regions go, i.e. the more
    faithful the heatmap's ranking is. (With the least-relevant-first order it should
    stay small.)

    Args:
        curves: ``(N, L + 1)`` scores from :func:`deletion_curve`.

    Returns:
        ``(N,)`` per-image values (keep them per image: confidence intervals need them).

    Hint: one line; column 0 is ``f(x_0)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 10.2 `aopc` (lesson 10): write it in interp_lib/evaluation.py")


@exercise(
    "10.3",
    points=2,
    checks={"attributions": check_attributions, "mask": check_mask, "absolute": boolean},
)
def relevance_mass(attributions: torch.Tensor, mask: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Relevance mass accuracy (Arras et al. 2022): the share of a map's relevance that
    lies inside a ground-truth region (here: the Clever Hans tag)::

        R[n, i, j]  = sum_c attributions[n, c, i, j]        (channels summed first)
        P[n, i, j]  = max(R[n, i, j], 0)                    (absolute=True: |R[n, i, j]|)
        mass[n]     = sum_{(i,j) in mask} P[n, i, j] / sum_{i,j} P[n, i, j]

    An image whose ``P`` is zero everywhere gets 0. A map spread evenly over the image
    scores the mask's share of the area (36 / 1024 for the 6x6 tag on 32x32).

    Args:
        attributions: maps ``(N, C, H, W)`` (``C`` may be 1).
        mask: boolean ``(1, 1, H, W)`` or ``(N, 1, H, W)``, True inside the region
            (``Shapes.tag_mask``).
        absolute: count ``|R|`` instead of the positive part.

    Returns:
        ``(N,)`` values in [0, 1].

    Hint: ``torch.where(total > 0, inside / total, 0)`` avoids dividing by zero (clamp
    the denominator too, or the unused branch produces NaN gradients and warnings).
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 10.3 `relevance_mass` (lesson 10): write it in interp_lib/evaluation.py"
    )


@exercise("10.4", points=4, checks={"method": check_method, "layers": check_layers, "generator": generator})
def sanity_check(
    model: nn.Module,
    x: torch.Tensor,
    target,
    method: Callable[..., torch.Tensor],
    layers: list[str] | None = None,
    generator: torch.Generator | None = None,
    **options,
) -> SanityCheck:
    """Cascading parameter randomisation (Adebayo et al. 2018): does the map change when
    the model it explains is destroyed, layer by layer from the top?

    1. ``maps[0] = method(model, x, target, **options)`` on the trained model.
    2. Work on ONE deep copy (``copy.deepcopy(model)``); never change the caller's model.
       For each name in ``layers`` (in that order, default :func:`randomisable_layers`,
       i.e. output layer first), re-draw every parameter ``p`` of that layer
       (``layer.parameters(recurse=False)``, in that order), keeping its scale::

           p <- torch.randn(p.shape, generator=generator) * p.std()   (std before redraw)

       then ``maps[i] = method(copy, x, target, **options)``. Randomisations accumulate:
       after step ``i`` the top ``i`` layers are random.
    3. For every step ``i >= 1`` and image ``n``, the Spearman rank correlation between
       the channel-summed maps ``S = maps[..].sum(channels)`` of the trained and the
       randomised model, flattened over pixels::

           spearman[i-1, n]     = pearson( ranks(S_i[n]),  ranks(S_0[n]) )
           spearman_abs[i-1, n] = pearson( ranks(|S_i[n]|), ranks(|S_0[n]|) )

       with ties given their average rank (:func:`average_ranks`), exactly
       ``scipy.stats.spearmanr``; a constant map gives NaN, as in scipy.

    Args:
        model: a trained classifier (not modified) with at least one layer with parameters.
        x: images ``(N, C, H, W)``; target: an int or an int64 tensor ``(N,)`` (a caller's
            None reaches you as the *trained* model's predicted classes, resolved once by the
            wrapper: every randomised model is then explained for the same classes).
        method: an attribution method ``method(model, x, target, **options)``, e.g.
            ``interp_lib.gradients.saliency_map``.
        layers: names of layers with parameters, in the order they are randomised.
        generator: the ``torch.Generator`` for the re-drawn parameters.
        **options: passed to ``method``.

    Returns:
        A :class:`SanityCheck` with ``layers``, ``maps`` ``(L + 1, N, ...)`` (float),
        ``spearman`` and ``spearman_abs`` ``(L, N)`` (float64).

    Hint: ``dict(copy.named_modules())[name]``; change parameters under
    ``torch.no_grad()`` with ``p.copy_(...)``. The Pearson correlation of two rank rows
    is the cosine of their centred versions.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 10.4 `sanity_check` (lesson 10): write it in interp_lib/evaluation.py"
    )


# --------------------------------------------------------------------------- helpers


def region_scores(attributions: torch.Tensor, region: int) -> torch.Tensor:
    """The relevance of each ``region x region`` square: ``(N, C, H, W) -> (N, H/r * W/r)``
    (channels and pixels of a square summed; squares in row-major order)."""
    n = attributions.shape[0]
    summed = attributions.sum(1, keepdim=True)
    return nn.functional.avg_pool2d(summed, region).mul(region * region).reshape(n, -1)


def deletion_auc(curves: torch.Tensor) -> torch.Tensor:
    """The area under each curve ``(N, L+1)`` over the fraction perturbed, 0..1 (trapezoid
    rule, equally spaced steps): ``mean_k (c[k] + c[k+1]) / 2``. Returns ``(N,)``.

    For a deletion curve lower is better (the score falls fast); for an insertion curve
    (:func:`deletion_curve` on the blurred image with the original as ``baseline``)
    higher is better.
    """
    if not isinstance(curves, torch.Tensor) or curves.dim() != 2 or curves.shape[1] < 2:
        shape = tuple(curves.shape) if isinstance(curves, torch.Tensor) else type(curves).__name__
        raise ValueError(f"`curves` must be a tensor (N, L+1) with L >= 1, got {shape}")
    return ((curves[:, :-1] + curves[:, 1:]) / 2).mean(1)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..M along the last dimension, ties given the average of the ranks they span
    (``scipy.stats.rankdata(method="average")``). Returns float64 of ``values``' shape."""
    v = values.detach().to(torch.float64)
    sorted_v, order = torch.sort(v, dim=-1, stable=True)
    m = v.shape[-1]
    pos = torch.arange(m).expand_as(v)
    # a run of ties spans sorted positions first..last; each of them gets rank (first+last)/2 + 1
    starts = torch.ones_like(v, dtype=torch.bool)
    starts[..., 1:] = sorted_v[..., 1:] != sorted_v[..., :-1]
    ends = torch.ones_like(v, dtype=torch.bool)
    ends[..., :-1] = starts[..., 1:]
    first = torch.where(starts, pos, 0).cummax(-1).values
    last = torch.where(ends, pos, m).flip(-1).cummin(-1).values.flip(-1)
    ranks = torch.empty_like(v)
    ranks.scatter_(-1, order, (first + last).to(torch.float64) / 2 + 1)
    return ranks


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the sub-modules that own parameters, from the output back to the input
    (the order of cascading randomisation)."""
    names = [
        name for name, m in model.named_modules() if name and any(True for _ in m.parameters(recurse=False))
    ]
    return names[::-1]


def bootstrap_ci(
    values, n_boot: int = 1000, level: float = 0.95, generator: torch.Generator | None = None
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` (NaNs dropped) and a percentile
    bootstrap confidence interval (``n_boot`` resamples of the images)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    v = v[~torch.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = torch.randint(len(v), (n_boot, len(v)), generator=generator)
    means = v[idx].mean(1)
    alpha = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    return v.mean().item(), low, high


def tag_mass_verdict(
    clever: torch.Tensor,
    honest: torch.Tensor,
    area: float,
    n_boot: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[str, str]:
    """The one criterion lessons 04 and 10 use for "does a map see the Clever-Hans tag?".

    ``clever`` and ``honest`` are per-image relevance masses on the tag (from
    :func:`relevance_mass`) of the Clever-Hans model's and the honest model's maps of the
    same images; ``area`` is the tag's share of the image. Returns ``(numbers, verdict)``:
    the two means with 95 % bootstrap intervals (:func:`bootstrap_ci`, ``clever``'s
    resamples drawn first) in whole percent, and

    * ``"singles it out"`` when the interval of ``clever`` lies above 0.5 (most of the
      map's mass is on the tag),
    * ``"sees it, but most mass elsewhere"`` when it lies above ``area`` and above the
      interval of ``honest``,
    * ``"does not separate it"`` otherwise.
    """
    c_mean, c_low, c_high = bootstrap_ci(clever, n_boot=n_boot, generator=generator)
    h_mean, h_low, h_high = bootstrap_ci(honest, n_boot=n_boot, generator=generator)
    if c_low > 0.5:
        verdict = "singles it out"
    elif c_low > area and c_low > h_high:
        verdict = "sees it, but most mass elsewhere"
    else:
        verdict = "does not separate it"
    numbers = (
        f"{c_mean:.0%} ({c_low:.0%}-{c_high:.0%}) vs honest {h_mean:.0%} ({h_low:.0%}-{h_high:.0%}), "
        f"area {area:.1%}"
    )
    return numbers, verdict


def lesson_methods() -> dict[str, Callable]:
    """The methods lessons 10 and 10b compare, ``name -> method(model, x, target)``, every
    one through :func:`interp_lib.attribution.attribute` (so a student's own answers run).

    SmoothGrad is its magnitude (max over channels of ``|SG|``, 8 samples, the same noise
    for every call: a fresh generator seeded 0); occlusion uses 8x8 windows on a black
    baseline; integrated gradients a black baseline and 16 nodes; the two LRP composites are
    epsilon/z+ and epsilon/gamma/box on [0, 1]. ``"random"`` is the control every metric must
    beat: uniform noise ``(N, 1, H, W)`` from a generator seeded 1, whatever the model.
    """
    from . import attribution, lrp_rules

    def uniform(name, **options):
        return lambda model, x, target: attribution.attribute(name, model, x, target, **options)

    def smoothgrad_magnitude(model, x, target):
        g = torch.Generator().manual_seed(0)  # the same noise for every call
        sg = attribution.attribute("smoothgrad", model, x, target, n_samples=8, generator=g)
        return sg.abs().amax(1, keepdim=True)

    def random_map(model, x, target):
        return torch.rand(len(x), 1, *x.shape[-2:], generator=torch.Generator().manual_seed(1))

    return {
        "saliency": uniform("saliency_map"),
        "input×gradient": uniform("input_x_gradient"),
        "SmoothGrad": smoothgrad_magnitude,
        "Grad-CAM": uniform("grad_cam"),
        "integrated gradients": uniform("integrated_gradients", steps=16),
        "occlusion": uniform("occlusion", window=8, stride=8, baseline=0.0),
        "deconvnet": uniform("deconvnet"),
        "guided backprop": uniform("guided_backprop"),
        "LRP ε/z⁺": uniform("lrp", composite=lrp_rules.EpsilonPlus()),
        "LRP ε/γ/box": uniform("lrp", composite=lrp_rules.EpsilonGammaBox(0.0, 1.0)),
        "random": random_map,
    }


@dataclasses.dataclass
class SanityCheck:
    """The result of :func:`sanity_check`.

    ``layers[i]`` is the layer randomised at step ``i + 1``; ``maps[0]`` are the trained
    model's attributions, ``maps[i + 1]`` those after randomising ``layers[: i + 1]``
    (shape ``(L + 1, N, *map)``); ``spearman[i, n]`` / ``spearman_abs[i, n]`` compare
    ``maps[i + 1][n]`` with ``maps[0][n]`` (channels summed; ``abs``: of the sums).
    """

    layers: list[str]
    maps: torch.Tensor
    spearman: torch.Tensor
    spearman_abs: torch.Tensor
