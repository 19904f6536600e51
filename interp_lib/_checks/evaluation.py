"""Argument validators of lesson 10's exercises (interp_lib/evaluation.py)."""

from __future__ import annotations

import torch
from torch import nn

from ..exercises import baseline_for, mask_for, positive_int

__all__ = [
    "check_attributions",
    "check_region",
    "check_steps",
    "check_baseline",
    "check_curves",
    "check_mask",
    "check_method",
    "check_layers",
]


def check_attributions(value, name: str, args: dict) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(
            f"`{name}` must be a floating-point tensor, got {getattr(value, 'dtype', type(value).__name__)}"
        )
    x = args.get("x")
    if isinstance(x, torch.Tensor):
        if value.dim() != 4 or value.shape[0] != x.shape[0] or value.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"`{name}` must be shaped like `x` {tuple(x.shape)} (or (N, 1, H, W)), "
                f"got {tuple(value.shape)}"
            )
    elif value.dim() != 4:
        raise ValueError(f"`{name}` must be a batch of maps (N, C, H, W), got shape {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def check_region(value, name: str, args: dict) -> None:
    positive_int(value, name, args)
    x = args.get("x")
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        h, w = x.shape[-2:]
        if h % value or w % value:
            raise ValueError(
                f"`{name}` = {value} must divide the image size {h}x{w} "
                f"(e.g. {', '.join(str(d) for d in range(1, min(h, w) + 1) if h % d == 0 and w % d == 0)})"
            )


def check_steps(value, name: str, args: dict) -> None:
    if value is None:
        return
    positive_int(value, name, args)
    x, region = args.get("x"), args.get("region")
    if isinstance(x, torch.Tensor) and x.dim() == 4 and isinstance(region, int) and region > 0:
        total = (x.shape[-2] // region) * (x.shape[-1] // region)
        if value > total:
            raise ValueError(f"`{name}` = {value} exceeds the number of regions ({total})")


check_baseline = baseline_for("x")


def check_curves(value, name: str, _args: dict) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a float tensor (N, L+1), got {type(value).__name__}")
    if value.dim() != 2 or value.shape[1] < 1:
        raise ValueError(f"`{name}` must be shaped (N, L+1), got {tuple(value.shape)}")


check_mask = mask_for("attributions")


def check_method(value, name: str, _args: dict) -> None:
    if not callable(value):
        raise TypeError(
            f"`{name}` must be callable as method(model, x, target, **options), got {type(value).__name__}"
        )


def check_layers(value, name: str, args: dict) -> None:
    from ..evaluation import randomisable_layers  # here, not at the top: evaluation imports this module

    model = args.get("model")
    if value is None:
        if isinstance(model, nn.Module) and not randomisable_layers(model):
            raise ValueError(
                "`model` has no layer with parameters: sanity_check would have nothing "
                "to randomise and would return an empty result"
            )
        return
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"`{name}` must be a list of layer names, got {value!r}")
    if not len(value):
        raise ValueError(f"`{name}` is empty: name at least one layer to randomise (None: all of them)")
    if isinstance(model, nn.Module):
        known = randomisable_layers(model)
        bad = [v for v in value if v not in known]
        if bad:
            raise ValueError(
                f"`{name}`: {bad[0]!r} is not a layer with parameters of the model; known: {', '.join(known)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"`{name}` names a layer twice: {list(value)}")
