import torch
import torch.nn.functional as F
from torch import nn

from interp_lib import lrp as L
from interp_lib.attacks import class_scores


def _forward(layer, a, weight, bias):
    """The layer's own operation with other weights (stride, padding... unchanged)."""
    if isinstance(layer, nn.Linear):
        return F.linear(a, weight, bias)
    return F.conv2d(a, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def _terms(layer, a, rule, gamma, zero_bias):
    """[(modified input, weight, bias)]: the contributions the rule keeps."""
    w = layer.weight
    b = layer.bias if layer.bias is not None and not zero_bias else w.new_zeros(w.shape[0])
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    signed = bool((a < 0).any())    # after a ReLU a^- = 0: its terms are zero, skip them
    if rule in ("0", "epsilon"):
        return [[(a, w, b)]]
    if rule == "wsquare":
        return [[(torch.ones_like(a), w ** 2, b ** 2)]]
    if rule == "zplus":
        terms = [(pos, w.clamp(min=0), b.clamp(min=0)), (neg, w.clamp(max=0), 0 * b)]
        return [terms if signed else terms[:1]]
    # gamma: one set of terms for outputs z > 0, one for z < 0
    up = [(pos, w + gamma * w.clamp(min=0), b + gamma * b.clamp(min=0)), (neg, w + gamma * w.clamp(max=0), 0 * b)]
    down = [(pos, w + gamma * w.clamp(max=0), b + gamma * b.clamp(max=0)), (neg, w + gamma * w.clamp(min=0), 0 * b)]
    return [up, down] if signed else [up[:1], down[:1]]


def lrp_layer(layer, a, relevance, rule="epsilon", *, epsilon=0.25, gamma=0.25, stabilizer=1e-6,
              zero_bias=False):
    eps = epsilon if rule == "epsilon" else stabilizer
    groups = _terms(layer, a.detach(), rule, gamma, zero_bias)
    if rule == "gamma":
        z = _forward(layer, a.detach(), layer.weight, layer.bias)
        masks = [(z > 0).to(a), (z < 0).to(a)]
    else:
        masks = [1.0]
    result = None
    with torch.enable_grad():
        for terms, mask in zip(groups, masks):
            if rule == "gamma" and not (mask * relevance).any():
                continue            # no relevance on these outputs (e.g. z < 0 after a ReLU)
            inputs = [x.detach().requires_grad_(True) for x, _, _ in terms]
            z = sum(_forward(layer, x, w, b) for x, (_, w, b) in zip(inputs, terms))  # step 1
            s = mask * relevance / L.stabilize(z.detach(), eps)                      # step 2
            grads = torch.autograd.grad(z, inputs, grad_outputs=s)                   # step 3
            for x, c in zip(inputs, grads):                                          # step 4
                result = x * c if result is None else result + x * c
    # (for 'wsquare' the inputs are ones: R_j = c_j, the input's value plays no part)
    return torch.zeros_like(a) if result is None else result.detach()


def zb_rule(layer, a, relevance, low=None, high=None, *, stabilizer=1e-6):
    w = layer.weight
    a = a.detach()
    with torch.enable_grad():
        x = a.clone().requires_grad_(True)
        lo = torch.as_tensor(low, dtype=a.dtype).expand_as(a).clone().requires_grad_(True)
        hi = torch.as_tensor(high, dtype=a.dtype).expand_as(a).clone().requires_grad_(True)
        z = (_forward(layer, x, w, None) - _forward(layer, lo, w.clamp(min=0), None)
             - _forward(layer, hi, w.clamp(max=0), None))
        s = relevance / L.stabilize(z.detach(), stabilizer)
        cx, cl, ch = torch.autograd.grad(z, (x, lo, hi), grad_outputs=s)
    # the grads of lo, hi carry the minus sign of their terms already
    return (x * cx + lo * cl + hi * ch).detach()


def lrp(model, x, target=None, composite=None):
    if not L.is_sequential(model):  # residual additions, concatenations: the graph path
        return L.lrp_graph(model, x, target, composite)
    layers = L.as_sequential(model)
    composite = composite or L.EpsilonPlus()
    rules = composite.rules(layers)
    L.check_supported(layers, rules)

    inputs = []                     # the input of every layer (for max-pool & co: its graph)
    a = x.detach()
    for layer, rule in zip(layers, rules):
        if rule is not None or isinstance(layer, nn.ReLU):
            inputs.append(a)
            with torch.no_grad():
                a = torch.relu(a) if isinstance(layer, nn.ReLU) else layer(a)
        else:                       # keep the graph: its backward is the plain gradient
            leaf = a.requires_grad_(True)
            with torch.enable_grad():
                out = layer(leaf)
            inputs.append((leaf, out))
            a = out.detach()
    target = a.argmax(1) if target is None else target
    index = torch.as_tensor(target).expand(len(a))
    R = torch.zeros_like(a).scatter(1, index[:, None], class_scores(a, index)[:, None])

    for layer, a, rule in reversed(list(zip(layers, inputs, rules))):
        if rule is not None:
            R = rule.relevance(layer, a, R)
        elif isinstance(layer, nn.ReLU):
            pass                    # relevance passes through
        else:                       # max-pool (winner takes all), flatten, dropout
            leaf, out = a
            (R,) = torch.autograd.grad(out, leaf, grad_outputs=R)
    return R.detach()
