"""Argument validators of lesson 09's exercises (interp_lib/dtd.py)."""

from __future__ import annotations

import torch

from ..exercises import one_of

DIRECTIONS = ("w", "zplus", "box")  # the search directions of the exercises


def check_weight(value, name, _args):
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    if value.dim() != 2:
        raise ValueError(f"`{name}` must be shaped (K, D) (one row per neuron), got {tuple(value.shape)}")


def check_bias(value, name, args):
    w = args.get("weight")
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    if isinstance(w, torch.Tensor) and tuple(value.shape) != (w.shape[0],):
        raise ValueError(f"`{name}` must be shaped ({w.shape[0]},), got {tuple(value.shape)}")


def check_a(value, name, args):
    w = args.get("weight")
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    if value.dim() != 2 or (isinstance(w, torch.Tensor) and value.shape[1] != w.shape[1]):
        d = w.shape[1] if isinstance(w, torch.Tensor) else "D"
        raise ValueError(f"`{name}` must be shaped (N, {d}), got {tuple(value.shape)}")
    if args.get("direction") == "zplus" and (value < 0).any():
        raise ValueError(f"`{name}` must be >= 0 for direction 'zplus' (inputs after a ReLU)")


def check_bounds(value, name, args):
    if args.get("direction") != "box":
        return
    if value is None:
        raise ValueError(f"`{name}` is missing: direction 'box' needs both bounds `low` and `high`")
    if not isinstance(value, (int, float, torch.Tensor)) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number or a tensor broadcastable to `a`")


CHECKS = {
    "weight": check_weight,
    "bias": check_bias,
    "a": check_a,
    "direction": one_of(*DIRECTIONS),
    "low": check_bounds,
    "high": check_bounds,
}
