"""Lesson 08 - Reverse mapping through relevance: layer-wise relevance propagation (LRP).

Exercises: :func:`lrp_layer` (one dense or conv layer, the rule as a parameter),
:func:`zb_rule` (the z^B rule for the pixel layer) and :func:`lrp` (a whole
``nn.Sequential`` network under a composite; other architectures -- ResNet, GoogLeNet --
go through the infrastructure :func:`lrp_graph`).

Infrastructure (zennit style, small composable objects): a *rule* (:class:`Rule` and its
subclasses :class:`Zero`, :class:`Epsilon`, :class:`Gamma`, :class:`ZPlus`,
:class:`WSquare`, :class:`ZBox`, :class:`Norm`) knows how to send relevance through one
layer; a *composite* (:class:`Composite`; ready-made: :class:`EpsilonPlus`,
:class:`EpsilonGammaBox`, :class:`LayerGroups`, :class:`Uniform`) maps the layers of a
network to rules. The rule forms are zennit 0.5.1's, so results can be checked against it.

Every denominator is stabilised as zennit does it: ``stabilize(z) = z + s * sign(z)``
with ``sign(0) = +1`` and ``s = 1e-6`` unless told otherwise.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import torch
from torch import nn

from .activations import call_scope, check_activations
from .exercises import _check_model, exercise, nonnegative, one_of

__all__ = [
    "stabilize",
    "lrp_layer",
    "zb_rule",
    "lrp",
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
    "layer_relevances",
    "RULES",
]

RULES = ("0", "epsilon", "gamma", "zplus", "wsquare")
PARAM_LAYERS = (nn.Linear, nn.Conv2d)
AVG_POOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
PASS_LAYERS = (nn.ReLU,)
GRADIENT_LAYERS = (nn.MaxPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)


def stabilize(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``z + eps * sign(z)`` with ``sign(0) = +1``: a denominator that is never zero."""
    e = torch.tensor(eps, dtype=z.dtype, device=z.device)
    return torch.where(z >= 0, e, -e).add_(z)  # (= z + eps sign(z), one temporary fewer)


# --------------------------------------------------------------------------- checks


def _check_layer(value, name, _args):
    if not isinstance(value, PARAM_LAYERS):
        raise TypeError(f"`{name}` must be an nn.Linear or nn.Conv2d layer, got {type(value).__name__}")


def _check_activation(value, name, args):
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


def _check_relevance(value, name, args):
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


def _check_bound(value, name, args):
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


def _check_lrp_model(value, name, args):
    """An nn.Module whose only nonlinearities are ReLUs (any form) and max-pooling."""
    _check_model(value, name, args)
    check_activations(value, "lrp", rules=True)


def _check_composite(value, name, _args):
    if value is not None and not isinstance(value, Composite):
        raise TypeError(
            f"`{name}` must be an interp_lib.lrp.Composite (e.g. EpsilonPlus()) or None, "
            f"got {type(value).__name__}"
        )


# --------------------------------------------------------------------------- exercises


