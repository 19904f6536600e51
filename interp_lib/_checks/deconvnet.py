"""Argument validators of lesson 07's exercises (interp_lib/deconvnet.py)."""

from __future__ import annotations

import torch
from torch import nn

from ..activations import check_activations
from ..exercises import _check_model

__all__ = [
    "walk_layer_names",
    "check_relu_model",
    "check_pooled",
    "check_switches",
    "check_size",
    "check_channel",
]


def walk_layer_names(model: nn.Module) -> list[str]:
    """Names of the layers the explicit walk visits (:func:`interp_lib.deconvnet.sequential_layers`)."""
    from ..deconvnet import sequential_layers  # here, not at the top: deconvnet imports this module

    return [n for n, _ in sequential_layers(model)]


def check_relu_model(value, name: str, args: dict) -> None:
    _check_model(value, name, args)
    rule = args.get("rule")
    method = {"guided": "guided backprop", "deconvnet": "the deconvnet"}.get(
        rule, f"guided_backprop(rule={rule!r})"
    )
    check_activations(value, method)


def check_pooled(value, name: str, args: dict) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() != 4:
        raise TypeError(
            f"`{name}` must be a float tensor (N, C, h, w), got "
            f"{getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}"
        )


def check_switches(value, name: str, args: dict) -> None:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.int64:
        raise TypeError(
            f"`{name}` must be an int64 tensor of flat indices (from max_pool2d(..., "
            f"return_indices=True)), got {getattr(value, 'dtype', type(value).__name__)}"
        )
    y = args.get("y")
    if isinstance(y, torch.Tensor) and value.shape != y.shape:
        raise ValueError(f"`{name}` must have the shape of `y` {tuple(y.shape)}, got {tuple(value.shape)}")


def check_size(value, name: str, args: dict) -> None:
    ok = (
        isinstance(value, (tuple, list, torch.Size))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok:
        raise ValueError(f"`{name}` must be (H, W), two positive ints, got {value!r}")
    s = args.get("switches")
    if isinstance(s, torch.Tensor) and s.numel() and (s.min() < 0 or s.max() >= value[0] * value[1]):
        raise ValueError(f"`switches` hold indices outside an image of `{name}` {tuple(value)}")


def check_channel(value, name: str, args: dict) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int or None, got {type(value).__name__}")
    from ..deconvnet import sequential_layers  # here, not at the top: deconvnet imports this module

    layer = (
        dict(sequential_layers(args["model"])).get(args.get("layer"))
        if isinstance(args.get("model"), nn.Module)
        else None
    )
    width = getattr(layer, "out_channels", getattr(layer, "out_features", None))
    if value < 0 or (width is not None and value >= width):
        raise ValueError(f"`{name}` {value} is out of range" + (f" 0..{width - 1}" if width else ""))
