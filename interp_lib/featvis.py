"""Lesson 06 - Feature visualisation: from noise, with regularisers and priors.

Activation maximisation (Erhan et al. 2009; Simonyan et al. 2014; Yosinski et al. 2015;
Olah et al. 2017) generates an input that makes a chosen unit of a network fire as
strongly as possible: gradient ascent on the *image*, exactly the fooling-image loop of
lesson 02 with any activation as the objective. Left alone it produces high-frequency
noise; regularisers (L2 decay, total variation, blur, transformation robustness) and
priors (a real start image, a Fourier parameterisation with 1/f scaling and decorrelated
colour) steer it towards images the unit responds to *robustly*.

The exercises are :func:`total_variation` (06.1), :func:`random_transform` (06.2) and
:func:`activation_maximisation` (06.3). The infrastructure they use lives next door and
is re-exported here for the lesson: image parameterisations (:class:`PixelImage`,
:class:`FourierImage`), colour decorrelation, Gaussian blur and the high-frequency power
fraction in :mod:`interp_lib.featvis_param`; layers, :func:`unit_objective` and the
dataset images a channel responds to most in :mod:`interp_lib.featvis_units`; the
argument checks in :mod:`interp_lib._checks.featvis`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from ._checks.featvis import (
    check_beta,
    check_images,
    check_jitter,
    check_required_generator,
    check_scale,
    check_shape,
    check_start,
    check_transforms,
    check_unit,
)
from .exercises import (
    boolean,
    exercise,
    generator,
    layer_name,
    nonnegative,
    nonnegative_int,
    one_of,
    positive,
    positive_int,
)
from .featvis_param import (
    FourierImage,
    colour_correlation_sqrt,
    gaussian_blur,
    high_frequency_fraction,
    image_parameterisation,
    transform_parameters,
)
from .featvis_units import (
    channel_activations,
    dataset_maximum,
    default_input_shape,
    layer_names,
    layer_output_shape,
    unit_objective,
)

__all__ = [
    "total_variation",
    "random_transform",
    "activation_maximisation",
    "Visualisation",
    # re-exported for the lesson and its widget
    "FourierImage",
    "colour_correlation_sqrt",
    "image_parameterisation",
    "gaussian_blur",
    "high_frequency_fraction",
    "transform_parameters",
    "layer_names",
    "layer_output_shape",
    "default_input_shape",
    "unit_objective",
    "channel_activations",
    "dataset_maximum",
]


# =========================================================================== exercise 06.1


@exercise("06.1", points=2, checks={"x": check_images, "beta": check_beta, "eps": nonnegative})
def total_variation(x: torch.Tensor, beta: float = 2.0, eps: float = 0.0) -> torch.Tensor:
    """The total variation of each image in a batch: a penalty on rough, noisy images.

    With horizontal and vertical neighbour differences of every channel ``c``::

        dh[c, i, j] = x[c, i, j+1] - x[c, i, j]
        dv[c, i, j] = x[c, i+1, j] - x[c, i, j]      for i < H-1, j < W-1

        TV_beta(x) = sum_{c, i < H-1, j < W-1} (dh[c,i,j]^2 + dv[c,i,j]^2 + eps) ^ (beta / 2)

    (Mahendran & Vedaldi 2015). The last row and column only enter as the neighbours of
    the row/column before them. ``beta = 2`` is the sum of squared differences; ``beta = 1``
    is the isotropic TV norm, whose gradient at a flat patch is undefined: ``eps > 0``
    smooths it.

    Args:
        x: images ``(N, C, H, W)``, at least 2x2.
        beta: the exponent (> 0).
        eps: added inside the power (>= 0).

    Returns:
        ``(N,)``: one value per image, differentiable with respect to ``x``.

    Hint: slice, do not loop: ``x[..., :-1, 1:] - x[..., :-1, :-1]`` is ``dh``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 06.1 `total_variation` (lesson 06): write it in interp_lib/featvis.py"
    )


# =========================================================================== exercise 06.2


