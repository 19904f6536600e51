"""Argument validators of lesson 06's exercises (interp_lib/featvis.py)."""

from __future__ import annotations

import torch
from torch import nn

from ..exercises import check_input_shape, check_like_model, generator
from ..featvis_units import default_input_shape, layer_output_shape

__all__ = [
    "check_beta",
    "check_images",
    "check_required_generator",
    "check_jitter",
    "check_scale",
    "check_shape",
    "check_start",
    "check_transforms",
    "check_unit",
]


# =========================================================================== exercise 06.1


def check_beta(value, name, _args) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}")


def check_images(value, name, _args) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    if value.dim() != 4:
        raise ValueError(f"`{name}` must be a batch of images (N, C, H, W), got shape {tuple(value.shape)}")
    if value.shape[-1] < 2 or value.shape[-2] < 2:
        raise ValueError(f"`{name}` must be at least 2x2 pixels, got {tuple(value.shape[-2:])}")


def check_required_generator(value, name, args) -> None:
    if value is None:
        raise TypeError(
            f"`{name}` must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), got None"
        )
    generator(value, name, args)


def check_jitter(value, name, _args) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0, got {value!r}")


def check_scale(value, name, _args) -> None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    if not ok or not 0 < value[0] <= value[1]:
        raise ValueError(f"`{name}` must be a pair (low, high) with 0 < low <= high, got {value!r}")


def check_shape(value, name, args) -> None:
    if value is None:
        return
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and all(isinstance(v, int) and v > 0 for v in value)
    ):
        raise ValueError(f"`{name}` must be (C, H, W) with positive ints, got {value!r}")


def _input_shape(args) -> tuple[tuple[int, ...], str]:
    """The image shape ``(C, H, W)`` activation_maximisation will use, and the argument it
    comes from (``shape``, ``start`` or, by guess, ``model``)."""
    shape, start = args.get("shape"), args.get("start")
    if shape is not None:
        return tuple(shape), "shape"
    if isinstance(start, torch.Tensor) and start.dim() == 4:
        return tuple(start.shape[1:]), "start"
    return default_input_shape(args["model"]), "model"


def _probe(args) -> tuple[int, ...]:
    """``layer``'s output shape for one input image, a ValueError naming the argument the
    image shape came from when the model cannot take it (one forward of one image)."""
    model, layer = args["model"], args["layer"]
    shape, source = _input_shape(args)
    if source != "model":
        check_input_shape(model, shape, source)
    try:
        return layer_output_shape(model, layer, shape)
    except RuntimeError as err:
        what = "has images of shape" if source == "start" else "is"
        raise ValueError(
            f"`{source}` {what} {shape}, which the model cannot take "
            f"({str(err).splitlines()[0]}); pass images the model was made for"
            + (f", e.g. {default_input_shape(model)}" if _guessable(model) else "")
        ) from None


def _guessable(model) -> bool:
    try:
        default_input_shape(model)
    except ValueError:
        return False
    return True


def check_start(value, name, args) -> None:
    if value is None:
        return
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() != 4:
        raise ValueError(f"`{name}` must be a float image batch (N, C, H, W) in [0, 1]")
    model = args.get("model")
    if isinstance(model, nn.Module) and args.get("param") != "fourier":  # (Fourier images are float32)
        check_like_model(value, name, model)
    if value.numel() and (value.min() < 0 or value.max() > 1):
        raise ValueError(f"`{name}` must hold pixel values in [0, 1]")
    shape = args.get("shape")
    if shape is not None and tuple(value.shape[1:]) != tuple(shape):
        raise ValueError(
            f"`{name}` has images of shape {tuple(value.shape[1:])} but `shape` is "
            f"{tuple(shape)}; leave `shape` out when you give `start`"
        )
    if isinstance(model, nn.Module) and args.get("channel") is None and args.get("neuron") is None:
        _probe(args)  # (with a channel or neuron, their check probes the same shape)


def check_transforms(value, name, args) -> None:
    if not isinstance(value, (bool, dict)):
        raise TypeError(
            f"`{name}` must be True/False or a dict of random_transform options, got {type(value).__name__}"
        )
    if isinstance(value, dict):
        unknown = set(value) - {"jitter", "scale", "degrees"}
        if unknown:
            raise ValueError(f"`{name}` has unknown options {sorted(unknown)}; valid: jitter, scale, degrees")


def check_unit(value, name, args) -> None:
    """Checks ``channel`` and ``neuron`` against the chosen layer's output shape."""
    model, layer = args.get("model"), args.get("layer")
    channel, start = args.get("channel"), args.get("start")
    if name == "channel" and value is not None:
        values = (
            [value] if isinstance(value, int) else list(value) if isinstance(value, (list, tuple)) else None
        )
        if (
            values is None
            or not values
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        ):
            raise TypeError(f"`channel` must be an int, a non-empty list of ints, or None; got {value!r}")
        if (
            isinstance(start, torch.Tensor)
            and len(values) > 1
            and start.dim() == 4
            and len(start) != len(values)
        ):
            raise ValueError(f"`channel` lists {len(values)} channels but `start` holds {len(start)} images")
    if name == "neuron" and value is not None:
        if channel is None:
            raise ValueError("`neuron` needs a `channel`")
        if not (
            isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value)
        ):
            raise TypeError(f"`neuron` must be a pair (row, column), got {value!r}")
    if not isinstance(model, nn.Module) or value is None:
        return
    out = _probe(args)
    if name == "channel":
        k = out[0]
        bad = [v for v in values if not 0 <= v < k]
        if bad:
            raise ValueError(
                f"`channel` {bad[0]} is out of range: layer {layer!r} has {k} channels (valid: 0..{k - 1})"
            )
    if name == "neuron":
        if len(out) != 3:
            raise ValueError(f"`neuron` needs a conv layer (C, H, W); layer {layer!r} outputs {out}")
        if not (0 <= value[0] < out[1] and 0 <= value[1] < out[2]):
            raise ValueError(
                f"`neuron` {tuple(value)} is out of range: layer {layer!r} has "
                f"{out[1]}x{out[2]} positions (rows 0..{out[1] - 1}, columns 0..{out[2] - 1})"
            )
