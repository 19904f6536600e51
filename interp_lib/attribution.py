"""One uniform call for every attribution method of the course.

Every method has the signature ``method(model, x, target, **options)`` and returns a
tensor shaped like ``x`` (captum's convention). Exercises marked
``@exercise(..., attribution=True)`` are registered automatically; other methods
(e.g. an LRP composite) join with :func:`register`.

    >>> from interp_lib.attribution import attribute
    >>> heat = attribute("saliency_map", model, x, target=3)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .exercises import load_all

__all__ = ["methods", "attribute", "register"]

_EXTRA: dict[str, Callable[..., torch.Tensor]] = {}


def register(name: str, method: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Add a method under ``name`` (replacing any earlier one of that name)."""
    _EXTRA[name] = method
    return method


def methods() -> dict[str, Callable[..., torch.Tensor]]:
    """Every attribution method by name: the attribution exercises, then registered extras."""
    found = {ex.name: ex.wrapper for ex in load_all().values() if ex.attribution}
    found.update(_EXTRA)
    return found


def attribute(method: str, model: nn.Module, x: torch.Tensor, target, **options) -> torch.Tensor:
    """Run attribution ``method`` (a name from :func:`methods`) on ``model`` for ``x``."""
    table = methods()
    if method not in table:
        raise ValueError(f"unknown attribution method {method!r}; available: {', '.join(sorted(table))}")
    return table[method](model, x, target, **options)
