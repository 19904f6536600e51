"""Which nonlinearities a hook- or rule-based method can handle: one refusal check for all.

Guided backprop and the deconvnet (lesson 07) change the backward pass at every ReLU; LRP
(lesson 08) sends relevance through every ReLU unchanged. At any *other* nonlinearity --
ReLU6, Hardtanh, LeakyReLU, ELU, SiLU/Swish, Hardswish, GELU, Softplus, a sigmoid gate --
these methods would keep the plain gradient without a word, and the result would be
neither the method nor the gradient (captum's GuidedBackprop on a MobileNet does exactly
that). So every such method calls :func:`check_activations` first, which raises a
``ValueError`` naming each layer or call it cannot handle. Gradient methods (saliency,
input x gradient, SmoothGrad, integrated gradients, Grad-CAM) and occlusion handle every
nonlinearity and need no check.

How the check finds them (functional calls included):

1. every sub-module that is a ``torch.nn`` activation (a class of
   ``torch.nn.modules.activation``: ``nn.ReLU6``, ``nn.SiLU``, ``nn.GELU``, ``nn.Sigmoid``,
   ...) other than ``nn.ReLU``, found by its type;
2. every call the forward pass makes, read from the model's ``torch.fx`` graph (symbolic
   tracing records calls inside custom modules as well, e.g. a ``Swish`` module whose
   forward is ``x * torch.sigmoid(x)``): calls of nonlinear functions or tensor methods
   (``F.relu6``, ``F.silu``, ``torch.sigmoid``, ``x.clamp(0, 6)``... see
   :data:`NONLINEAR_CALLS`). For rule-based methods (LRP) also products of two
   activations (squeeze-and-excitation gates) and functional layers that no rule can see
   (``F.layer_norm``, ``F.linear``, ``F.conv2d``...: a ConvNeXt's ``LayerNorm2d``).

A model ``torch.fx`` cannot trace (data-dependent control flow) is refused with a
``TypeError``: what it calls cannot be checked. An ``nn.Sequential`` of ``torch.nn``
layers needs no trace (its forward calls its children in order).

ReLUs themselves: LRP's graph path handles functional, reused and in-place ReLUs; a
hook-based method does not, and :func:`interp_lib.models.check_relus` (called from here
for ``rules=False``) refuses them with the fix, :func:`interp_lib.models.convert_relus`.
"""

from __future__ import annotations

import operator
import weakref

import torch
import torch.fx
from torch import nn

__all__ = ["check_activations", "activation_problems", "call_scope", "ACTIVATION_MODULES", "NONLINEAR_CALLS"]

# Every activation class torch.nn defines (ReLU6 is a Hardtanh, so isinstance covers both).
ACTIVATION_MODULES: tuple[type, ...] = tuple(
    c
    for c in vars(nn.modules.activation).values()
    if isinstance(c, type) and issubclass(c, nn.Module) and c.__module__ == nn.modules.activation.__name__
)

# Names of nonlinear functions and tensor methods (torch.*, torch.nn.functional.*, Tensor.*).
NONLINEAR_CALLS = frozenset(
    """
    relu6 hardtanh hardtanh_ leaky_relu leaky_relu_ elu elu_ selu selu_ celu celu_ rrelu rrelu_
    prelu silu mish hardswish hardsigmoid gelu softplus softsign sigmoid sigmoid_ tanh tanh_
    logsigmoid threshold threshold_ glu softmax log_softmax softmin hardshrink softshrink
    tanhshrink clamp clamp_ clip clip_ clamp_min clamp_min_ clamp_max clamp_max_ maximum minimum
""".split()
)
RELU_CALLS = frozenset({"relu", "relu_"})

# Functional layers and normalisations: an LRP rule is attached to a module, these have none.
FUNCTIONAL_LAYERS = frozenset(
    """
    linear bilinear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
    layer_norm group_norm batch_norm instance_norm local_response_norm normalize
    matmul mm bmm einsum
""".split()
)
_PRODUCTS = frozenset({operator.mul, operator.imul, torch.mul})

