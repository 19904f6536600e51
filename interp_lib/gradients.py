"""Lesson 04 - Gradients as sensitivity: saliency, input x gradient, SmoothGrad, Grad-CAM.

Every method here is an attribution method with the course's uniform call
``method(model, x, target, **options)``. ``input_x_gradient`` and ``smoothgrad`` return
a tensor shaped like ``x``; ``saliency_map`` and ``grad_cam`` return one map per image,
``(N, 1, H, W)``, which broadcasts against ``x``.
"""

from __future__ import annotations

import torch
from torch import nn

from .exercises import exercise, generator, layer_name, nonnegative, positive_int

__all__ = [
    "saliency_map",
    "input_x_gradient",
    "smoothgrad",
    "grad_cam",
    "last_conv_name",
]


# --------------------------------------------------------------------------- exercises


@exercise("04.1", points=2, attribution=True)
def saliency_map(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """The saliency map of Simonyan et al. (2013): max over channels of |gradient|.

    With ``g = dS_c/dx`` the gradient of the (unnormalised) class score with respect to
    the input (exercise 02.1)::

        M[n, 0, i, j] = max_k |g[n, k, i, j]|

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)`` of classes.

    Returns:
        ``(N, 1, H, W)``, non-negative, detached: one map per image (it broadcasts
        against ``x``). For one-channel images it is simply ``|g|``.

    Hint: call :func:`interp_lib.attacks.input_gradient` (your answer to 02.1), then
    ``.abs().amax(dim=1, keepdim=True)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 04.1 `saliency_map` (lesson 04): write it in interp_lib/gradients.py")


@exercise("04.2", points=1, attribution=True)
def input_x_gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Input x gradient: each pixel's value times the score's sensitivity to it.

    ::

        A[n] = x[n] * dS_{target[n]}(x[n]) / dx[n]      (element-wise, signed, no abs)

    For a model that is linear in its input (no biases) the attributions sum to the
    score; in general they are the first-order Taylor terms around the black image.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)``.

    Returns:
        A tensor shaped like ``x``, detached.

    Hint: one line on top of :func:`interp_lib.attacks.input_gradient`.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 04.2 `input_x_gradient` (lesson 04): write it in interp_lib/gradients.py"
    )


@exercise(
    "04.3",
    points=3,
    attribution=True,
    checks={"n_samples": positive_int, "sigma": nonnegative, "generator": generator},
)
def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target,
    n_samples: int = 16,
    sigma: float = 0.15,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of x.

    ::

        SG[n] = 1/S * sum_{s=1..S} dS_c/dx evaluated at x[n] + eps[s, n]
        eps ~ N(0, sigma^2)  (independently per element; sigma in input units, e.g. 0.15
                              is 15 % of the [0, 1] pixel range)

    Random draws (follow this order exactly so results are reproducible): ONE call
    ``eps = torch.randn((n_samples, *x.shape), generator=generator) * sigma``;
    ``eps[s]`` is the noise of sample ``s`` for the whole batch. Noisy images are not
    clipped to [0, 1].

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)``.
        n_samples: S, the number of noisy copies per image (>= 1).
        sigma: the noise's standard deviation (>= 0; 0 gives the plain gradient).
        generator: the ``torch.Generator`` to draw the noise from (None: torch's global
            generator).

    Returns:
        The signed mean gradient, shaped like ``x``, detached. (Show it as a saliency
        map: ``.abs().amax(1)``.)

    Hint: put all ``S * N`` noisy images in one batch of shape ``(S * N, C, H, W)``
    (``reshape``), with the target repeated ``S`` times, call
    :func:`interp_lib.attacks.input_gradient` once, reshape back and average over S.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 04.3 `smoothgrad` (lesson 04): write it in interp_lib/gradients.py")


@exercise("04.4", points=3, attribution=True, checks={"layer": layer_name(none=True)})
def grad_cam(model: nn.Module, x: torch.Tensor, target, layer: str | None = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): gradient-weighted feature maps, upsampled.

    With ``A`` the output ``(N, K, h, w)`` of the layer named ``layer`` and ``S_c`` the
    class score::

        a[n, k]    = mean_{i,j} dS_c / dA[n, k, i, j]          (one weight per map)
        L[n]       = ReLU( sum_k a[n, k] * A[n, k] )            (N, 1, h, w)
        result     = bilinear upsampling of L to the input size (H, W)
                     (torch.nn.functional.interpolate(L, size=(H, W), mode="bilinear"),
                      align_corners left at its default, as captum does)

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits.
        x: images ``(N, C, H, W)`` (not modified).
        target: an int or an int64 tensor ``(N,)``.
        layer: the name of a sub-module in ``model.named_modules()`` whose output is a
            feature map ``(N, K, h, w)`` (e.g. ``"relu2"`` or ``"conv2"``; ``"layer4"``
            for a ResNet). None: the last ``nn.Conv2d``. The wrapper rejects unknown
            names with the list of valid ones.

    Returns:
        ``(N, 1, H, W)``, non-negative, detached.

    ``A`` is the layer's output as the layer computed it. In torchvision's CNNs an in-place
    op often follows the layer (``ReLU(inplace=True)`` after a BatchNorm, ResNet's
    ``out += identity``) and overwrites that very tensor: keep the original and let the
    rest of the network run on a copy, as captum's ``LayerGradCam`` does; otherwise
    ``A`` and its gradient silently become those of the ReLU's output.

    Hint: a forward hook (``module.register_forward_hook``) that stores the layer's
    output and returns ``output.clone()`` (a forward hook's return value replaces the
    module's output for the layers after it); ``torch.autograd.grad(scores.sum(),
    stored_output)``. Remove the hook in a ``finally:`` block. :func:`last_conv_name`
    finds the default layer.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 04.4 `grad_cam` (lesson 04): write it in interp_lib/gradients.py")


# --------------------------------------------------------------------------- helpers


def last_conv_name(model: nn.Module) -> str:
    """The name of the last ``nn.Conv2d`` in ``model`` (Grad-CAM's usual layer)."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(
            "`layer`: the model has no nn.Conv2d layer; pass the name of a layer "
            "whose output is a feature map (N, K, h, w)"
        )
    return convs[-1]
