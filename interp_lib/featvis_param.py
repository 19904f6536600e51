"""Lesson 06 infrastructure: image parameterisations, colour statistics, transform parameters.

What lucent keeps in ``param/``: the pixel and Fourier parameterisations of an image
(:class:`PixelImage`, :class:`FourierImage`, chosen by :func:`image_parameterisation`),
the 1/f spectrum scaling, colour (de)correlation, Gaussian blur, the high-frequency power
fraction, and :func:`transform_parameters`, the random draws of exercise 06.2
``random_transform`` in its documented order. Nothing here calls an exercise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
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
    "transform_parameters",
]


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


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 2.0) -> torch.Tensor:
    """Blur each channel of ``x`` ``(N, C, H, W)`` with a Gaussian of std ``sigma`` pixels.

    Kernel radius ``ceil(truncate * sigma)``, reflect padding (shape kept). ``sigma <= 0``:
    a copy.
    """
    if sigma <= 0:
        return x.clone()
    radius = max(1, math.ceil(truncate * sigma))
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


# =========================================================================== transforms


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
