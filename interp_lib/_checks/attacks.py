"""Argument validators of lesson 02's exercises (interp_lib/attacks.py)."""

from __future__ import annotations

import torch

from ..exercises import boolean

__all__ = [
    "check_targeted",
    "check_patch_target",
]


def check_targeted(value, name, args) -> None:
    boolean(value, name, args)
    if value and args.get("target") is None:
        raise ValueError(
            f"`target` is None (the predicted class), but `{name}=True` needs the classes "
            "to reach: pass them as `target`"
        )


def check_patch_target(value, name, _args) -> None:
    if value is None:
        raise ValueError(
            f"`{name}` must be the class the patch should cause (an int); None, the "
            "predicted class, differs from image to image"
        )
    if not isinstance(value, int) and not (isinstance(value, torch.Tensor) and value.dim() == 0):
        what = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else type(value).__name__
        )
        raise TypeError(f"`{name}` must be one class (an int) for the whole patch, got {what}")
