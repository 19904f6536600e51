"""Lesson 08 - Reverse mapping through relevance: layer-wise relevance propagation (LRP).

A network's output is explained by sending it back, layer by layer, as *relevance*: each
layer hands the relevance of its outputs to its inputs in proportion to their
contributions, so that (up to what the biases and stabilisers absorb) every layer holds
the same total, the explained logit.

Exercises, in the lesson's order: :func:`lrp_layer` (one dense or conv layer, the rule as
a parameter), :func:`zb_rule` (the z^B rule for the pixel layer) and :func:`lrp` (a whole
``nn.Sequential`` network under a composite). Every denominator is stabilised as zennit
does it, :func:`stabilize`: ``z + s * sign(z)`` with ``sign(0) = +1`` and ``s = 1e-6``
unless told otherwise.

The infrastructure around them, zennit style: :mod:`interp_lib.lrp_rules` holds the
*rules* (objects that send relevance through one layer by calling :func:`lrp_layer` or
:func:`zb_rule`) and the *composites* (which rule each layer gets, e.g.
``lrp_rules.EpsilonPlus()``); :mod:`interp_lib.lrp_graph` sends the same rules through
models with residual additions or concatenations (ResNet, GoogLeNet), and
``layer_relevances`` feeds the lesson's explorer. The argument checks are in
``interp_lib/_checks/lrp.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ._checks.lrp import (
    RULES,
    check_activation,
    check_bound,
    check_composite,
    check_layer,
    check_lrp_model,
    check_relevance,
)
from .exercises import exercise, nonnegative, one_of

if TYPE_CHECKING:  # (lrp_rules imports this module: no import at run time)
    from .lrp_rules import Composite

__all__ = ["lrp_layer", "zb_rule", "lrp", "stabilize", "RULES"]


@exercise(
    "08.1",
    points=3,
    checks={
        "layer": check_layer,
        "a": check_activation,
        "relevance": check_relevance,
        "rule": one_of(*RULES),
        "epsilon": nonnegative,
        "gamma": nonnegative,
        "stabilizer": nonnegative,
    },
)
def lrp_layer(
    layer: nn.Module,
    a: torch.Tensor,
    relevance: torch.Tensor,
    rule: str = "epsilon",
    *,
    epsilon: float = 0.25,
    gamma: float = 0.25,
    stabilizer: float = 1e-6,
    zero_bias: bool = False,
) -> torch.Tensor:
    """Send relevance through one ``nn.Linear`` or ``nn.Conv2d`` layer with an LRP rule.

    The layer computes ``z_k = sum_j a_j w_jk + b_k``. Every rule distributes the
    relevance ``R_k`` of each output over the inputs in proportion to a (modified)
    contribution, with the denominator stabilised, ``stab(z) = z + s sign(z)``
    (``sign(0) = +1``, ``s = stabilizer``)::

        '0'       R_j = a_j sum_k w_jk            R_k / stab(z_k)
        'epsilon' R_j = a_j sum_k w_jk            R_k / (z_k + epsilon sign(z_k))
        'zplus'   R_j = sum_k (a_j^+ w_jk^+ + a_j^- w_jk^-) R_k / stab(z_k^+)
                  with z_k^+ = sum_j (a_j^+ w_jk^+ + a_j^- w_jk^-) + b_k^+
        'gamma'   (zennit's generalised form) for outputs with z_k > 0:
                  R_j = sum_k (a_j^+ (w_jk + g w_jk^+) + a_j^- (w_jk + g w_jk^-)) R_k / stab(z_k^up)
                  z_k^up = sum_j (same) + b_k + g b_k^+;
                  for z_k < 0 the same with w^+ and w^- (and b^+ -> b^-) swapped; z_k = 0 -> 0
                  (the case split uses the layer's real output z_k, bias included,
                  also with ``zero_bias=True``)
        'wsquare' R_j = sum_k w_jk^2 R_k / stab(sum_j w_jk^2 + b_k^2)

    (``v^+ = max(v, 0)``, ``v^- = min(v, 0)``, ``g = gamma``). With non-negative inputs
    (after a ReLU) 'zplus' is the textbook z+ rule and 'gamma' the textbook LRP-gamma.
    ``zero_bias=True`` drops the bias from every denominator (zennit's
    ``zero_params='bias'``). For a conv layer the sums run over the receptive fields;
    padding, stride and dilation are the layer's own.

    Args:
        layer: an ``nn.Linear`` or ``nn.Conv2d`` (do not change its parameters).
        a: the layer's input ``(N, D)`` or ``(N, C, H, W)``.
        relevance: ``R_k``, shaped like the layer's output.
        rule: one of ``'0', 'epsilon', 'gamma', 'zplus', 'wsquare'``.
        epsilon: the epsilon of rule 'epsilon' (>= 0).
        gamma: the gamma of rule 'gamma' (>= 0).
        stabilizer: ``s`` above, for every rule but 'epsilon'.
        zero_bias: leave the bias out of the denominators.

    Returns:
        ``R_j`` shaped like ``a`` (detached).

    Hint: the four-step recipe -- (1) a modified forward ``z' = rho(layer)(a')``
    (``torch.nn.functional.linear`` / ``conv2d`` with ``layer.stride`` etc. and modified
    weights), (2) ``s = R / stab(z')``, (3) ``c = autograd.grad(z', a', grad_outputs=s)``,
    (4) ``R_in = a' * c``, summed over the modified copies ``a'`` of the input.

    Callers rely on the same result in any grad mode: :func:`lrp` may call this under
    ``torch.no_grad()``, and :func:`interp_lib.lrp_graph.lrp_graph` calls it from inside a
    backward pass (an
    ``autograd.Function``'s ``backward``, where grad mode is off). So run step 3 under
    ``torch.enable_grad()`` on detached copies (or without autograd), and return a
    detached tensor (tests/test_08_lrp_mutants.py checks all three ways of calling).
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 08.1 `lrp_layer` (lesson 08): write it in interp_lib/lrp.py")


@exercise(
    "08.2",
    points=2,
    checks={
        "layer": check_layer,
        "a": check_activation,
        "relevance": check_relevance,
        "low": check_bound,
        "high": check_bound,
        "stabilizer": nonnegative,
    },
)
def zb_rule(
    layer: nn.Module,
    a: torch.Tensor,
    relevance: torch.Tensor,
    low=None,
    high=None,
    *,
    stabilizer: float = 1e-6,
) -> torch.Tensor:
    """The z^B rule for the input (pixel) layer, whose inputs lie in a box ``l <= a <= h``.

    ::

        R_j = sum_k (a_j w_jk - l_j w_jk^+ - h_j w_jk^-) R_k / stab(sum_j' (a_j' w_j'k - l_j' w_j'k^+ - h_j' w_j'k^-))

    (``w^+ = max(w, 0)``, ``w^- = min(w, 0)``; ``stab`` as in :func:`lrp_layer`). The
    bias does not appear (zennit's ``ZBox``: its bias terms cancel).

    Args:
        layer: an ``nn.Linear`` or ``nn.Conv2d``, the first layer of the network.
        a: its input, the image ``(N, C, H, W)`` (or ``(N, D)``), inside the box.
        relevance: ``R_k`` shaped like the layer's output.
        low, high: the box's bounds, numbers or tensors broadcastable to ``a`` (e.g.
            ``(1, C, 1, 1)`` per channel). Both are required.
        stabilizer: ``s`` of the denominator.

    Returns:
        ``R_j`` shaped like ``a`` (detached).

    Hint: three forward passes, of ``a`` with ``w``, of ``l`` (expanded to ``a``'s shape)
    with ``w^+`` and of ``h`` with ``w^-``, all without bias; one ``autograd.grad``
    over the three inputs gives the three ``c`` terms.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 08.2 `zb_rule` (lesson 08): write it in interp_lib/lrp.py")


@exercise("08.3", points=3, attribution=True, checks={"model": check_lrp_model, "composite": check_composite})
def lrp(model: nn.Module, x: torch.Tensor, target=None, composite: Composite | None = None) -> torch.Tensor:
    """Layer-wise relevance propagation through a sequential network under a composite.

    Start with ``R = one_hot(target) * logits`` at the output (the target logit is the
    relevance to distribute; ``target=None`` takes the predicted class) and walk the
    layers backwards, ``layers = lrp_rules.as_sequential(model)``, layer by layer:

    * a layer with a rule (``rules = composite.rules(layers)``, ``rules[i]`` is not None):
      ``R = rule.relevance(layer, a, R)`` (the rule calls :func:`lrp_layer` /
      :func:`zb_rule`); ``a`` is that layer's input from the forward pass;
    * ``nn.ReLU``: relevance passes through unchanged;
    * max-pooling, ``nn.Flatten``, ``nn.Dropout`` (eval): the plain gradient,
      ``R = autograd.grad(layer(a), a, grad_outputs=R)`` -- for max-pooling that is
      "winner takes all" (each window's relevance goes to its maximum).

    Any other model (a ResNet with residual additions, a GoogLeNet with concatenations, a
    ``torch.fx.GraphModule``; ``lrp_rules.is_sequential(model)`` tells) is not walked by
    hand: return ``lrp_graph.lrp_graph(model, x, target, composite)``, the infrastructure
    that sends the same rules through any traceable graph.

    Args:
        model: an ``nn.Sequential`` (nested ones are flattened) of Linear, Conv2d, ReLU,
            max/avg-pool, Flatten and Dropout layers (see
            :func:`interp_lib.lrp_rules.as_sequential`), or any model for
            :func:`interp_lib.lrp_graph.lrp_graph` (BatchNorm merged first:
            :func:`interp_lib.models.merge_batchnorm`). The wrapper refuses models with
            other nonlinearities (ReLU6, SiLU, GELU, sigmoid gates...), naming the layer.
        x: images ``(N, C, H, W)``.
        target: an int or an int64 tensor ``(N,)``. (A caller's None, the default, means the
            predicted class; the wrapper resolves it to ``model(x).argmax(1)`` before your
            code runs.)
        composite: which rule each layer uses; default ``lrp_rules.EpsilonPlus()`` (z+ for
            conv layers, epsilon for dense layers).

    Returns:
        The input relevance ``R`` shaped like ``x`` (detached). With conserving rules and
        a bias-free model ``R[n].sum()`` equals the target logit.

    Hint: run the forward pass under ``torch.no_grad()`` keeping every layer's input
    in a list; never call an in-place ReLU module (use ``torch.relu``). Import the
    infrastructure inside the function (``from interp_lib import lrp_graph, lrp_rules``):
    ``lrp_rules`` imports this module, so a module-level import would be a circle.

    Callers rely on a refusal, never a silently wrong map, for what the walk cannot
    handle: a BatchNorm left in the network, a Linear/Conv2d the composite gives no rule,
    any other layer without a rule that is not listed above. Raise ``ValueError`` naming
    the layer before the walk (``lrp_rules.check_supported(layers, rules)`` does exactly
    that); do not let such a layer pass as a plain gradient. (The graph path refuses them
    by itself.)
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 08.3 `lrp` (lesson 08): write it in interp_lib/lrp.py")


# --------------------------------------------------------------------------- helpers


def stabilize(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``z + eps * sign(z)`` with ``sign(0) = +1``: a denominator that is never zero."""
    e = torch.tensor(eps, dtype=z.dtype, device=z.device)
    return z + torch.where(z >= 0, e, -e)
