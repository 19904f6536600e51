"""Lesson 07 - Reverse mapping: deconvnets and guided backprop.

Zeiler & Fergus (2014) mapped a feature map back to pixel space by walking the network
backwards: unpool with the switches recorded in the forward pass, rectify, filter with
the transposed filters. Read as autograd, that walk is *one backward pass* that differs
from the gradient only at each ReLU (``R`` = the signal arriving from above, ``x`` =
the ReLU's forward input)::

    gradient          R_in = 1[x > 0] R
    deconvnet         R_in = 1[R > 0] R
    guided backprop   R_in = 1[x > 0] 1[R > 0] R     (Springenberg et al. 2014)

Exercises: :func:`unpool_with_switches` (07.1), :func:`deconvnet_reconstruction`
(07.2, the explicit walk), :func:`guided_backprop` (07.3, a custom autograd function at
each ReLU; ``rule="deconvnet"`` gives the deconvnet, registered as the attribution
method ``"deconvnet"``).

Hook-based methods see only ``nn.ReLU`` modules. Models with functional, reused or
in-place ReLUs are refused until converted (:func:`interp_lib.models.convert_relus`);
models with any other nonlinearity (ReLU6, SiLU, Hardswish, GELU...: MobileNet,
EfficientNet, ConvNeXt) are refused outright (:func:`interp_lib.activations.check_activations`),
since at those layers the result would silently be the plain gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from . import attribution
from ._checks.deconvnet import (
    check_channel,
    check_pooled,
    check_relu_model,
    check_size,
    check_switches,
    walk_layer_names,
)
from .exercises import exercise, layer_name, one_of

__all__ = [
    "RULES",
    "unpool_with_switches",
    "deconvnet_reconstruction",
    "guided_backprop",
    "deconvnet",
    "sequential_layers",
    "WALKABLE",
]

RULES = ("guided", "deconvnet", "gradient")

# The layer types the explicit walk knows how to reverse.
WALKABLE = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)


# --------------------------------------------------------------------------- exercises


@exercise("07.1", points=2, checks={"y": check_pooled, "switches": check_switches, "size": check_size})
def unpool_with_switches(y: torch.Tensor, switches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo a max-pooling: put every pooled value back where its maximum came from.

    In the forward pass ``y, switches = F.max_pool2d(a, k, return_indices=True)`` keeps,
    for each window, the largest value of ``a`` (``y``) and *where* it was: its flat index
    ``i * W + j`` inside its ``H x W`` channel (the "switch"). Unpooling writes each
    value of ``y`` at its switch position of an ``(N, C, H, W)`` tensor of zeros::

        out[n, c].flatten()[switches[n, c, p, q]] += y[n, c, p, q]

    (``+=``: when windows overlap, two windows can pick the same position; summing their
    values is what max-pooling's backward pass does.)

    Args:
        y: the signal at the pooled layer, ``(N, C, h, w)``.
        switches: int64 ``(N, C, h, w)``, as returned by ``return_indices=True``.
        size: ``(H, W)``, the spatial size of the pooling layer's *input*.

    Returns:
        ``(N, C, H, W)``: zero except at the switch positions.

    Hint: flatten the last two dimensions and use ``Tensor.scatter_add``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 07.1 `unpool_with_switches` (lesson 07): write it in interp_lib/deconvnet.py"
    )


@exercise(
    "07.2",
    points=3,
    checks={
        "layer": layer_name(among=walk_layer_names),
        "channel": check_channel,
        "rule": one_of(*RULES),
        "start": one_of("activation", "ones"),
    },
)
def deconvnet_reconstruction(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    channel: int | None = None,
    rule: str = "deconvnet",
    start: str = "activation",
) -> torch.Tensor:
    """Zeiler & Fergus' deconvnet by hand: map a feature map of ``layer`` back to pixels.

    Walk an ``nn.Sequential`` CNN (see :func:`sequential_layers`) forward up to and
    including ``layer``, recording each layer's input and each max-pool's switches
    (``F.max_pool2d(..., return_indices=True)`` with the pool's kernel, stride, padding,
    dilation and ceil_mode). Start the backward walk from the output ``A`` of ``layer``:
    ``R = A`` (``start="activation"``: the map's own values, as Zeiler & Fergus) or
    ``R = 1`` (``start="ones"``), with every channel except ``channel`` set to zero
    (``channel=None`` keeps them all). Then reverse the layers from ``layer`` down to the
    input, with ``a`` the layer's recorded forward input:

    * ``MaxPool2d``: :func:`unpool_with_switches` (``size`` = ``a``'s ``(H, W)``);
    * ``ReLU``: the rule at the ReLU, ``R <- 1[R > 0] R`` (``"deconvnet"``: rectify the
      signal), ``1[a > 0] 1[R > 0] R`` (``"guided"``) or ``1[a > 0] R`` (``"gradient"``);
    * ``Conv2d``: filter with the transposed filters, ``F.conv_transpose2d`` with the
      conv's weight, stride, padding, dilation and groups (no bias), and the
      ``output_padding`` that makes the result ``a``'s size;
    * ``Linear``: ``R @ W`` (no bias); ``Flatten``: reshape to ``a``'s shape;
      ``Dropout``/``Identity``: unchanged.

    With ``start="ones"`` and the last layer, this is exactly the backward pass of the
    class score ``channel`` under the rule, i.e. ``guided_backprop(model, x, channel,
    rule)``.

    Args:
        model: an ``nn.Sequential`` of the layers above (the shipped CNNs).
        x: images ``(N, C, H, W)``.
        layer: the name of the layer to start from (``"relu3"``, ``"fc2"``...).
        channel: the feature map (conv) or unit (linear) to reconstruct; ``None``: all.
        rule: ``"deconvnet"``, ``"guided"`` or ``"gradient"``.
        start: ``"activation"`` or ``"ones"``.

    Returns:
        The reconstruction, shaped like ``x`` (no ``grad_fn``).

    Hint: record ``(module, input, switches)`` in a list on the way up and walk it in
    ``reversed`` order; ``output_padding = a_size - ((r_size - 1) * stride - 2 * padding
    + dilation * (kernel - 1) + 1)`` per dimension.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 07.2 `deconvnet_reconstruction` (lesson 07): write it in interp_lib/deconvnet.py"
    )


@exercise("07.3", points=3, attribution=True, checks={"model": check_relu_model, "rule": one_of(*RULES)})
def guided_backprop(model: nn.Module, x: torch.Tensor, target, rule: str = "guided") -> torch.Tensor:
    """Guided backprop (and, with ``rule="deconvnet"``, the deconvnet) as one backward pass.

    The backward pass of the class score ``S_target`` through the model, except that at
    every ``nn.ReLU`` the signal ``R`` arriving from above is passed down by ``rule``
    (``x`` = the ReLU's forward input)::

        "gradient"    R_in = 1[x > 0] R               (the plain gradient)
        "deconvnet"   R_in = 1[R > 0] R
        "guided"      R_in = 1[x > 0] 1[R > 0] R

    Write a ``torch.autograd.Function`` whose ``forward(ctx, x, rule)`` is the ReLU
    (saving what the backward needs on ``ctx``) and whose ``backward(ctx, R)`` applies
    the rule (return one gradient per forward input: ``R_in, None``). Put it at every
    ReLU with a forward hook on each ``nn.ReLU`` module that returns
    ``YourFunction.apply(inputs[0], rule)`` (a forward hook's return value replaces the
    module's output), take the gradient of the summed target scores with respect to
    the input as in ``input_gradient``, and remove the hooks in a ``finally``.
    (Faster: also pass the module's ``output.detach()`` in, and return it from
    ``forward`` as ``out.view_as(out)`` instead of computing the ReLU a second time.)

    Args:
        model: a classifier whose every ReLU is its own ``nn.ReLU`` module (the wrapper
            raises otherwise: convert with ``interp_lib.models.convert_relus``) and
            whose only nonlinearities are ReLUs (the wrapper refuses ReLU6, SiLU, GELU...,
            naming the layer: the rule would not be applied there).
        x: images ``(N, C, H, W)``.
        target: an int or an int64 tensor ``(N,)``.
        rule: ``"guided"``, ``"deconvnet"`` or ``"gradient"``.

    Returns:
        A tensor shaped like ``x`` (no ``grad_fn``).

    Hint: ``interp_lib.attacks.class_scores(logits, target)`` picks the scores.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 07.3 `guided_backprop` (lesson 07): write it in interp_lib/deconvnet.py"
    )


def deconvnet(model: nn.Module, x: torch.Tensor, target, **options) -> torch.Tensor:
    """The deconvnet as an attribution method: ``guided_backprop(..., rule="deconvnet")``."""
    options.setdefault("rule", "deconvnet")
    return guided_backprop(model, x, target, **options)


attribution.register("deconvnet", deconvnet)


# --------------------------------------------------------------------------- helpers


def sequential_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf layers of an ``nn.Sequential`` (nested ones flattened) as ``(name, module)``.

    Names are those of ``model.named_modules()`` (``"conv1"``, ``"features.0"``). Raises
    ``TypeError`` (naming ``model``) unless every layer is one of :data:`WALKABLE`.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"`model` must be an nn.Sequential for the explicit walk, got {type(model).__name__}")
    out: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, seq: nn.Sequential) -> None:
        for name, child in seq.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                visit(full + ".", child)
            elif isinstance(child, WALKABLE):
                out.append((full, child))
            else:
                raise TypeError(
                    f"`model` layer {full!r} is a {type(child).__name__}; the explicit walk knows "
                    f"{', '.join(t.__name__ for t in WALKABLE)}"
                )

    visit("", model)
    return out


# Crispness, measured (issue #14 item 14): the lesson compares the three rules' maps by numbers,
# not only by eye. Both take maps shaped like the images, (N, C, H, W), and return one value per image.


def _map_and_images(maps: torch.Tensor, images: torch.Tensor | None = None) -> None:
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4 or not maps.is_floating_point():
        raise ValueError(f"`maps` must be a float tensor (N, C, H, W), got {getattr(maps, 'shape', maps)!r}")
    if min(maps.shape[2:]) < 3:
        raise ValueError(f"`maps` must be at least 3x3 pixels, got {tuple(maps.shape)}")
    if images is not None and (
        not isinstance(images, torch.Tensor)
        or images.shape[0] != maps.shape[0]
        or images.shape[2:] != maps.shape[2:]
    ):
        raise ValueError(
            f"`images` must be (N, C', H, W) like `maps` {tuple(maps.shape)}, got {getattr(images, 'shape', images)!r}"
        )


def roughness(maps: torch.Tensor) -> torch.Tensor:
    """How speckled each map is: the total variation of the channel-summed map ``a`` over
    its L1 norm, ``(sum |a[i+1,j] - a[i,j]| + sum |a[i,j+1] - a[i,j]|) / (2 sum |a|)``.

    ``(N, C, H, W) -> (N,)``; scale-free. About 1.1-1.4 for pixel noise, near 0 for a
    smooth map; a crisp drawing of edges lies in between."""
    _map_and_images(maps)
    a = maps.detach().sum(1)
    tv = (a[:, 1:] - a[:, :-1]).abs().flatten(1).sum(1) + (a[:, :, 1:] - a[:, :, :-1]).abs().flatten(1).sum(1)
    return tv / (2 * a.abs().flatten(1).sum(1)).clamp_min(1e-12)


def edge_alignment(maps: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """How much each map draws the image's edges: the Pearson correlation over pixels of
    ``|maps|`` (summed over channels) with the image's edge magnitude (the norm of the
    Sobel gradient, summed over channels). ``(N, C, H, W), (N, C', H, W) -> (N,)`` in [-1, 1]."""
    _map_and_images(maps, images)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    img = images.detach().float().flatten(0, 1)[:, None]
    grad = torch.nn.functional.conv2d(torch.nn.functional.pad(img, (1, 1, 1, 1), mode="replicate"), kernels)
    edges = grad.norm(dim=1).view(images.shape[0], -1, *images.shape[2:]).sum(1).flatten(1)
    mag = maps.detach().abs().sum(1).flatten(1)
    edges, mag = edges - edges.mean(1, keepdim=True), mag - mag.mean(1, keepdim=True)
    return (edges * mag).sum(1) / (edges.norm(dim=1) * mag.norm(dim=1)).clamp_min(1e-12)


__all__ += ["roughness", "edge_alignment"]
