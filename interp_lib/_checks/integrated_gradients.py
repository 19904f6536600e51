"""Argument validators of lesson 05's exercises (interp_lib/integrated_gradients.py)."""

from __future__ import annotations

import torch

from ..exercises import baseline_for, positive_int

__all__ = [
    "check_baseline",
    "check_alphas",
    "check_steps",
    "check_batch",
    "check_grid",
    "check_attributions",
]


check_baseline = baseline_for("x", numbers=False, none=True)


def check_alphas(value, name: str, _args: dict) -> None:
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a 1-D float tensor of path positions")


def check_steps(value, name: str, args: dict) -> None:
    positive_int(value, name, args)
    if args.get("method") == "riemann_trapezoid" and value < 2:
        raise ValueError(f"`{name}` must be >= 2 for the trapezoid rule, got {value}")


def check_batch(value, name: str, args: dict) -> None:
    if value is not None:
        positive_int(value, name, args)


def check_grid(value, name: str, args: dict) -> None:
    positive_int(value, name, args)
    if value > 4:
        raise ValueError(
            f"`{name}` must be <= 4 (exact Shapley values cost 2^(grid^2) forward passes), got {value}"
        )


def check_attributions(value, name: str, args: dict) -> None:
    x = args.get("x")
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a tensor, got {type(value).__name__}")
    if isinstance(x, torch.Tensor) and value.shape != x.shape:
        raise ValueError(f"`{name}` must be shaped like `x` {tuple(x.shape)}, got {tuple(value.shape)}")