_CACHE: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def _is_plain_sequential(model: nn.Module) -> bool:
    """An nn.Sequential whose children are torch.nn leaves: its forward calls them in order."""
    return isinstance(model, nn.Sequential) and all(
        type(m).__module__.startswith("torch.nn.modules") and not m._modules for m in model.children()
    )


def call_scope(node: torch.fx.Node) -> str:
    """The name of the module whose forward made the call ``node`` of a traced graph."""
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else "<top>"


def _call_name(node) -> str:
    return node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))


def _is_activation_value(arg) -> bool:
    """An fx argument that is computed from the input (not a parameter, not a constant)."""
    return isinstance(arg, torch.fx.Node) and arg.op not in ("get_attr",)


def activation_problems(model: nn.Module, method: str = "this method", *, rules: bool = False) -> list[str]:
    """Descriptions of every nonlinearity of ``model`` the method cannot handle (see the
    module docstring); ``rules=True`` for a rule-based method (LRP), which handles
    functional ReLUs but refuses products of activations and functional layers."""
    problems = [
        f"`{name}` (nn.{type(m).__name__})"
        for name, m in model.named_modules()
        if isinstance(m, ACTIVATION_MODULES) and not isinstance(m, nn.ReLU)
    ]
    if _is_plain_sequential(model):
        return problems
    try:
        graph = (
            model.graph if isinstance(model, torch.fx.GraphModule) else torch.fx.symbolic_trace(model).graph
        )
    except Exception as err:  # noqa: BLE001 - any tracing failure gets the same refusal
        raise TypeError(
            f"{method} cannot check `model` ({type(model).__name__}): torch.fx cannot trace it "
            f"({type(err).__name__}: {err}), so its functional nonlinearities cannot be found. "
            "Use a model without data-dependent control flow in its forward."
        ) from err
    for node in graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        name = _call_name(node)
        call = f"{name}()" if node.op == "call_function" else f"tensor.{name}()"
        if name in NONLINEAR_CALLS:
            problems.append(f"a functional {call} call in `{call_scope(node)}`")
        elif rules and name in FUNCTIONAL_LAYERS:
            problems.append(
                f"a functional layer {call} in `{call_scope(node)}` (not a module: it gets no rule)"
            )
        elif (
            rules
            and (node.target in _PRODUCTS or (node.op == "call_method" and name in ("mul", "mul_")))
            and sum(_is_activation_value(a) for a in node.args[:2]) == 2
        ):
            problems.append(
                f"a product of two activations (`{node.name}`, e.g. a gate) in `{call_scope(node)}`"
            )
    return problems


def check_activations(model: nn.Module, method: str, *, rules: bool = False) -> None:
    """Refuse a model with nonlinearities ``method`` cannot handle: ``ValueError`` naming them.

    ``method`` names the caller in the message (``"guided backprop"``, ``"lrp"``).
    ``rules=False`` (hook-based methods: guided backprop, deconvnet) handles only
    ``nn.ReLU`` modules, each its own non-in-place module called once
    (:func:`interp_lib.models.check_relus`); ``rules=True`` (LRP) handles ReLUs in any form.
    ``TypeError`` when ``model`` cannot be traced. Results are cached per model (and its
    set of sub-modules). The model is not changed.
    """
    key = (rules, tuple((id(m), getattr(m, "inplace", None)) for m in model.modules()))
    cache = _CACHE.setdefault(model, {})
    if key not in cache:
        cache[key] = activation_problems(model, method, rules=rules)
    problems = cache[key]
    if problems:
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        handled = "ReLUs" if rules else "nn.ReLU modules"
        raise ValueError(
            f"{method} cannot explain `model` ({type(model).__name__}): it treats only {handled} and "
            f"would silently keep the plain gradient at {'; '.join(problems[:4])}{more}. Use a gradient "
            "method (saliency, integrated gradients, Grad-CAM) for this model, or a model whose only "
            "nonlinearities are ReLUs."
        )
    if not rules:
        from .models import check_relus

        check_relus(model)
