"""Argument validators of lesson 13's exercises (interp_lib/transformer.py)."""

from __future__ import annotations

import torch
from torch import nn

from ..exercises import baseline_for

__all__ = ["check_vit", "check_attention", "check_residual", "check_layernorm", "check_baseline_tokens"]

_image_baseline = baseline_for("x", numbers=False, none=True)


def check_vit(value, name: str, _args: dict) -> None:
    """A vision transformer in the course's layout (``interp_lib.models.VisionTransformer``:
    ``embed``, ``forward_tokens``, ``blocks`` with ``attn.softmax``); a CNN is refused."""
    blocks = getattr(value, "blocks", None)
    if not (
        isinstance(value, nn.Module)
        and callable(getattr(value, "embed", None))
        and callable(getattr(value, "forward_tokens", None))
        and isinstance(blocks, nn.Sequential)
        and len(blocks) > 0
        and all(isinstance(getattr(getattr(b, "attn", None), "softmax", None), nn.Softmax) for b in blocks)
    ):
        raise TypeError(
            f"`{name}` must be a vision transformer like interp_lib.models.VisionTransformer "
            f"(embed, forward_tokens, blocks with attn.softmax), got {type(value).__name__}; "
            "the CNN methods of lessons 04-10 are for CNNs"
        )


def check_attention(value, name: str, _args: dict) -> None:
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise TypeError(f"`{name}` must be a non-empty list of (N, heads, T, T) tensors, one per block")
    shape = None
    for i, a in enumerate(value):
        if (
            not isinstance(a, torch.Tensor)
            or not a.is_floating_point()
            or a.dim() != 4
            or a.shape[-1] != a.shape[-2]
        ):
            raise ValueError(
                f"`{name}[{i}]` must be a float tensor (N, heads, T, T), got "
                f"{tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__}"
            )
        if shape is not None and (a.shape[0], a.shape[-1]) != (shape[0], shape[-1]):
            raise ValueError(
                f"`{name}[{i}]` has shape {tuple(a.shape)}, `{name}[0]` {tuple(shape)}: the images "
                "and tokens must agree"
            )
        shape = a.shape


def check_residual(value, name: str, _args: dict) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}")


def check_layernorm(value, name: str, _args: dict) -> None:
    if not isinstance(value, nn.LayerNorm) or len(value.normalized_shape) != 1:
        raise TypeError(f"`{name}` must be an nn.LayerNorm over the last dimension, got {value!r}")
    h = _args.get("h")
    if not isinstance(h, torch.Tensor) or not h.is_floating_point():
        raise TypeError("`h` must be a floating-point tensor (..., D)")
    if h.shape[-1] != value.normalized_shape[0]:
        raise ValueError(
            f"`h` has last dimension {h.shape[-1]}, `{name}` normalises {value.normalized_shape[0]}"
        )


def check_baseline_tokens(value, name: str, args: dict) -> None:
    if isinstance(value, str):
        if value != "zero":
            raise ValueError(f"`{name}` must be None, an image tensor or 'zero', got {value!r}")
        return
    _image_baseline(value, name, args)
