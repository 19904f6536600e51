"""Lesson 08's LRP infrastructure, zennit style: rules and composites.

A *rule* (:class:`Rule` and its subclasses :class:`Zero`, :class:`Epsilon`,
:class:`Gamma`, :class:`ZPlus`, :class:`WSquare`, :class:`ZBox`, :class:`Norm`) knows how
to send relevance through one layer; the layer rules call the exercises
:func:`interp_lib.lrp.lrp_layer` and :func:`interp_lib.lrp.zb_rule`, so this module
imports the worksheet (never the other way round), and looks them up at call time
(``lrp.lrp_layer``: a worksheet reloaded by ``%autoreload`` or a student's module loaded by
the grader is the one called). A *composite* (:class:`Composite`;
ready-made: :class:`EpsilonPlus`, :class:`EpsilonGammaBox`, :class:`LayerGroups`,
:class:`Uniform`) maps the layers of a network to rules. The rule forms are zennit 0.5.1's,
so results can be checked against it. Also here: :func:`as_sequential` and
:func:`is_sequential` (what the sequential walk of :func:`interp_lib.lrp.lrp` takes) and
:func:`check_supported` (its refusal of layers no rule handles).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import torch
from torch import nn

from . import lrp
from ._checks.lrp import PARAM_LAYERS, check_bound
from .activations import call_scope
from .exercises import nonnegative

__all__ = [
    "Rule",
    "Zero",
    "Epsilon",
    "Gamma",
    "ZPlus",
    "WSquare",
    "ZBox",
    "Norm",
    "Composite",
    "EpsilonPlus",
    "EpsilonGammaBox",
    "LayerGroups",
    "Uniform",
    "as_sequential",
    "is_sequential",
    "check_supported",
    "PARAM_LAYERS",
    "PASS_LAYERS",
    "GRADIENT_LAYERS",
]

AVG_POOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
PASS_LAYERS = (nn.ReLU,)  # relevance passes through unchanged
GRADIENT_LAYERS = (
    nn.MaxPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Dropout,
    nn.Identity,
)  # the plain gradient


# --------------------------------------------------------------------------- rules


class Rule:
    """How relevance goes through one layer: ``rule.relevance(layer, a, R) -> R_in``."""

    name = "rule"

    def relevance(self, layer: nn.Module, a: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _LayerRule(Rule):
    rule = "0"

    def __init__(self, stabilizer: float = 1e-6, zero_bias: bool = False):
        nonnegative(stabilizer, "stabilizer", {})
        self.stabilizer, self.zero_bias = stabilizer, zero_bias

    def _options(self) -> dict:
        return {"stabilizer": self.stabilizer, "zero_bias": self.zero_bias}

    def relevance(self, layer, a, relevance):
        return lrp.lrp_layer(layer, a, relevance, self.rule, **self._options())


class Zero(_LayerRule):
    """LRP-0 (zennit: ``Epsilon(epsilon=stabilizer)``)."""

    rule = name = "0"


class Epsilon(_LayerRule):
    """LRP-epsilon (zennit: ``Epsilon(epsilon)``)."""

    rule = name = "epsilon"

    def __init__(self, epsilon: float = 1e-6, zero_bias: bool = False):
        nonnegative(epsilon, "epsilon", {})
        super().__init__(1e-6, zero_bias)
        self.epsilon = epsilon

    def _options(self):
        return {"epsilon": self.epsilon, "zero_bias": self.zero_bias}


class Gamma(_LayerRule):
    """LRP-gamma, zennit's generalised form (zennit: ``Gamma(gamma)``)."""

    rule = name = "gamma"

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6, zero_bias: bool = False):
        nonnegative(gamma, "gamma", {})
        super().__init__(stabilizer, zero_bias)
        self.gamma = gamma

    def _options(self):
        return {**super()._options(), "gamma": self.gamma}


class ZPlus(_LayerRule):
    """z+ in zennit's form, positive contributions ``a^+ w^+ + a^- w^-`` (zennit: ``ZPlus``)."""

    rule = name = "zplus"


class WSquare(_LayerRule):
    """The w^2 rule (zennit: ``WSquare``)."""

    rule = name = "wsquare"


class ZBox(Rule):
    """The z^B rule for inputs in a box ``low <= x <= high`` (zennit: ``ZBox(low, high)``)."""

    name = "zb"

    def __init__(self, low, high, stabilizer: float = 1e-6):
        for value, label in ((low, "low"), (high, "high")):
            check_bound(value, label, {})
        self.low, self.high, self.stabilizer = low, high, stabilizer

    def relevance(self, layer, a, relevance):
        return lrp.zb_rule(layer, a, relevance, self.low, self.high, stabilizer=self.stabilizer)


class Norm(Rule):
    """Average pooling: ``R_in = a * pool^T(R / stab(pool(a)))`` (zennit: ``Norm``)."""

    name = "norm"

    def __init__(self, stabilizer: float = 1e-6):
        self.stabilizer = stabilizer

    def relevance(self, layer, a, relevance):
        with torch.enable_grad():
            a = a.detach().requires_grad_(True)
            z = layer(a)
            (c,) = torch.autograd.grad(z, a, relevance / lrp.stabilize(z.detach(), self.stabilizer))
        return (a * c).detach()


