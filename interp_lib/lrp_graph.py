"""Lesson 08's LRP infrastructure: whole networks.

:func:`layer_relevances` walks a sequential network as :func:`interp_lib.lrp.lrp` does
and returns the relevance summed per layer (what the lesson's explorer plots).
:func:`lrp_graph` sends the same rules (:mod:`interp_lib.lrp_rules`) through any model
``torch.fx`` can trace (ResNet, GoogLeNet); :func:`interp_lib.lrp.lrp` hands it every
model that is not sequential.

The sequential walk cannot see a residual addition or a concatenation. ``lrp_graph``
re-runs the model's own graph with three substitutions whose backward pass *is* the
relevance pass (zennit's idea: the "gradient" that autograd carries backwards is the
relevance itself):

* a Linear/Conv2d (and average pooling) with a rule: forward unchanged, backward
  ``R -> rule.relevance(layer, a, R)`` (the same rule objects as the sequential walk);
* every ReLU (module, functional or in place): forward ``relu``, backward passes R unchanged;
* an addition of two tensors of the same shape (ResNet's ``out += identity``): forward
  ``a + b``, backward splits R in proportion to the summands,
  ``R_a = a R / stab(a + b)``, ``R_b = b R / stab(a + b)`` (zennit's Sum module with its
  Norm rule, inserted by its ResNet canonizer).

Everything else (max-pooling, flatten, concatenation, dropout, identity) keeps its
gradient: a concatenation hands each branch its own slice, and a tensor used by several
branches sums what they send back, so relevance is conserved. The model is not modified:
nothing is registered on it, only its graph is re-interpreted.
"""

from __future__ import annotations

import collections
import operator

import torch
import torch.fx
from torch import nn

from ._checks.lrp import check_composite
from .activations import check_activations
from .attacks import class_scores
from .exercises import check_model_output
from .lrp import stabilize
from .lrp_rules import PASS_LAYERS, Composite, EpsilonPlus, as_sequential, check_supported
from .models import _functional_relus, _trace

__all__ = ["layer_relevances", "lrp_graph", "graph_layers"]


def layer_relevances(
    model: nn.Module, x: torch.Tensor, target=None, composite: Composite | None = None
) -> dict[str, torch.Tensor]:
    """Relevance per sample entering each layer from above, ``{layer name: R (N,)}``
    (the sum over the layer's output), plus ``'input'``: what the explorer plots.

    Same walk as :func:`interp_lib.lrp.lrp` (reference form, written out here so the explorer works
    before the exercise is done), returning the per-layer sums.
    """
    layers = as_sequential(model)
    composite = composite or EpsilonPlus()
    rules = composite.rules(layers)
    check_supported(layers, rules)
    names = list(layers._modules)
    inputs = []
    with torch.no_grad():
        a = x
        for layer in layers:
            inputs.append(a)
            a = torch.relu(a) if isinstance(layer, nn.ReLU) else layer(a)
    target = a.argmax(1) if target is None else target
    index = torch.as_tensor(target).expand(len(a))
    R = torch.zeros_like(a).scatter(1, index[:, None], class_scores(a, index)[:, None])
    sums = {}
    for name, layer, a_in, rule in reversed(list(zip(names, layers, inputs, rules))):
        sums[name] = R.flatten(1).sum(1)
        if rule is not None:
            R = rule.relevance(layer, a_in, R)
        elif not isinstance(layer, PASS_LAYERS):
            with torch.enable_grad():
                leaf = a_in.detach().requires_grad_(True)
                (R,) = torch.autograd.grad(layer(leaf), leaf, R)
    sums["input"] = R.flatten(1).sum(1)
    return dict(reversed(list(sums.items())))


# --------------------------------------------------------------------------- any graph (ResNet, GoogLeNet)


_ADDS = (operator.add, operator.iadd, torch.add)


class _RuleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, layer, rule):
        ctx.layer, ctx.rule = layer, rule
        ctx.save_for_backward(a)
        return layer(a)

    @staticmethod
    def backward(ctx, relevance):
        (a,) = ctx.saved_tensors
        return ctx.rule.relevance(ctx.layer, a, relevance), None, None


class _PassFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        return torch.relu(a)

    @staticmethod
    def backward(ctx, relevance):
        return relevance


