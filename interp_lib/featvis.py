"""Lesson 06 - Feature visualisation: from noise, with regularisers and priors.

Activation maximisation (Erhan et al. 2009; Simonyan et al. 2014; Yosinski et al. 2015;
Olah et al. 2017) generates an input that makes a chosen unit of a network fire as
strongly as possible: gradient ascent on the *image*, exactly the fooling-image loop of
lesson 02 with any activation as the objective. Left alone it produces high-frequency
noise; regularisers (L2 decay, total variation, blur, transformation robustness) and
priors (a real start image, a Fourier parameterisation with 1/f scaling and decorrelated
colour) steer it towards images the unit responds to *robustly*.

The exercises are :func:`total_variation` (06.1), :func:`random_transform` (06.2) and
:func:`activation_maximisation` (06.3). Everything else here is infrastructure: image
parameterisations (:class:`PixelImage`, :class:`FourierImage`), colour decorrelation,
Gaussian blur, the high-frequency power fraction and helpers that find the dataset
images a channel responds to most.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .exercises import (
    check_input_shape,
    check_like_model,
    exercise,
    guard_model,
    nonnegative,
    one_of,
    positive,
)
from .exercises import generator as _check_generator

__all__ = [
    "total_variation",
    "random_transform",
    "activation_maximisation",
    "Visualisation",
    "PixelImage",
    "FourierImage",
    "image_parameterisation",
    "spectrum_scale",
    "frequency_radius",
    "correlate_colours",
    "decorrelate_colours",
    "COLOUR_CORRELATION_SQRT",
    "colour_correlation_sqrt",
    "gaussian_blur",
    "high_frequency_fraction",
    "layer_names",
    "find_layer",
    "layer_output_shape",
    "default_input_shape",
    "channel_activations",
    "top_activating",
    "dataset_maximum",
    "unit_objective",
    "transform_parameters",
    "montage",
]


# =========================================================================== layers


def layer_names(model: nn.Module) -> list[str]:
    """Names of every sub-module of ``model`` (what ``layer=`` accepts), in order."""
    return [name for name, _ in model.named_modules() if name]


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The sub-module called ``layer``; a ``ValueError`` listing the valid names otherwise."""
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or not layer or layer not in modules:
        raise ValueError(
            f"`layer` {layer!r} is not a layer of the model; valid names: {', '.join(layer_names(model))}"
        )
    return modules[layer]


