"""Argument validators of lesson 12's exercises (interp_lib/superposition.py)."""

from __future__ import annotations

import torch

__all__ = [
    "check_toy_weights",
    "check_toy_bias",
    "check_features",
    "check_importance",
    "check_acts",
    "check_encoder",
    "check_encoder_bias",
    "check_decoder",
    "check_decoder_bias",
    "check_directions",
]


def _float_tensor(value, name: str, dims: int, what: str) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        got = getattr(value, "dtype", type(value).__name__)
        raise TypeError(f"`{name}` must be a floating-point tensor {what}, got {got}")
    if value.dim() != dims:
        raise ValueError(f"`{name}` must be {what}, got shape {tuple(value.shape)}")


def _same(name: str, got: int, other: str, want: int, axis: str) -> None:
    if got != want:
        raise ValueError(f"`{name}` has {got} {axis} but `{other}` has {want}")


def check_toy_weights(value, name: str, _args: dict) -> None:
    _float_tensor(value, name, 3, "(I, m, n): I models, m hidden dimensions, n features (W[None] for one)")
    if value.shape[1] < 1 or value.shape[2] < 1:
        raise ValueError(f"`{name}` must have m >= 1 and n >= 1, got shape {tuple(value.shape)}")


def check_toy_bias(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 2, "(I, n)")
    W = args.get("W")
    if isinstance(W, torch.Tensor) and W.dim() == 3 and tuple(value.shape) != (W.shape[0], W.shape[2]):
        raise ValueError(f"`{name}` must be (I, n) = {(W.shape[0], W.shape[2])}, got {tuple(value.shape)}")


def check_features(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 3, "(B, I, n): a batch of feature vectors for each model")
    W = args.get("W")
    if isinstance(W, torch.Tensor) and W.dim() == 3 and tuple(value.shape[1:]) != (W.shape[0], W.shape[2]):
        raise ValueError(
            f"`{name}` must be (B, I, n) with (I, n) = {(W.shape[0], W.shape[2])}, got {tuple(value.shape)}"
        )
    if value.numel() and not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def check_importance(value, name: str, args: dict) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor (n,) or (I, n)")
    W = args.get("W")
    if isinstance(W, torch.Tensor) and W.dim() == 3:
        allowed = ((W.shape[2],), (W.shape[0], W.shape[2]))
        if tuple(value.shape) not in allowed:
            raise ValueError(f"`{name}` must be (n,) or (I, n), i.e. {allowed}, got {tuple(value.shape)}")
    if (value < 0).any():
        raise ValueError(f"`{name}` must be >= 0 (a weight per feature)")


def check_acts(value, name: str, _args: dict) -> None:
    _float_tensor(value, name, 2, "(B, d): one activation vector per row")
    if value.numel() and not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def check_encoder(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 2, "(d, k)")
    acts = args.get("acts")
    if isinstance(acts, torch.Tensor) and acts.dim() == 2:
        _same(name, value.shape[0], "acts", acts.shape[1], "rows (d)")


def check_encoder_bias(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 1, "(k,)")
    enc = args.get("W_enc")
    if isinstance(enc, torch.Tensor) and enc.dim() == 2:
        _same(name, value.shape[0], "W_enc", enc.shape[1], "entries (k)")


def check_decoder(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 2, "(k, d): one dictionary direction per row")
    enc = args.get("W_enc")
    if isinstance(enc, torch.Tensor) and enc.dim() == 2 and tuple(value.shape) != tuple(enc.shape[::-1]):
        raise ValueError(f"`{name}` must be (k, d) = {tuple(enc.shape[::-1])}, got {tuple(value.shape)}")


def check_decoder_bias(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 1, "(d,)")
    acts = args.get("acts")
    if isinstance(acts, torch.Tensor) and acts.dim() == 2:
        _same(name, value.shape[0], "acts", acts.shape[1], "entries (d)")


def check_directions(value, name: str, args: dict) -> None:
    _float_tensor(value, name, 2, "(count, d): one direction per row")
    other = args.get("learned") if name == "true" else None
    if isinstance(other, torch.Tensor) and other.dim() == 2:
        _same(name, value.shape[1], "learned", other.shape[1], "columns (d)")
    if value.shape[0] < 1:
        raise ValueError(f"`{name}` must hold at least one direction")
