"""Lesson 03 - Texture vs shape: shortcut learning, cue conflict and linear probes.

Geirhos et al. (2019) showed ImageNet CNNs a cat's silhouette filled with elephant
skin and found they mostly answer "elephant": they decide by texture. Our shapes CNNs
show the same effect, and how it depends on the data they were trained on.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from . import data
from ._checks.shape_bias import (
    check_background,
    check_labels,
    check_masks,
    check_probe_data,
    check_texture_labels,
    check_textures,
)
from .exercises import exercise, images01, layer_name, nonnegative

__all__ = [
    "cue_conflict",
    "shape_bias",
    "linear_probe",
    "ShapeParts",
    "shape_parts",
    "decision_counts",
    "layer_activations",
    "photo_cue_conflict",
]


# --------------------------------------------------------------------------- exercises


@exercise(
    "03.1",
    points=2,
    checks={
        "masks": check_masks,
        "shape": check_labels("masks"),
        "textures": check_textures,
        "background": check_background,
    },
)
def cue_conflict(
    masks: torch.Tensor,
    shape: torch.Tensor,
    textures: torch.Tensor,
    background: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cue-conflict images: the silhouette of one class filled with another class's texture.

    For each image ``n`` with shape class ``s_n = shape[n]``, draw a texture class that
    differs from it, with exactly one draw for the whole batch::

        offset = torch.randint(1, K, (N,), generator=generator)     # K = textures.shape[1]
        t_n    = (s_n + offset_n) % K

    and compose (a mask of 1 shows the texture, 0 the background)::

        image_n = masks_n * textures[n, t_n] + (1 - masks_n) * background_n

    Args:
        masks: ``(N, 1, H, W)`` silhouettes in [0, 1].
        shape: ``(N,)`` int64 shape class of each silhouette.
        textures: ``(N, K, C, H, W)``: for each image, a full-frame fill of every texture
            class (see :func:`shape_parts`).
        background: ``(N, C, H, W)`` (or broadcastable to it).
        generator: the ``torch.Generator`` for the draw (None: torch's global one).

    Returns:
        ``(images, texture)``: images ``(N, C, H, W)`` and the int64 texture class ``(N,)``
        of each.

    Hint: ``textures[torch.arange(N), t]`` picks one fill per image.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 03.1 `cue_conflict` (lesson 03): write it in interp_lib/shape_bias.py"
    )


@exercise(
    "03.2", points=2, checks={"x": images01, "shape": check_labels("x"), "texture": check_texture_labels}
)
def shape_bias(model: nn.Module, x: torch.Tensor, shape: torch.Tensor, texture: torch.Tensor) -> float:
    """Shape bias (Geirhos et al. 2019) on cue-conflict images.

    Classify every image; count the decisions that name its shape class (shape hits)
    and those that name its texture class (texture hits); decisions naming neither are
    left out::

        shape_bias = shape_hits / (shape_hits + texture_hits)

    1.0: always the shape; 0.0: always the texture; ``nan`` when no decision names
    either.

    Args:
        model: a classifier (frozen by the wrapper). x: cue-conflict images ``(N, C, H, W)``.
        shape, texture: ``(N,)`` int64 class of each image's shape and texture (they
        must differ: that is what cue conflict means).

    Returns:
        A Python float in [0, 1] (or ``nan``).

    Hint: ``model(x).argmax(1)``, under ``torch.no_grad()``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 03.2 `shape_bias` (lesson 03): write it in interp_lib/shape_bias.py")


