import functools

import torch
import torch.nn.functional as F
from torch import nn

from interp_lib import lrp as L
from interp_lib import lrp_graph, lrp_rules
from interp_lib.attacks import class_scores


def _forward(layer, a, weight, bias):
    """The layer's own operation with other weights (stride, padding... unchanged)."""
    if isinstance(layer, nn.Linear):
        return F.linear(a, weight, bias)
    return F.conv2d(a, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def _total(tensors):
    """The sum of the tensors (as sum() without its start value: no extra 0 + ... pass)."""
    return functools.reduce(torch.add, tensors)


def lrp_layer(
    layer, a, relevance, rule="epsilon", *, epsilon=0.25, gamma=0.25, stabilizer=1e-6, zero_bias=False
):
    w, a = layer.weight, a.detach()
    b = layer.bias if layer.bias is not None and not zero_bias else w.new_zeros(w.shape[0])
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    eps = epsilon if rule == "epsilon" else stabilizer
    # [(terms, relevance)]: the (input, weight, bias) terms whose forward passes sum to z, and
    # the relevance they distribute (the terms of the negative inputs have no bias)
    if rule in ("0", "epsilon"):
        groups = [([(a, w, b)], relevance)]
    elif rule == "zplus":
        groups = [([(pos, w.clamp(min=0), b.clamp(min=0)), (neg, w.clamp(max=0), None)], relevance)]
    elif rule == "wsquare":
        groups = [([(torch.ones_like(a), w**2, b**2)], relevance)]
    elif rule == "gamma":  # the outputs z > 0 and z < 0 apart (the real z, bias included)
        w_up, w_down = w + gamma * w.clamp(min=0), w + gamma * w.clamp(max=0)
        b_up, b_down = b + gamma * b.clamp(min=0), b + gamma * b.clamp(max=0)
        real = _forward(layer, a, w, layer.bias)
        groups = [
            ([(pos, w_up, b_up), (neg, w_down, None)], relevance * (real > 0)),
            ([(pos, w_down, b_down), (neg, w_up, None)], relevance * (real < 0)),
        ]
    parts = []  # the R_j of every term
    for terms, r in groups:
        # a term with neither an input (a^- after a ReLU is zero) nor a bias adds nothing
        terms = [(x, v, c) for x, v, c in terms if c is not None or x.any()]
        with torch.enable_grad():
            # (1) leaf copies of the inputs, z = the sum of the terms' forward passes
            leaves = [x.detach().requires_grad_(True) for x, _, _ in terms]
            z = _total(_forward(layer, x, v, c) for x, (_, v, c) in zip(leaves, terms))
            # (2) the relevance per unit of z
            s = r / L.stabilize(z.detach(), eps)
            # (3) c_j = sum_k w'_jk s_k, the gradient of z with respect to each input copy
            c = torch.autograd.grad(z, leaves, s)
        # (4) R_j = sum over the terms of x_j c_j
        parts += [x * c_x for x, c_x in zip(leaves, c)]
    return _total(parts).detach()


def zb_rule(layer, a, relevance, low=None, high=None, *, stabilizer=1e-6):
    w, a = layer.weight, a.detach()
    low = torch.as_tensor(low, dtype=a.dtype).expand_as(a)
    high = torch.as_tensor(high, dtype=a.dtype).expand_as(a)
    terms = [(a, w), (low, w.clamp(min=0)), (high, w.clamp(max=0))]
    with torch.enable_grad():
        # (1) leaf copies, three forward passes without bias (its terms cancel)
        leaves = [x.detach().requires_grad_(True) for x, _ in terms]
        z_a, z_low, z_high = (_forward(layer, x, v, None) for x, (_, v) in zip(leaves, terms))
        z = z_a - z_low - z_high
        # (2) the relevance per unit of z
        s = relevance / L.stabilize(z.detach(), stabilizer)
        # (3) the c of each input (those of the bounds carry the minus sign of their terms)
        c = torch.autograd.grad(z, leaves, s)
    # (4) R_j = a_j c_j + l_j c_j^l + h_j c_j^h
    return _total(x * c_x for x, c_x in zip(leaves, c)).detach()


def lrp(model, x, target=None, composite=None):
    if not lrp_rules.is_sequential(model):  # residual additions, concatenations
        return lrp_graph.lrp_graph(model, x, target, composite)
    layers = lrp_rules.as_sequential(model)
    composite = composite or lrp_rules.EpsilonPlus()
    rules = composite.rules(layers)
    lrp_rules.check_supported(layers, rules)
    # the forward pass, keeping every layer's input; the layers the gradient passes keep
    # their graph (input leaf, output) as well, so the relevance pass need not run them again
    inputs = []
    a = x.detach()
    for layer, rule in zip(layers, rules):
        if rule is None and not isinstance(layer, nn.ReLU):
            with torch.enable_grad():
                leaf = a.requires_grad_(True)
                inputs.append((leaf, layer(leaf)))
            a = inputs[-1][1].detach()
        else:
            inputs.append(a)
            with torch.no_grad():
                a = torch.relu(a) if isinstance(layer, nn.ReLU) else layer(a)
    # the relevance at the output: the target logit, zero elsewhere
    index = torch.as_tensor(target).expand(len(a))
    R = torch.zeros_like(a).scatter(1, index[:, None], class_scores(a, index)[:, None])
    for layer, a, rule in reversed(list(zip(layers, inputs, rules))):
        if rule is not None:
            R = rule.relevance(layer, a, R)
        elif isinstance(layer, nn.ReLU):
            pass  # relevance passes through
        else:  # max-pooling (winner takes all), flatten, dropout: the gradient
            leaf, out = a
            (R,) = torch.autograd.grad(out, leaf, R)
    return R.detach()
