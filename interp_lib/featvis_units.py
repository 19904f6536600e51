"""Lesson 06 infrastructure: layers, the unit objective and the dataset maxima.

Find a layer by name (:func:`find_layer`) and the shape of its output
(:func:`layer_output_shape`), read the objective of a unit from a layer's output
(:func:`unit_objective`, what exercise 06.3 maximises), and find the dataset images a
channel responds to most (:func:`channel_activations`, :func:`dataset_maximum`,
:func:`top_activating`). Nothing here calls an exercise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .exercises import guard_model, layer_names

__all__ = [
    "layer_names",
    "find_layer",
    "layer_output_shape",
    "default_input_shape",
    "unit_objective",
    "channel_activations",
    "dataset_maximum",
    "top_activating",
]


# =========================================================================== layers


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The sub-module called ``layer``; a ``ValueError`` listing the valid names otherwise."""
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or not layer or layer not in modules:
        raise ValueError(
            f"`layer` {layer!r} is not a layer of the model; valid names: {', '.join(layer_names(model))}"
        )
    return modules[layer]


def default_input_shape(model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` of the course's models: 1x28x28 (digits) or 3x32x32 (shapes)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels in (1, 3):
        return (1, 28, 28) if first.in_channels == 1 else (3, 32, 32)
    raise ValueError("cannot guess the input shape of this model; pass `shape=(C, H, W)`")


def layer_output_shape(model: nn.Module, layer: str, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of ``layer``'s output for one input of shape ``shape`` (without the batch)."""
    module = find_layer(model, layer)
    seen: list[tuple[int, ...]] = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
    try:
        with guard_model(model), torch.no_grad():
            model(torch.zeros(1, *shape))
    finally:
        handle.remove()
    return seen[-1]


def unit_objective(activation: torch.Tensor, channel, neuron=None) -> torch.Tensor:
    """The objective of each image ``n`` read from a layer's output ``activation`` ``(N, ...)``.

    * ``channel`` None: ``mean(activation[n] ** 2)`` (the DeepDream objective);
    * conv output ``(N, C, H, W)``: ``activation[n, channel[n]].mean()`` over positions,
      or ``activation[n, channel[n], i, j]`` when ``neuron = (i, j)``;
    * linear output ``(N, K)``: ``activation[n, channel[n]]`` (a class logit for the last layer).

    ``channel`` is an int (the same for every image) or one int per image. Returns ``(N,)``.
    """
    n = activation.shape[0]
    flat = activation.reshape(n, -1)
    if channel is None:
        return (flat**2).mean(1)
    index = torch.as_tensor(channel).reshape(-1).expand(n)
    rows = torch.arange(n)
    if activation.dim() == 2:
        return activation[rows, index]
    picked = activation[rows, index]  # (N, H, W)
    if neuron is not None:
        i, j = neuron
        return picked[:, i, j]
    return picked.reshape(n, -1).mean(1)


# =========================================================================== dataset helpers


@torch.no_grad()
def channel_activations(
    model: nn.Module, layer: str, x: torch.Tensor, neuron=None, batch_size: int = 500
) -> torch.Tensor:
    """The objective of every channel of ``layer`` for each image of ``x``: ``(N, K)``.

    Channel means for conv layers (or one position ``neuron = (row, column)``), unit values
    for linear layers - what :func:`unit_objective` reads for each channel.
    """
    module = find_layer(model, layer)
    store: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: store.append(o.detach()))
    try:
        with guard_model(model):
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        handle.remove()
    act = torch.cat(store)
    if act.dim() == 4:
        return act[:, :, neuron[0], neuron[1]] if neuron is not None else act.mean(dim=(2, 3))
    return act.reshape(len(act), -1)


def dataset_maximum(model: nn.Module, layer: str, x: torch.Tensor, neuron=None) -> torch.Tensor:
    """The largest objective each channel of ``layer`` reaches on the images ``x``: ``(K,)``."""
    return channel_activations(model, layer, x, neuron).max(0).values


def top_activating(
    model: nn.Module, layer: str, channel: int, x: torch.Tensor, k: int = 9, acts: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and objective values of the ``k`` images of ``x`` that excite ``channel`` most.

    ``acts``: precomputed :func:`channel_activations` (saves the forward passes when
    looping over channels).
    """
    acts = channel_activations(model, layer, x) if acts is None else acts
    values, idx = acts[:, channel].topk(k)
    return idx, values
