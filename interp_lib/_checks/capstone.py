"""Argument validators of lesson 14's exercises (interp_lib/capstone.py)."""

from __future__ import annotations

from ..exercises import mask_for

__all__ = ["check_region"]


#: a boolean mask ``(1, 1, H, W)`` or ``(N, 1, H, W)`` matching ``x``, not empty
check_region = mask_for("x", nonempty=True)