@exercise(
    "06.2",
    points=3,
    checks={
        "x": check_images,
        "generator": check_required_generator,
        "jitter": check_jitter,
        "scale": check_scale,
        "degrees": nonnegative,
    },
)
def random_transform(
    x: torch.Tensor,
    generator: torch.Generator,
    jitter: int = 2,
    scale: tuple[float, float] = (0.9, 1.1),
    degrees: float = 10.0,
) -> torch.Tensor:
    """A random shift, scale and rotation of each image: differentiable, shape kept.

    Transformation robustness (Olah et al. 2017): an image that excites a unit only at
    one exact pixel alignment is noise; one that still excites it after a small random
    transform shows a feature. Sizes are for 32-pixel images (the 224-pixel defaults
    are jitter 8, scale 0.9-1.1, rotation +-10 degrees).

    Random numbers, for ``N = len(x)``, drawn from ``generator`` in exactly this order::

        dx    = torch.randint(-jitter, jitter + 1, (N,), generator=generator)   # pixels, to the right
        dy    = torch.randint(-jitter, jitter + 1, (N,), generator=generator)   # pixels, downwards
        s     = scale[0] + (scale[1] - scale[0]) * torch.rand(N, generator=generator)
        angle = -degrees + 2 * degrees * torch.rand(N, generator=generator)     # degrees

    Geometry, in pixel coordinates ``p = (column, row)`` with the centre
    ``c = ((W - 1) / 2, (H - 1) / 2)``: the content at input point ``p`` moves to the
    output point ``c + s * R(angle) (p - c) + (dx, dy)`` with
    ``R(a) = [[cos a, -sin a], [sin a, cos a]]``. Equivalently the output at ``q`` samples
    the input at ``c + R(-angle) (q - c - (dx, dy)) / s``, bilinearly, with reflection at
    the border (``F.grid_sample(..., mode="bilinear", padding_mode="reflection",
    align_corners=False)``).

    Args:
        x: images ``(N, C, H, W)``.
        generator: the only source of randomness.
        jitter: the largest shift in pixels (int >= 0).
        scale: ``(low, high)`` range of the scale factor.
        degrees: the largest rotation in degrees.

    Returns:
        A tensor shaped like ``x``; gradients flow back to ``x``.

    Hint: build one 2x3 matrix per image for ``F.affine_grid`` in normalised coordinates,
    where a pixel offset ``d`` along the width is ``2 d / W``; for non-square images
    convert with ``D = diag(W/2, H/2)``: ``theta = [D^-1 A^-1 D | -D^-1 A^-1 t]`` with
    ``A = s R(angle)`` and ``t = (dx, dy)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 06.2 `random_transform` (lesson 06): write it in interp_lib/featvis.py"
    )


# =========================================================================== exercise 06.3


@dataclasses.dataclass
class Visualisation:
    """The result of :func:`activation_maximisation`."""

    image: torch.Tensor  # (N, C, H, W) in [0, 1], detached
    activation: torch.Tensor  # (N,) the objective of the final image (no transform)
    history: torch.Tensor  # (steps, N) the objective at each step (as optimised)


@exercise(
    "06.3",
    points=5,
    checks={
        "layer": layer_name(),
        "shape": check_shape,
        "start": check_start,
        "channel": check_unit,
        "neuron": check_unit,
        "steps": positive_int,
        "lr": positive,
        "generator": generator,
        "l2": nonnegative,
        "tv": nonnegative,
        "blur_every": nonnegative_int,
        "blur_sigma": nonnegative,
        "transforms": check_transforms,
        "param": one_of("pixel", "fourier"),
        "decorrelate": boolean,
        "progress": boolean,
    },
)
def activation_maximisation(
    model: nn.Module,
    layer: str,
    channel: int | Sequence[int] | None,
    neuron: tuple[int, int] | None = None,
    steps: int = 128,
    lr: float = 0.05,
    start: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    l2: float = 0.0,
    tv: float = 0.0,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    transforms: bool | dict = False,
    param: str = "pixel",
    decorrelate: bool = False,
    shape: tuple[int, int, int] | None = None,
    progress: bool = False,
) -> Visualisation:
    """Gradient ascent on an image until a chosen unit of ``model`` fires strongly.

    The objective of image ``n`` is read from the output of the sub-module named
    ``layer`` through a forward hook (see :func:`unit_objective`): a channel's mean, one
    neuron ``(row, column)`` of a channel, a linear unit (a class logit for the last
    layer), or with ``channel=None`` the mean squared activation of the whole layer.
    ``channel`` may list one channel per image to visualise many at once (images do not
    interact). Each step minimises::

        loss = sum_n [ -objective_n + l2 * mean((img_n - 0.5)^2)
                       + tv * total_variation(img_n) / (C * H * W) ]

    with Adam (``lr``) on the parameters of ``image_parameterisation(param, (N, C, H, W),
    generator, start, decorrelate)`` - ``N`` = ``len(start)``, else ``len(channel)`` for
    a list, else 1; ``(C, H, W)`` = ``shape`` or ``default_input_shape(model)``. The
    model sees ``random_transform(img, generator, **options)`` when ``transforms`` is
    True (default options) or a dict of options, else ``img``. After each optimiser step
    call ``img_param.after_step()`` (pixel images are clamped to [0, 1]), and when
    ``blur_every > 0`` and ``(step + 1) % blur_every == 0`` also
    ``img_param.blur(blur_sigma)``.

    Random draws from ``generator`` (None: a new generator seeded with 0): the start
    noise (one ``randn`` inside ``image_parameterisation``, skipped when ``start`` is
    given), then per step the four draws of :func:`random_transform` (when transforms
    are on).

    Args:
        model: the network (the course's wrapper puts it in eval mode and freezes it).
        layer: the name of a sub-module (``"conv2"``, ``"relu3"``, ``"fc2"``...).
        channel: int, list of ints (one per image) or None.
        neuron: ``(row, column)`` inside the channel of a conv layer, or None.
        steps: the number of gradient steps (>= 1).
        start: images ``(N, C, H, W)`` in [0, 1] to start from (a prior), or None for noise.
        param: ``"pixel"`` or ``"fourier"`` (1/f scaled spectrum; ``decorrelate`` mixes colours).
        progress: show a ``tqdm.auto`` bar (``leave=False``).

    Returns:
        ``Visualisation(image, activation, history)``: the final image ``(N, C, H, W)``
        (detached), its objective without transforms ``(N,)`` and the objective of every
        step ``(steps, N)``.

    The hook must be removed on every path, also when the forward pass or the objective
    raises: register it before ``try:``, remove it in ``finally:``.

    Hint: the hook ``lambda module, inputs, output: store.__setitem__("act", output)``
    keeps the activation; ``unit_objective(store["act"], channel, neuron)`` reads it.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 06.3 `activation_maximisation` (lesson 06): write it in interp_lib/featvis.py"
    )
