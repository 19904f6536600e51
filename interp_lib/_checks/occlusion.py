"""Argument validators of lesson 07's exercises (interp_lib/occlusion.py)."""

from __future__ import annotations

import torch

from ..exercises import baseline_for

__all__ = [
    "check_window",
    "check_stride",
    "check_baseline",
    "check_batch",
]


def _pair_of_positive_ints(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"`{name}` must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"`{name}` must be >= 1, got {value!r}")
    return tuple(pair)


def check_window(value, name: str, args: dict) -> None:
    h, w = _pair_of_positive_ints(value, name)
    x = args.get("x")
    if isinstance(x, torch.Tensor) and x.dim() == 4 and (h > x.shape[2] or w > x.shape[3]):
        raise ValueError(f"`{name}` {(h, w)} is larger than the image {tuple(x.shape[2:])}")


def check_stride(value, name: str, args: dict) -> None:
    s = _pair_of_positive_ints(value, name)
    try:
        w = _pair_of_positive_ints(args.get("window"), "window")
    except (TypeError, ValueError):
        return
    if s[0] > w[0] or s[1] > w[1]:
        raise ValueError(
            f"`{name}` {s} must not exceed the window {w}: pixels between windows would never be occluded"
        )


check_baseline = baseline_for("x")


def check_batch(value, name: str, args: dict) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}")
