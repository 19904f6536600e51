"""Argument validators of lesson 08's exercises (interp_lib/lrp.py) and of the LRP
infrastructure (interp_lib/lrp_rules.py, interp_lib/lrp_graph.py)."""

from __future__ import annotations

import torch
from torch import nn

from ..activations import check_activations
from ..exercises import _check_model

# the rules `lrp_layer` takes, and the layers it and `zb_rule` send relevance through
RULES = ("0", "epsilon", "gamma", "zplus", "wsquare")
PARAM_LAYERS = (nn.Linear, nn.Conv2d)


def check_layer(value, name, _args):
    if not isinstance(value, PARAM_LAYERS):
        raise TypeError(f"`{name}` must be an nn.Linear or nn.Conv2d layer, got {type(value).__name__}")


def check_activation(value, name, args):
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    layer = args.get("layer")
    want = 2 if isinstance(layer, nn.Linear) else 4
    if value.dim() != want:
        raise ValueError(
            f"`{name}` must have {want} dimensions for a {type(layer).__name__} layer "
            f"(batch first), got shape {tuple(value.shape)}"
        )
    size = getattr(layer, "in_features", getattr(layer, "in_channels", None))
    if size is not None and value.shape[1] != size:
        what = ("feature" if isinstance(layer, nn.Linear) else "channel") + (
            "s" if value.shape[1] != 1 else ""
        )
        raise ValueError(
            f"`{name}` has {value.shape[1]} {what} (shape {tuple(value.shape)}) but the layer "
            f"{layer} takes {size}"
        )


def _output_shape(layer, a) -> tuple:
    if isinstance(layer, nn.Linear):
        return (layer.out_features,)
    hw = []
    for i, size in enumerate(a.shape[2:]):
        pad = layer.padding[i] if isinstance(layer.padding, tuple) else None
        if pad is None:  # 'same' / 'valid'
            with torch.no_grad():
                return tuple(layer(a[:1]).shape[1:])
        k, st, d = layer.kernel_size[i], layer.stride[i], layer.dilation[i]
        hw.append((size + 2 * pad - d * (k - 1) - 1) // st + 1)
    return (layer.out_channels, *hw)


def check_relevance(value, name, args):
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {type(value).__name__}")
    layer, a = args.get("layer"), args.get("a")
    if isinstance(layer, PARAM_LAYERS) and isinstance(a, torch.Tensor):
        shape = _output_shape(layer, a)
        if tuple(value.shape[1:]) != tuple(shape) or len(value) != len(a):
            raise ValueError(
                f"`{name}` must be shaped like the layer's output {(len(a),) + tuple(shape)}, "
                f"got {tuple(value.shape)}"
            )


def check_bound(value, name, args):
    if value is None:
        raise ValueError(
            f"`{name}` is missing: the z^B rule needs the lowest and highest input values "
            "(e.g. low=0.0, high=1.0 for pixels in [0, 1])"
        )
    if not isinstance(value, (int, float, torch.Tensor)) or isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be a number or a tensor broadcastable to `a`, got {type(value).__name__}"
        )
    a = args.get("a")
    if name == "high" and isinstance(a, torch.Tensor) and args.get("low") is not None:
        low = torch.as_tensor(args["low"], dtype=a.dtype)
        high = torch.as_tensor(value, dtype=a.dtype)
        if (low > high).any():
            raise ValueError(f"`{name}` must be >= `low` everywhere")
        tol = 1e-5 * (1 + high.abs().max())
        if (a < low - tol).any() or (a > high + tol).any():
            raise ValueError(
                f"`a` must lie inside the box [low, high]; got values in "
                f"[{a.min().item():.3g}, {a.max().item():.3g}] (`high`/`low` wrong?)"
            )


def check_lrp_model(value, name, args):
    """An nn.Module whose only nonlinearities are ReLUs (any form) and max-pooling."""
    _check_model(value, name, args)
    check_activations(value, "lrp", rules=True)


def check_composite(value, name, _args):
    """None or a composite: anything with a ``rules(layers)`` method (duck-typed, so that
    this module needs no import of interp_lib.lrp_rules)."""
    if value is not None and not callable(getattr(value, "rules", None)):
        raise TypeError(
            f"`{name}` must be an interp_lib.lrp_rules.Composite (e.g. EpsilonPlus()) or None, "
            f"got {type(value).__name__}"
        )