@exercise(
    "08.1",
    points=3,
    checks={
        "layer": _check_layer,
        "a": _check_activation,
        "relevance": _check_relevance,
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
    ``torch.no_grad()``, and :func:`lrp_graph` calls it from inside a backward pass (an
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
        "layer": _check_layer,
        "a": _check_activation,
        "relevance": _check_relevance,
        "low": _check_bound,
        "high": _check_bound,
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


@exercise(
    "08.3", points=3, attribution=True, checks={"model": _check_lrp_model, "composite": _check_composite}
)
def lrp(model: nn.Module, x: torch.Tensor, target=None, composite: Composite | None = None) -> torch.Tensor:
    """Layer-wise relevance propagation through a sequential network under a composite.

    Start with ``R = one_hot(target) * logits`` at the output (the target logit is the
    relevance to distribute; ``target=None`` takes the predicted class) and walk the
    layers backwards. Layer by layer (:func:`layer_relevances` lists them):

    * a layer with a rule (``composite.rules(layers)[i]`` is not None):
      ``R = rule.relevance(layer, a, R)`` (the rule calls :func:`lrp_layer` /
      :func:`zb_rule`); ``a`` is that layer's input from the forward pass;
    * ``nn.ReLU``: relevance passes through unchanged;
    * max-pooling, ``nn.Flatten``, ``nn.Dropout`` (eval): the plain gradient,
      ``R = autograd.grad(layer(a), a, grad_outputs=R)`` -- for max-pooling that is
      "winner takes all" (each window's relevance goes to its maximum).

    Any other model (a ResNet with residual additions, a GoogLeNet with concatenations, a
    ``torch.fx.GraphModule``; :func:`is_sequential` tells) is not walked by hand: return
    ``lrp_graph(model, x, target, composite)``, the infrastructure below that sends the same
    rules through any traceable graph.

    Args:
        model: an ``nn.Sequential`` (nested ones are flattened) of Linear, Conv2d, ReLU,
            max/avg-pool, Flatten and Dropout layers (see :func:`as_sequential`), or any
            model for :func:`lrp_graph` (BatchNorm merged first:
            :func:`interp_lib.models.merge_batchnorm`). The wrapper refuses models with
            other nonlinearities (ReLU6, SiLU, GELU, sigmoid gates...), naming the layer.
        x: images ``(N, C, H, W)``.
        target: an int or an int64 tensor ``(N,)``. (A caller's None, the default, means the
            predicted class; the wrapper resolves it to ``model(x).argmax(1)`` before your
            code runs.)
        composite: which rule each layer uses; default ``EpsilonPlus()`` (z+ for conv
            layers, epsilon for dense layers).

    Returns:
        The input relevance ``R`` shaped like ``x`` (detached). With conserving rules and
        a bias-free model ``R[n].sum()`` equals the target logit.

    Hint: run the forward pass under ``torch.no_grad()`` keeping every layer's input
    in a list; never call an in-place ReLU module (use ``torch.relu``).

    Callers rely on a refusal, never a silently wrong map, for what the walk cannot
    handle: a BatchNorm left in the network, a Linear/Conv2d the composite gives no rule,
    any other layer without a rule that is not listed above. Raise ``ValueError`` naming
    the layer before the walk (``check_supported(layers, rules)`` does exactly that); do
    not let such a layer pass as a plain gradient.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 08.3 `lrp` (lesson 08): write it in interp_lib/lrp.py")


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
        return lrp_layer(layer, a, relevance, self.rule, **self._options())


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
            _check_bound(value, label, {})
        self.low, self.high, self.stabilizer = low, high, stabilizer

    def relevance(self, layer, a, relevance):
        return zb_rule(layer, a, relevance, self.low, self.high, stabilizer=self.stabilizer)


class Norm(Rule):
    """Average pooling: ``R_in = a * pool^T(R / stab(pool(a)))`` (zennit: ``Norm``)."""

    name = "norm"

    def __init__(self, stabilizer: float = 1e-6):
        self.stabilizer = stabilizer

    def relevance(self, layer, a, relevance):
        with torch.enable_grad():
            a = a.detach().requires_grad_(True)
            z = layer(a)
            (c,) = torch.autograd.grad(z, a, relevance / stabilize(z.detach(), self.stabilizer))
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


def check_supported(layers: nn.Sequential, rules: list, graph: torch.fx.GraphModule | None = None) -> None:
    """Raise a clear error for layers LRP here cannot handle.

    ``graph`` (the traced model, for :func:`lrp_graph`) lets a BatchNorm's error name what
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


def layer_relevances(
    model: nn.Module, x: torch.Tensor, target=None, composite: Composite | None = None
) -> dict[str, torch.Tensor]:
    """Relevance per sample entering each layer from above, ``{layer name: R (N,)}``
    (the sum over the layer's output), plus ``'input'``: what the explorer plots.

    Same walk as :func:`lrp` (reference form, written out here so the explorer works
    before the exercise is done), returning the per-layer sums.
    """
    from .attacks import class_scores

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
# The sequential walk above cannot see a residual addition or a concatenation. For any model
# torch.fx can trace, ``lrp_graph`` re-runs the model's own graph with three substitutions whose
# backward pass *is* the relevance pass (zennit's idea: the "gradient" that autograd carries
# backwards is the relevance itself):
#
# * a Linear/Conv2d (and average pooling) with a rule: forward unchanged, backward
#   ``R -> rule.relevance(layer, a, R)`` (the same rule objects as the sequential walk);
# * every ReLU (module, functional or in place): forward ``relu``, backward passes R unchanged;
# * an addition of two tensors of the same shape (ResNet's ``out += identity``): forward
#   ``a + b``, backward splits R in proportion to the summands,
#   ``R_a = a R / stab(a + b)``, ``R_b = b R / stab(a + b)`` (zennit's Sum module with its
#   Norm rule, inserted by its ResNet canonizer).
#
# Everything else (max-pooling, flatten, concatenation, dropout, identity) keeps its
# gradient: a concatenation hands each branch its own slice, and a tensor used by several
# branches sums what they send back, so relevance is conserved. The model is not modified:
# nothing is registered on it, only its graph is re-interpreted.

import operator  # noqa: E402

import torch.fx  # noqa: E402

__all__ += ["lrp_graph", "is_sequential", "graph_layers"]

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


def is_sequential(model: nn.Module) -> bool:
    """True for what the sequential walk of :func:`lrp` handles: an ``nn.Sequential``
    (nested ones included) or a torchvision VGG (:func:`as_sequential`)."""
    return isinstance(model, nn.Sequential) or (type(model).__name__ == "VGG" and hasattr(model, "features"))


def _graph_module(model: nn.Module):
    import torch.fx

    if isinstance(model, torch.fx.GraphModule):
        return model
    from .models import _trace

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
        from .models import _functional_relus

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
    from .attacks import class_scores
    from .exercises import check_model_output

    _check_composite(composite, "composite", {})
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