@exercise(
    "03.3",
    points=3,
    checks={
        "layer": layer_name(),
        "x_train": check_probe_data,
        "y_train": check_labels("x_train"),
        "x_test": check_probe_data,
        "y_test": check_labels("x_test"),
        "ridge": nonnegative,
    },
)
def linear_probe(
    model: nn.Module,
    layer: str,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    ridge: float = 10.0,
) -> float:
    """Held-out accuracy of a linear read-out of ``y`` from one layer's activations.

    1. Activations ``A = layer_activations(model, layer, x)`` (``(N, D)``, float64) for
       the train and test images (a forward hook, always removed).
    2. Standardise with the *training* statistics: ``Z = (A - mu) / sd`` with ``mu``, ``sd``
       the per-feature mean and standard deviation (``unbiased=False``) of the training
       activations, ``sd`` clamped from below at 1e-6.
    3. Ridge regression onto one-hot targets ``Y`` (``(N, K)``, ``K = max(y_train) + 1``),
       closed form::

           W = argmin ||Z W + 1 b^T - Y||^2 + ridge ||W||^2
             = Z^T (Z Z^T + ridge I)^{-1} (Y - mean(Y)),   b = mean(Y)

       (the "dual" form, an ``N x N`` solve; the primal ``(Z^T Z + ridge I)^{-1} Z^T (Y -
       mean Y)`` is the same matrix).
    4. Predict ``argmax(Z_test W + b)``; return the fraction equal to ``y_test``.

    Deterministic: no random draws; the closed form has one answer, so implementations
    differ only by float rounding.

    Args:
        model: the network (frozen by the wrapper). layer: a sub-module name, e.g. ``"pool2"``.
        x_train, y_train: images and int64 labels to fit on; x_test, y_test: to score.
        ridge: the L2 penalty (>= 0; use > 0 when D > N).

    Returns:
        A Python float, the held-out accuracy in [0, 1].

    Hint: ``torch.linalg.solve(Z @ Z.T + ridge * I, Yc)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 03.3 `linear_probe` (lesson 03): write it in interp_lib/shape_bias.py"
    )


# --------------------------------------------------------------------------- helpers


@dataclasses.dataclass
class ShapeParts:
    """The ingredients of shapes images, kept apart so they can be recombined."""

    masks: torch.Tensor  # (N, 1, H, W) float 0/1: the silhouette of each shape
    shape: torch.Tensor  # (N,) shape class of each mask (index into data.SHAPES)
    textures: torch.Tensor  # (N, K, 3, H, W): full-frame fill of every texture class,
    #   in image n's colours, orientation and period
    background: torch.Tensor  # (N, 3, H, W): the background (with the pixel noise)

    def __len__(self) -> int:
        return len(self.shape)


def shape_parts(n: int, seed: int = 0, size: int = 32) -> ShapeParts:
    """Silhouettes, texture fills and backgrounds drawn like :func:`interp_lib.data.make_shapes`
    (same colour, geometry and texture ranges; four shapes and four textures)."""
    g = torch.Generator().manual_seed(int(seed))
    k = len(data.SHAPES)
    shape = torch.randint(k, (n,), generator=g)
    scene = data._draw_scene(n, g, size)
    u, v, a, b = data._scene_coordinates(scene, size)
    masks = data._shape_masks(u, v, shape)[:, None].float()
    fills = []
    for t in range(k):
        pattern = data._textures(a, b, torch.full((n,), t))
        fill = torch.where(pattern[:, None], scene.ink[:, :, None, None], scene.paper[:, :, None, None])
        fills.append((fill + scene.noise).clamp(0, 1))
    background = (scene.bg[:, :, None, None] + scene.noise).clamp(0, 1)
    return ShapeParts(masks, shape, torch.stack(fills, dim=1), background)


@torch.no_grad()
def decision_counts(
    model: nn.Module, x: torch.Tensor, shape: torch.Tensor, texture: torch.Tensor
) -> dict[str, int]:
    """How many cue-conflict decisions follow the shape, the texture, or neither."""
    from .utils import predict_logits

    pred = predict_logits(model, x).argmax(1)
    s, t = (pred == shape).sum().item(), (pred == texture).sum().item()
    return {"shape": s, "texture": t, "neither": len(pred) - s - t}


def layer_activations(model: nn.Module, layer: str, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The output of the sub-module named ``layer`` for ``x``, flattened to ``(N, D)``.

    Read with a forward hook that is removed again, also when the forward pass raises.
    """
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(
            f"`layer` {layer!r} is not a sub-module of the model; it has: {', '.join(names)}"
        ) from None
    stored = []
    handle = module.register_forward_hook(lambda _m, _i, out: stored.append(out.detach().flatten(1)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(stored)


def photo_cue_conflict(
    shape: torch.Tensor, texture: torch.Tensor, patch: int = 16, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A cue-conflict image from two photographs ``(3, H, W)`` in [0, 1] (no style transfer).

    Texture: the ``texture`` photo cut into ``patch x patch`` squares that are put back in a
    random order (one ``torch.randperm`` draw from ``generator``), each divided by its own
    mean luminance: its colours and local statistics stay, its objects' shapes and shading
    are scrambled. Shape: the luminance of ``shape`` (its outlines and shading) scales that
    texture pixel by pixel, ``out = clip(tiles / tile_luminance * luminance, 0, 1)``.
    ``H`` and ``W`` must be multiples of ``patch``.
    """
    c, h, w = texture.shape
    if shape.shape != texture.shape or c != 3 or h % patch or w % patch:
        raise ValueError(
            f"`shape` and `texture` must both be (3, H, W) with H, W multiples of patch={patch}, "
            f"got {tuple(shape.shape)} and {tuple(texture.shape)}"
        )
    tiles = texture.unfold(1, patch, patch).unfold(2, patch, patch)  # (3, h/p, w/p, p, p)
    rows, cols = h // patch, w // patch
    order = torch.randperm(rows * cols, generator=generator)
    tiles = tiles.reshape(3, rows * cols, patch, patch)[:, order]
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=texture.dtype)[:, None, None, None]
    tile_lum = (tiles * weights).sum(0).mean((1, 2))  # (rows * cols,)
    tiles = tiles / tile_lum.clamp(min=1e-3)[None, :, None, None]
    tiles = tiles.reshape(3, rows, cols, patch, patch).permute(0, 1, 3, 2, 4).reshape(3, h, w)
    lum = (shape * weights[:, :, :, 0]).sum(0, keepdim=True)
    return (tiles * lum).clamp(0, 1)