class _SumFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, stabilizer):
        z = a + b
        ctx.save_for_backward(a, b, z)
        ctx.stabilizer = stabilizer
        return z

    @staticmethod
    def backward(ctx, relevance):
        a, b, z = ctx.saved_tensors
        s = relevance / stabilize(z, ctx.stabilizer)
        return a * s, b * s, None


def _graph_module(model: nn.Module):
    if isinstance(model, torch.fx.GraphModule):
        return model
    return _trace(model)


def graph_layers(model: nn.Module) -> nn.Sequential:
    """The modules ``model``'s traced graph calls, in the order of the forward pass, as an
    ``nn.Sequential`` (names: the module paths with ``.`` -> ``_``; shared, not copied):
    what a :class:`Composite` maps to rules for :func:`lrp_graph`."""
    gm = _graph_module(model)
    return _graph_layers(gm)[0]


def _graph_layers(gm):
    modules = dict(gm.named_modules())
    seen = collections.OrderedDict()
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target not in seen:
            seen[node.target] = modules[node.target]
    layers = nn.Sequential(collections.OrderedDict((t.replace(".", "_"), m) for t, m in seen.items()))
    return layers, list(seen)


class _LRPInterpreter(torch.fx.Interpreter):
    """Runs a traced graph with the substitutions described above."""

    def __init__(self, gm, rules: dict, stabilizer: float = 1e-6):
        super().__init__(gm)
        self.rules, self.stabilizer = rules, stabilizer

    def _sum(self, args, kwargs):
        if (
            len(args) == 2
            and not kwargs
            and all(isinstance(v, torch.Tensor) for v in args)
            and args[0].shape == args[1].shape
        ):
            return _SumFunction.apply(args[0], args[1], self.stabilizer)
        return None

    def call_module(self, target, args, kwargs):
        module = self.fetch_attr(target)
        rule = self.rules.get(target)
        if rule is not None:
            return _RuleFunction.apply(args[0], module, rule)
        if isinstance(module, nn.ReLU):
            return _PassFunction.apply(args[0])
        return super().call_module(target, args, kwargs)

    def call_function(self, target, args, kwargs):
        if target in _ADDS:
            out = self._sum(args, kwargs)
            if out is not None:
                return out
        if target in _functional_relus():
            return _PassFunction.apply(args[0])
        return super().call_function(target, args, kwargs)

    def call_method(self, target, args, kwargs):
        if target in ("relu", "relu_"):
            return _PassFunction.apply(args[0])
        if target in ("add", "add_"):
            out = self._sum(args, kwargs)
            if out is not None:
                return out
        return super().call_method(target, args, kwargs)


def lrp_graph(
    model: nn.Module,
    x: torch.Tensor,
    target=None,
    composite: Composite | None = None,
    *,
    sum_stabilizer: float = 1e-6,
) -> torch.Tensor:
    """LRP through any model ``torch.fx`` can trace (ResNet, GoogLeNet, a converted model...).

    The same rules as :func:`lrp` (``composite.rules(graph_layers(model))``: the first
    layer with parameters is the first one the forward pass calls), ReLUs pass relevance
    unchanged, a residual addition ``a + b`` splits it as ``a R / stab(a + b)`` and
    ``b R / stab(a + b)``, concatenations and max-pooling use the gradient. BatchNorm must be
    merged first (:func:`interp_lib.models.merge_batchnorm`); a BatchNorm that cannot be
    merged (after a concatenation, pre-activation) and every nonlinearity other than ReLU
    and max-pooling are refused (``ValueError`` naming the layer). ``model`` is not modified.
    Returns the input relevance shaped like ``x`` (detached); with conserving rules and no
    biases ``R[n].sum()`` equals the target logit.
    """
    check_composite(composite, "composite", {})
    gm = _graph_module(model)
    check_activations(gm, "lrp", rules=True)
    layers, targets = _graph_layers(gm)
    composite = composite or EpsilonPlus()
    rule_list = composite.rules(layers)
    check_supported(layers, rule_list, gm)
    rules = {t: r for t, r in zip(targets, rule_list) if r is not None}
    leaf = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = _LRPInterpreter(gm, rules, sum_stabilizer).run(leaf)
        check_model_output(out)
        logits = out.detach()
        target = logits.argmax(1) if target is None else target
        index = torch.as_tensor(target).expand(len(logits))
        R = torch.zeros_like(logits).scatter(1, index[:, None], class_scores(logits, index)[:, None])
        (relevance,) = torch.autograd.grad(out, leaf, R)
    return relevance.detach()