# --------------------------------------------------------------------------- composites


class Composite:
    """Maps the layers of a sequential network to rules (zennit's LayerMapComposite).

    ``layer_map``: ``[(types, rule), ...]``, the first match wins; ``first_map``: the
    same for the first layer with parameters (e.g. z^B at the pixels); ``name_map``:
    ``{index or layer name: rule}`` overriding both. Average pooling gets :class:`Norm`
    unless mapped otherwise. ``rules(layers)`` returns one rule (or None) per layer.
    """

    def __init__(self, layer_map: Iterable = (), first_map: Iterable = (), name_map: dict | None = None):
        self.layer_map = list(layer_map) + [(AVG_POOLS, Norm())]
        self.first_map = list(first_map)
        self.name_map = dict(name_map or {})
        for _, rule in self.layer_map + self.first_map + list(self.name_map.items()):
            if not isinstance(rule, Rule):
                raise TypeError(f"a composite maps layers to Rule objects, got {type(rule).__name__}")

    def rules(self, layers: nn.Sequential) -> list[Rule | None]:
        names = list(layers._modules)
        first = next((i for i, m in enumerate(layers) if isinstance(m, PARAM_LAYERS)), None)
        out = []
        for i, (name, module) in enumerate(zip(names, layers)):
            rule = None
            if i in self.name_map or name in self.name_map:
                rule = self.name_map.get(i, self.name_map.get(name))
            if rule is None and i == first:
                rule = next((r for types, r in self.first_map if isinstance(module, types)), None)
            if rule is None:
                rule = next((r for types, r in self.layer_map if isinstance(module, types)), None)
            out.append(rule)
        return out

    def describe(self, layers: nn.Sequential) -> dict[str, str]:
        """``{layer name: rule}`` for the layers that get a rule."""
        return {
            name: repr(rule) for name, rule in zip(layers._modules, self.rules(layers)) if rule is not None
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EpsilonPlus(Composite):
    """z+ for conv layers, epsilon for dense layers (zennit's ``EpsilonPlus``)."""

    def __init__(self, epsilon: float = 1e-6, zero_bias: bool = False):
        super().__init__(
            [(nn.Conv2d, ZPlus(zero_bias=zero_bias)), (nn.Linear, Epsilon(epsilon, zero_bias=zero_bias))]
        )


class EpsilonGammaBox(Composite):
    """z^B for the first conv layer, gamma for the other conv layers, epsilon for dense
    layers (zennit's ``EpsilonGammaBox(low, high)``)."""

    def __init__(self, low, high, epsilon: float = 1e-6, gamma: float = 0.25, zero_bias: bool = False):
        super().__init__(
            [
                (nn.Conv2d, Gamma(gamma, zero_bias=zero_bias)),
                (nn.Linear, Epsilon(epsilon, zero_bias=zero_bias)),
            ],
            first_map=[(nn.Conv2d, ZBox(low, high))],
        )


class Uniform(Composite):
    """The same rule for every Linear and Conv2d layer (e.g. ``Uniform(Zero())``)."""

    def __init__(self, rule: Rule):
        super().__init__([(PARAM_LAYERS, rule)])


class LayerGroups(Composite):
    """The recommended composite (Montavon et al. 2019) by layer group.

    ``input``: the first layer (z^B, or any rule); ``lower``: the other conv layers;
    ``middle``: the dense layers but the last; ``upper``: the last dense layer.
    """

    def __init__(
        self,
        input: Rule | None = None,
        lower: Rule | None = None,
        middle: Rule | None = None,
        upper: Rule | None = None,
    ):
        super().__init__()
        self.groups = {
            "input": input or ZBox(0.0, 1.0),
            "lower": lower or Gamma(0.25),
            "middle": middle or Epsilon(0.25),
            "upper": upper or Zero(),
        }

    def group_of(self, layers: nn.Sequential) -> list[str | None]:
        params = [i for i, m in enumerate(layers) if isinstance(m, PARAM_LAYERS)]
        linears = [i for i in params if isinstance(layers[i], nn.Linear)]
        out = []
        for i, m in enumerate(layers):
            if i not in params:
                out.append(None)
            elif i == params[0]:
                out.append("input")
            elif linears and i == linears[-1]:
                out.append("upper")
            elif isinstance(m, nn.Conv2d):
                out.append("lower")
            else:
                out.append("middle")
        return out

    def rules(self, layers):
        base = super().rules(layers)
        return [self.groups[g] if g else r for g, r in zip(self.group_of(layers), base)]


# --------------------------------------------------------------------------- helpers


def as_sequential(model: nn.Module) -> nn.Sequential:
    """``model`` as one flat ``nn.Sequential`` sharing its layers (nothing is copied).

    Nested ``nn.Sequential`` are flattened; a torchvision VGG becomes
    ``features..., avgpool, Flatten, classifier...``. Anything else is a ``TypeError``.
    """
    if type(model).__name__ == "VGG" and hasattr(model, "features"):
        parts = collections.OrderedDict(
            [
                ("features", model.features),
                ("avgpool", model.avgpool),
                ("flatten", nn.Flatten()),
                ("classifier", model.classifier),
            ]
        )
        return as_sequential(nn.Sequential(parts))
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"`model` must be an nn.Sequential (or a torchvision VGG), got {type(model).__name__}; "
            "LRP here walks the layers in order"
        )
    flat = collections.OrderedDict()
    for name, module in model.named_children():
        if isinstance(module, nn.Sequential) or type(module).__name__ == "VGG":
            for sub, m in as_sequential(module).named_children():
                flat[f"{name}_{sub}"] = m
        else:
            flat[name] = module
    return nn.Sequential(flat)


