"""Argument validators of lesson 11's exercises (interp_lib/concepts.py)."""

from __future__ import annotations

import torch

__all__ = [
    "check_activation_rows",
    "check_random_rows",
    "check_cavs",
    "check_feature_maps",
    "check_concept_masks",
    "check_top",
]


def _shape(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def check_activation_rows(value, name: str, _args: dict) -> None:
    """A float matrix ``(N, D)`` of activations (one row per image), finite, N >= 1."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a float tensor (N, D) of activations, got {_shape(value)}")
    if value.dim() != 2 or len(value) == 0:
        raise ValueError(
            f"`{name}` must be a non-empty matrix (N, D), one flattened activation per row, got {_shape(value)}"
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def check_random_rows(value, name: str, args: dict) -> None:
    check_activation_rows(value, name, args)
    concept = args.get("concept")
    if isinstance(concept, torch.Tensor) and concept.dim() == 2 and concept.shape[1] != value.shape[1]:
        raise ValueError(
            f"`{name}` has {value.shape[1]} features per row but `concept` has {concept.shape[1]}: "
            "both must come from the same layer"
        )


def check_cavs(value, name: str, _args: dict) -> None:
    """Concept activation vectors ``(R, D)``, finite."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(
            f"`{name}` must be a float tensor (R, D) of concept activation vectors, got {_shape(value)}"
        )
    if value.dim() != 2 or len(value) == 0:
        raise ValueError(
            f"`{name}` must be (R, D), one CAV per row (use cav[None] for one), got {_shape(value)}"
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def check_feature_maps(value, name: str, _args: dict) -> None:
    """Unit activation maps ``(N, U, h, w)``, float, finite."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a float tensor (N, U, h, w) of feature maps, got {_shape(value)}")
    if value.dim() != 4 or len(value) == 0:
        raise ValueError(f"`{name}` must be a batch of feature maps (N, U, h, w), got {_shape(value)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def check_concept_masks(value, name: str, args: dict) -> None:
    """Boolean concept masks ``(N, K, H, W)`` for the same N images as ``activations``."""
    if not isinstance(value, torch.Tensor) or value.dtype != torch.bool or value.dim() != 4:
        raise TypeError(f"`{name}` must be a bool tensor (N, K, H, W) of concept masks, got {_shape(value)}")
    acts = args.get("activations")
    if isinstance(acts, torch.Tensor) and acts.dim() == 4:
        if len(acts) != len(value):
            raise ValueError(f"`{name}` holds {len(value)} images but `activations` {len(acts)}")
        if value.shape[-2] < acts.shape[-2] or value.shape[-1] < acts.shape[-1]:
            raise ValueError(
                f"`{name}` ({value.shape[-2]}x{value.shape[-1]}) must be at least as large as the "
                f"feature maps ({acts.shape[-2]}x{acts.shape[-1]}): the maps are upsampled to the masks"
            )


def check_top(value, name: str, _args: dict) -> None:
    """The fraction of the highest activations that counts as "on": 0 < top < 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(
            f"`{name}` must be a fraction strictly between 0 and 1 (Bau et al.: 0.005), got {value!r}"
        )