def default_input_shape(model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` of the course's models: 1x28x28 (digits) or 3x32x32 (shapes)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels in (1, 3):
        return (1, 28, 28) if first.in_channels == 1 else (3, 32, 32)
    raise ValueError("cannot guess the input shape of this model; pass `shape=(C, H, W)`")


def layer_output_shape(model: nn.Module, layer: str, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of ``layer``'s output for one input of shape ``shape`` (without the batch)."""
    module = find_layer(model, layer)
    seen: list[tuple[int, ...]] = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
    try:
        with guard_model(model), torch.no_grad():
            model(torch.zeros(1, *shape))
    finally:
        handle.remove()
    return seen[-1]


def unit_objective(activation: torch.Tensor, channel, neuron=None) -> torch.Tensor:
    """The objective of each image ``n`` read from a layer's output ``activation`` ``(N, ...)``.

    * ``channel`` None: ``mean(activation[n] ** 2)`` (the DeepDream objective);
    * conv output ``(N, C, H, W)``: ``activation[n, channel[n]].mean()`` over positions,
      or ``activation[n, channel[n], i, j]`` when ``neuron = (i, j)``;
    * linear output ``(N, K)``: ``activation[n, channel[n]]`` (a class logit for the last layer).

    ``channel`` is an int (the same for every image) or one int per image. Returns ``(N,)``.
    """
    n = activation.shape[0]
    flat = activation.reshape(n, -1)
    if channel is None:
        return (flat**2).mean(1)
    index = torch.as_tensor(channel).reshape(-1).expand(n)
    rows = torch.arange(n)
    if activation.dim() == 2:
        return activation[rows, index]
    picked = activation[rows, index]  # (N, H, W)
    if neuron is not None:
        i, j = neuron
        return picked[:, i, j]
    return picked.reshape(n, -1).mean(1)


# =========================================================================== colour, spectra

# Square root of the colour correlation of ImageNet (lucid/lucent): the columns map
# decorrelated colour components to RGB.
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def colour_correlation_sqrt(images: torch.Tensor) -> torch.Tensor:
    """The 3x3 square root ``U sqrt(S)`` of the colour covariance of ``images`` ``(N, 3, H, W)``.

    Use it as ``matrix=`` in :func:`correlate_colours` to decorrelate for the colours of
    your own dataset instead of ImageNet's.
    """
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1).double()
    cov = torch.cov(pixels)
    u, s, _ = torch.linalg.svd(cov)
    return (u * s.sqrt()).float()


def _normalised(matrix: torch.Tensor) -> torch.Tensor:
    return matrix / matrix.norm(dim=0).max()


def correlate_colours(x: torch.Tensor, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """Decorrelated colour components -> RGB: ``rgb[c] = sum_k M[c, k] x[k]`` per pixel.

    ``M`` is ``matrix`` (default :data:`COLOUR_CORRELATION_SQRT`) divided by its largest
    column norm. Gradient steps on the decorrelated components move the image along the
    directions in which natural colours vary.
    """
    m = _normalised(COLOUR_CORRELATION_SQRT if matrix is None else matrix).to(x)
    return torch.einsum("ck,nkhw->nchw", m, x)


def decorrelate_colours(x: torch.Tensor, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """The inverse of :func:`correlate_colours` (RGB -> decorrelated components)."""
    m = _normalised(COLOUR_CORRELATION_SQRT if matrix is None else matrix).to(x)
    return torch.einsum("ck,nkhw->nchw", torch.linalg.inv(m), x)


def frequency_radius(h: int, w: int, onesided: bool = True) -> torch.Tensor:
    """``sqrt(fy^2 + fx^2)`` in cycles per pixel for the (r)fft2 bins of an ``h x w`` image."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = (torch.fft.rfftfreq(w) if onesided else torch.fft.fftfreq(w))[None, :]
    return torch.sqrt(fy**2 + fx**2)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> torch.Tensor:
    """``1 / max(f, 1/max(h, w)) ** decay_power`` for each rfft2 bin: the 1/f scaling.

    Natural images have amplitude spectra falling like 1/f; scaling white-noise
    coefficients by this gives every octave equal energy, as in photographs.
    """
    return 1.0 / frequency_radius(h, w).clamp(min=1.0 / max(h, w)) ** decay_power


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel of ``x`` ``(N, C, H, W)`` with a Gaussian of std ``sigma`` pixels.

    Kernel radius ``ceil(2 sigma)``, reflect padding (shape kept). ``sigma <= 0``: a copy.
    """
    if sigma <= 0:
        return x.clone()
    radius = max(1, math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    out = F.pad(x, (radius, radius, 0, 0), mode=mode)
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode=mode)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def high_frequency_fraction(x: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """The fraction of each image's spectral power above ``cutoff`` cycles/pixel.

    The default cutoff is half the Nyquist frequency (0.5 cycles/pixel). Each channel's
    mean is removed first; power is summed over channels; the frequency is radial,
    ``sqrt(fx^2 + fy^2)``. White noise gives ``1 - pi/16 = 0.80``; photographs ~0.05.
    Returns ``(N,)`` (0 for a constant image).
    """
    x = x.detach().double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2).sum(1)  # (N, H, W)
    high = frequency_radius(*x.shape[-2:], onesided=False) > cutoff
    total = power.sum(dim=(-2, -1))
    frac = (power * high).sum(dim=(-2, -1)) / total.clamp(min=1e-30)
    return torch.where(total > 0, frac, torch.zeros_like(frac)).float()


# =========================================================================== parameterisations


class PixelImage:
    """The image *is* the parameter: ``x`` ``(N, C, H, W)``, kept in [0, 1] by clamping.

    ``PixelImage(start)``; ``image()`` returns the current image (differentiable);
    ``after_step()`` clamps to [0, 1]; ``blur(sigma)`` blurs the pixels in place.
    """

    def __init__(self, start: torch.Tensor):
        self.x = start.detach().clone().clamp(0, 1).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.x]

    def image(self) -> torch.Tensor:
        return self.x

    def __call__(self) -> torch.Tensor:
        return self.image()

    @torch.no_grad()
    def after_step(self) -> None:
        self.x.clamp_(0, 1)

    @torch.no_grad()
    def blur(self, sigma: float) -> None:
        self.x.copy_(gaussian_blur(self.x, sigma))


class FourierImage:
    """An image parameterised by its (scaled) Fourier coefficients, lucid-style.

    ``image = sigmoid(colour(irfft2(spectrum * scale, norm="ortho") / 4))`` where
    ``scale`` is :func:`spectrum_scale` (1/f) and ``colour`` is :func:`correlate_colours`
    when ``decorrelate`` (else the identity). The parameter ``spectrum`` holds real and
    imaginary parts, ``(N, C, H, W // 2 + 1, 2)``. Equal steps on every coefficient then
    change low frequencies far more than high ones, and the sigmoid keeps pixels in (0, 1).

    ``start``: an image ``(N, C, H, W)`` in [0, 1] to invert (clamped to [0.001, 0.999]);
    otherwise ``sd * randn`` coefficients drawn from ``generator`` (``shape`` = (N, C, H, W)).
    """

    MAGIC = 4.0

    def __init__(
        self,
        shape: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        sd: float = 0.01,
        decorrelate: bool = True,
        start: torch.Tensor | None = None,
        decay_power: float = 1.0,
        colour_matrix: torch.Tensor | None = None,
    ):
        if start is not None:
            shape = tuple(start.shape)
        n, c, h, w = shape
        if decorrelate and c != 3:
            raise ValueError(f"`decorrelate` needs 3 colour channels, the image has {c}")
        self.h, self.w, self.decorrelate, self.matrix = h, w, decorrelate, colour_matrix
        self.scale = spectrum_scale(h, w, decay_power)
        if start is None:
            spec = sd * torch.randn(n, c, h, w // 2 + 1, 2, generator=generator)
        else:
            spec = torch.view_as_real(self._invert(start.detach().float()))
        self.spectrum = spec.contiguous().requires_grad_(True)

    def _invert(self, img: torch.Tensor) -> torch.Tensor:
        t = torch.logit(img.clamp(0.001, 0.999))
        if self.decorrelate:
            t = decorrelate_colours(t, self.matrix)
        return torch.fft.rfft2(t * self.MAGIC, norm="ortho") / self.scale

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        coeffs = torch.view_as_complex(self.spectrum) * self.scale
        t = torch.fft.irfft2(coeffs, s=(self.h, self.w), norm="ortho") / self.MAGIC
        if self.decorrelate:
            t = correlate_colours(t, self.matrix)
        return torch.sigmoid(t)

    def __call__(self) -> torch.Tensor:
        return self.image()

    def after_step(self) -> None:
        pass

    @torch.no_grad()
    def blur(self, sigma: float) -> None:
        """Blur the pre-sigmoid image: multiply each coefficient by ``exp(-2 pi^2 sigma^2 f^2)``."""
        gain = torch.exp(-2 * math.pi**2 * sigma**2 * frequency_radius(self.h, self.w) ** 2)
        self.spectrum.mul_(gain[..., None])


def image_parameterisation(
    param: str,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    start: torch.Tensor | None = None,
    decorrelate: bool = False,
):
    """A :class:`PixelImage` or :class:`FourierImage` for ``shape`` = (N, C, H, W).

    Without ``start`` the pixel image is ``0.5 + 0.1 * randn`` (clamped) and the Fourier
    image has ``0.01 * randn`` coefficients, both drawn from ``generator`` (one
    ``randn`` call).
    """
    if param == "pixel":
        if decorrelate:
            raise ValueError("`decorrelate` applies to param='fourier' only")
        if start is None:
            start = 0.5 + 0.1 * torch.randn(*shape, generator=generator)
        return PixelImage(start)
    if param == "fourier":
        return FourierImage(shape, generator, decorrelate=decorrelate, start=start)
    raise ValueError(f"`param` must be 'pixel' or 'fourier', got {param!r}")


# =========================================================================== exercise 06.1


def _check_beta(value, name, _args) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}")


def _check_images(value, name, _args) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    if value.dim() != 4:
        raise ValueError(f"`{name}` must be a batch of images (N, C, H, W), got shape {tuple(value.shape)}")
    if value.shape[-1] < 2 or value.shape[-2] < 2:
        raise ValueError(f"`{name}` must be at least 2x2 pixels, got {tuple(value.shape[-2:])}")


@exercise("06.1", points=2, checks={"x": _check_images, "beta": _check_beta, "eps": nonnegative})
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


def transform_parameters(
    generator: torch.Generator,
    n: int,
    jitter: int = 2,
    scale: tuple[float, float] = (0.9, 1.1),
    degrees: float = 10.0,
):
    """The random parameters :func:`random_transform` draws, in its documented order.

    Returns ``(dx, dy, s, angle)``, each ``(n,)``: integer shifts in pixels, scale
    factors and angles in degrees. Infrastructure for tests and figures (it consumes the
    generator exactly as :func:`random_transform` must).
    """
    dx = torch.randint(-jitter, jitter + 1, (n,), generator=generator)
    dy = torch.randint(-jitter, jitter + 1, (n,), generator=generator)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=generator)
    angle = -degrees + 2 * degrees * torch.rand(n, generator=generator)
    return dx, dy, s, angle


def _check_required_generator(value, name, args) -> None:
    if value is None:
        raise TypeError(
            f"`{name}` must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), got None"
        )
    _check_generator(value, name, args)


def _check_jitter(value, name, _args) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0, got {value!r}")


def _check_scale(value, name, _args) -> None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    if not ok or not 0 < value[0] <= value[1]:
        raise ValueError(f"`{name}` must be a pair (low, high) with 0 < low <= high, got {value!r}")


@exercise(
    "06.2",
    points=3,
    checks={
        "x": _check_images,
        "generator": _check_required_generator,
        "jitter": _check_jitter,
        "scale": _check_scale,
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


def _check_layer(value, name, args) -> None:
    model = args.get("model")
    if isinstance(model, nn.Module):
        find_layer(model, value)


def _check_steps(value, name, _args) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"`{name}` must be >= 1 (the number of gradient steps), got {value}")


def _check_shape(value, name, args) -> None:
    if value is None:
        return
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and all(isinstance(v, int) and v > 0 for v in value)
    ):
        raise ValueError(f"`{name}` must be (C, H, W) with positive ints, got {value!r}")


def _input_shape(args) -> tuple[tuple[int, ...], str]:
    """The image shape ``(C, H, W)`` activation_maximisation will use, and the argument it
    comes from (``shape``, ``start`` or, by guess, ``model``)."""
    shape, start = args.get("shape"), args.get("start")
    if shape is not None:
        return tuple(shape), "shape"
    if isinstance(start, torch.Tensor) and start.dim() == 4:
        return tuple(start.shape[1:]), "start"
    return default_input_shape(args["model"]), "model"


def _probe(args) -> tuple[int, ...]:
    """``layer``'s output shape for one input image, a ValueError naming the argument the
    image shape came from when the model cannot take it (one forward of one image)."""
    model, layer = args["model"], args["layer"]
    shape, source = _input_shape(args)
    if source != "model":
        check_input_shape(model, shape, source)
    try:
        return layer_output_shape(model, layer, shape)
    except RuntimeError as err:
        what = "has images of shape" if source == "start" else "is"
        raise ValueError(
            f"`{source}` {what} {shape}, which the model cannot take "
            f"({str(err).splitlines()[0]}); pass images the model was made for"
            + (f", e.g. {default_input_shape(model)}" if _guessable(model) else "")
        ) from None


def _guessable(model) -> bool:
    try:
        default_input_shape(model)
    except ValueError:
        return False
    return True


def _check_start(value, name, args) -> None:
    if value is None:
        return
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() != 4:
        raise ValueError(f"`{name}` must be a float image batch (N, C, H, W) in [0, 1]")
    model = args.get("model")
    if isinstance(model, nn.Module) and args.get("param") != "fourier":  # (Fourier images are float32)
        check_like_model(value, name, model)
    if value.numel() and (value.min() < 0 or value.max() > 1):
        raise ValueError(f"`{name}` must hold pixel values in [0, 1]")
    shape = args.get("shape")
    if shape is not None and tuple(value.shape[1:]) != tuple(shape):
        raise ValueError(
            f"`{name}` has images of shape {tuple(value.shape[1:])} but `shape` is "
            f"{tuple(shape)}; leave `shape` out when you give `start`"
        )
    if isinstance(model, nn.Module) and args.get("channel") is None and args.get("neuron") is None:
        _probe(args)  # (with a channel or neuron, their check probes the same shape)


def _check_transforms(value, name, args) -> None:
    if not isinstance(value, (bool, dict)):
        raise TypeError(
            f"`{name}` must be True/False or a dict of random_transform options, got {type(value).__name__}"
        )
    if isinstance(value, dict):
        unknown = set(value) - {"jitter", "scale", "degrees"}
        if unknown:
            raise ValueError(f"`{name}` has unknown options {sorted(unknown)}; valid: jitter, scale, degrees")


def _check_bool(value, name, _args) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")


def _check_unit(value, name, args) -> None:
    """Checks ``channel`` and ``neuron`` against the chosen layer's output shape."""
    model, layer = args.get("model"), args.get("layer")
    channel, start = args.get("channel"), args.get("start")
    if name == "channel" and value is not None:
        values = (
            [value] if isinstance(value, int) else list(value) if isinstance(value, (list, tuple)) else None
        )
        if (
            values is None
            or not values
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        ):
            raise TypeError(f"`channel` must be an int, a non-empty list of ints, or None; got {value!r}")
        if (
            isinstance(start, torch.Tensor)
            and len(values) > 1
            and start.dim() == 4
            and len(start) != len(values)
        ):
            raise ValueError(f"`channel` lists {len(values)} channels but `start` holds {len(start)} images")
    if name == "neuron" and value is not None:
        if channel is None:
            raise ValueError("`neuron` needs a `channel`")
        if not (
            isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value)
        ):
            raise TypeError(f"`neuron` must be a pair (row, column), got {value!r}")
    if not isinstance(model, nn.Module) or value is None:
        return
    out = _probe(args)
    if name == "channel":
        k = out[0]
        bad = [v for v in values if not 0 <= v < k]
        if bad:
            raise ValueError(
                f"`channel` {bad[0]} is out of range: layer {layer!r} has {k} channels (valid: 0..{k - 1})"
            )
    if name == "neuron":
        if len(out) != 3:
            raise ValueError(f"`neuron` needs a conv layer (C, H, W); layer {layer!r} outputs {out}")
        if not (0 <= value[0] < out[1] and 0 <= value[1] < out[2]):
            raise ValueError(
                f"`neuron` {tuple(value)} is out of range: layer {layer!r} has "
                f"{out[1]}x{out[2]} positions (rows 0..{out[1] - 1}, columns 0..{out[2] - 1})"
            )


@exercise(
    "06.3",
    points=5,
    checks={
        "layer": _check_layer,
        "shape": _check_shape,
        "start": _check_start,
        "channel": _check_unit,
        "neuron": _check_unit,
        "steps": _check_steps,
        "lr": positive,
        "generator": _check_generator,
        "l2": nonnegative,
        "tv": nonnegative,
        "blur_every": _check_jitter,
        "blur_sigma": nonnegative,
        "transforms": _check_transforms,
        "param": one_of("pixel", "fourier"),
        "decorrelate": _check_bool,
        "progress": _check_bool,
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


# =========================================================================== dataset helpers


@torch.no_grad()
def channel_activations(
    model: nn.Module, layer: str, x: torch.Tensor, neuron=None, batch_size: int = 500
) -> torch.Tensor:
    """The objective of every channel of ``layer`` for each image of ``x``: ``(N, K)``.

    Channel means for conv layers (or one position ``neuron = (row, column)``), unit values
    for linear layers - what :func:`unit_objective` reads for each channel.
    """
    module = find_layer(model, layer)
    store: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: store.append(o.detach()))
    try:
        with guard_model(model):
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        handle.remove()
    act = torch.cat(store)
    if act.dim() == 4:
        return act[:, :, neuron[0], neuron[1]] if neuron is not None else act.mean(dim=(2, 3))
    return act.reshape(len(act), -1)


def dataset_maximum(model: nn.Module, layer: str, x: torch.Tensor, neuron=None) -> torch.Tensor:
    """The largest objective each channel of ``layer`` reaches on the images ``x``: ``(K,)``."""
    return channel_activations(model, layer, x, neuron).max(0).values


def top_activating(
    model: nn.Module, layer: str, channel: int, x: torch.Tensor, k: int = 9, acts: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and objective values of the ``k`` images of ``x`` that excite ``channel`` most.

    ``acts``: precomputed :func:`channel_activations` (saves the forward passes when
    looping over channels).
    """
    acts = channel_activations(model, layer, x) if acts is None else acts
    values, idx = acts[:, channel].topk(k)
    return idx, values


def montage(images: torch.Tensor, ncols: int, pad: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``images`` ``(N, C, H, W)`` into one ``(C, H', W')`` image, ``ncols`` per row.

    One ``imshow`` of a montage is far faster than a grid of axes when there are hundreds
    of small images.
    """
    n, c, h, w = images.shape
    nrows = (n + ncols - 1) // ncols
    out = torch.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        out[:, top : top + h, left : left + w] = images[i]
    return out