def is_sequential(model: nn.Module) -> bool:
    """True for what the sequential walk of :func:`interp_lib.lrp.lrp` handles: an
    ``nn.Sequential`` (nested ones included) or a torchvision VGG (:func:`as_sequential`)."""
    return isinstance(model, nn.Sequential) or (type(model).__name__ == "VGG" and hasattr(model, "features"))


def check_supported(layers: nn.Sequential, rules: list, graph: torch.fx.GraphModule | None = None) -> None:
    """Raise a clear error for layers LRP here cannot handle.

    ``graph`` (the traced model, for :func:`interp_lib.lrp_graph.lrp_graph`) lets a BatchNorm's error name what
    its input really is; without it the previous layer of ``layers`` counts as the input.
    """
    names = list(layers._modules)
    paths = {id(m): path for path, m in graph.named_modules()} if graph is not None else {}
    for i, ((name, module), rule) in enumerate(zip(layers.named_children(), rules)):
        name = paths.get(id(module), name)  # (the module's own path in a traced graph)
        if rule is None and isinstance(module, PARAM_LAYERS):
            raise ValueError(f"layer {name!r} ({type(module).__name__}) has no rule in the composite")
        if rule is None and isinstance(module, nn.modules.batchnorm._BatchNorm):
            previous = (names[i - 1], layers[i - 1]) if i else None
            raise ValueError(
                f"`model` layer {name!r} ({type(module).__name__}) is not supported by lrp: "
                f"{_batchnorm_cause(module, previous, graph)}"
            )
        if rule is None and not isinstance(module, PASS_LAYERS + GRADIENT_LAYERS):
            raise ValueError(f"`model` layer {name!r} ({type(module).__name__}) is not supported by lrp")


def _batchnorm_cause(bn: nn.Module, previous, graph) -> str:
    """Why a BatchNorm is still in the network, for :func:`check_supported`'s error."""
    merge = (
        "it normalises the output of {} and can be merged into it: "
        "`model = interp_lib.models.merge_batchnorm(model)` first"
    )
    alone = (
        "; a BatchNorm that stays in the network has no LRP rule here (merging it is the only "
        "sound treatment, and zennit's canonizers cannot merge it either)"
    )
    if graph is None:
        if previous is not None and isinstance(previous[1], PARAM_LAYERS):
            return merge.format(f"the {type(previous[1]).__name__} {previous[0]!r}")
        if previous is None:
            return "it normalises the model's input, which no layer precedes, so it cannot be merged" + alone
        return (
            f"it follows {previous[0]!r} ({type(previous[1]).__name__}), not a Conv2d or Linear layer, "
            "so it cannot be merged into a preceding layer (pre-activation BatchNorm)" + alone
        )
    modules = dict(graph.named_modules())
    node = next(n for n in graph.graph.nodes if n.op == "call_module" and modules[n.target] is bn)
    src = node.args[0] if node.args else None
    op, target = getattr(src, "op", None), getattr(src, "target", None)
    if op == "call_module" and isinstance(modules[target], PARAM_LAYERS):
        if len(src.users) == 1:
            return merge.format(f"the {type(modules[target]).__name__} {target!r}")
        return (
            f"its input, the output of {target!r}, is also used elsewhere "
            f"({', '.join(u.name for u in src.users if u is not node)}), so merging the BatchNorm into "
            f"{target!r} would change those uses" + alone
        )
    if op == "call_function" and target is torch.cat:
        return (
            "its input is a concatenation (torch.cat in `" + call_scope(src) + "`, as in DenseNet's dense "
            "layers), which no single Conv2d or Linear layer produces, so it cannot be merged into a "
            "preceding layer" + alone
        )
    if op == "placeholder":
        return "it normalises the model's input, which no layer precedes, so it cannot be merged" + alone
    what = (
        f"{target!r} ({type(modules[target]).__name__})"
        if op == "call_module"
        else f"a {getattr(target, '__name__', target)}() call"
    )
    return (
        f"its input is the output of {what}, not of a Conv2d or Linear layer, so it cannot be merged "
        "into a preceding layer (pre-activation BatchNorm)" + alone
    )
