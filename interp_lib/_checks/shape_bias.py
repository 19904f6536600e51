"""Argument validators of lesson 03's exercises (interp_lib/shape_bias.py)."""

from __future__ import annotations

import torch

__all__ = [
    "check_masks",
    "check_labels",
    "check_textures",
    "check_background",
    "check_texture_labels",
    "check_probe_data",
]


def check_masks(value, name, _args) -> None:
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[1] != 1:
        raise ValueError(
            f"`{name}` must be a tensor (N, 1, H, W) of silhouettes, got "
            f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}"
        )
    if value.numel() and (value.min() < 0 or value.max() > 1):
        raise ValueError(f"`{name}` must hold values in [0, 1]")


def check_labels(n_arg: str):
    def check(value, name, args) -> None:
        if not isinstance(value, torch.Tensor) or value.dtype != torch.int64 or value.dim() != 1:
            raise TypeError(f"`{name}` must be a 1-D int64 tensor of class indices")
        ref = args.get(n_arg)
        if isinstance(ref, torch.Tensor) and len(ref) != len(value):
            raise ValueError(f"`{name}` has {len(value)} entries but `{n_arg}` holds {len(ref)}")
        if value.numel() and value.min() < 0:
            raise ValueError(f"`{name}` holds a negative class index")

    return check


def check_textures(value, name, args) -> None:
    masks = args.get("masks")
    if not isinstance(value, torch.Tensor) or value.dim() != 5:
        raise ValueError(f"`{name}` must be a tensor (N, K, C, H, W) of texture fills")
    if isinstance(masks, torch.Tensor) and (len(value) != len(masks) or value.shape[-2:] != masks.shape[-2:]):
        raise ValueError(f"`{name}` {tuple(value.shape)} does not match `masks` {tuple(masks.shape)}")
    shape = args.get("shape")
    if isinstance(shape, torch.Tensor) and shape.numel() and shape.max() >= value.shape[1]:
        raise ValueError(
            f"`shape` index {shape.max().item()} is out of range for {value.shape[1]} texture classes"
        )


def check_background(value, name, args) -> None:
    tex = args.get("textures")
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a tensor")
    if isinstance(tex, torch.Tensor) and tex.dim() == 5:
        try:
            ok = torch.broadcast_shapes(value.shape, tex[:, 0].shape) == tex[:, 0].shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"`{name}` {tuple(value.shape)} must broadcast to {tuple(tex[:, 0].shape)}")


def check_texture_labels(value, name, args) -> None:
    check_labels("x")(value, name, args)
    shape = args.get("shape")
    if isinstance(shape, torch.Tensor) and shape.shape == value.shape and (shape == value).any():
        raise ValueError(
            f"`{name}` equals `shape` for some images: shape bias needs cue-conflict "
            "images, whose texture class differs from their shape class"
        )


def check_probe_data(value, name, args) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() != 4:
        raise ValueError(f"`{name}` must be a float tensor of images (N, C, H, W)")
