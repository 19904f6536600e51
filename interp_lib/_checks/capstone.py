"""Argument validators of lesson 14's exercises (interp_lib/capstone.py)."""

from __future__ import annotations

import torch

__all__ = ["check_region"]


def check_region(value, name: str, args: dict) -> None:
    """A boolean mask ``(1, 1, H, W)`` or ``(N, 1, H, W)`` matching ``x``, not empty."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a boolean tensor, got {type(value).__name__}")
    if value.dtype != torch.bool:
        raise TypeError(f"`{name}` must be a boolean tensor (True inside the region), got {value.dtype}")
    x = args.get("x")
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        n, _, h, w = x.shape
        if not (
            value.dim() == 4
            and value.shape[1] == 1
            and value.shape[0] in (1, n)
            and value.shape[-2:] == (h, w)
        ):
            raise ValueError(
                f"`{name}` must be shaped (1, 1, {h}, {w}) or ({n}, 1, {h}, {w}) to match `x` "
                f"{tuple(x.shape)}, got {tuple(value.shape)}"
            )
    if not value.any():
        raise ValueError(f"`{name}` is empty: mark at least one pixel True")
