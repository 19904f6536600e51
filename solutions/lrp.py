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


def _backward(layer, a, weight, s):
    """``c_j = sum_k w_jk s_k``: the gradient of ``_forward(layer, a, weight, .)`` with respect
    to ``a`` for the output gradient ``s`` (the transposed layer), computed directly -- the
    kernel autograd would call, without building a graph. None: not available here."""
    if isinstance(layer, nn.Linear):
        return s.mm(weight) if a.dim() == 2 else None
    if isinstance(layer.padding, str):  # 'same' / 'valid': let autograd work out the padding
        return None
    return torch.ops.aten.convolution_backward(
        s,
        a,
        weight,
        None,
        list(layer.stride),
        list(layer.padding),
        list(layer.dilation),
        False,
        [0, 0],
        layer.groups,
        (True, False, False),
    )[0]


def _terms(layer, a, rule, gamma, zero_bias):
    """[(modified input, weight, bias)]: the contributions the rule keeps."""
    w = layer.weight
    b = layer.bias if layer.bias is not None and not zero_bias else w.new_zeros(w.shape[0])
    if rule in ("0", "epsilon"):
        return [[(a, w, b)]]
    if rule == "wsquare":
        return [[(torch.ones_like(a), w**2, b**2)]]
    # after a ReLU a^- = 0 and a^+ = a: the a^- terms are zero, skip them
    signed = bool(a.amin() < 0) if a.numel() else False
    pos = a.clamp(min=0) if signed else a
    if rule == "zplus":
        terms = [(pos, w.clamp(min=0), b.clamp(min=0))]
        return [terms + [(a.clamp(max=0), w.clamp(max=0), 0 * b)] if signed else terms]
    # gamma: one set of terms for outputs z > 0, one for z < 0
    up = [(pos, w + gamma * w.clamp(min=0), b + gamma * b.clamp(min=0))]
    down = [(pos, w + gamma * w.clamp(max=0), b + gamma * b.clamp(max=0))]
    if signed:
        neg = a.clamp(max=0)
        up.append((neg, w + gamma * w.clamp(max=0), 0 * b))
        down.append((neg, w + gamma * w.clamp(min=0), 0 * b))
    return [up, down]


def _via_autograd(layer, terms, s):
    """[c] for each term by the recipe's steps 1 and 3 (autograd), where _backward cannot."""
    with torch.enable_grad():
        inputs = [x.detach().requires_grad_(True) for x, _, _ in terms]
        z = None
        for x, (_, w, b) in zip(inputs, terms):
            zi = _forward(layer, x, w, b)
            z = zi if z is None else z + zi
        return torch.autograd.grad(z, inputs, grad_outputs=s)


# The forward pass of `lrp` computes every layer's real output z = layer(a) anyway; the rules
# whose step 1 is that very output (epsilon and 0 with the bias; the case split of gamma) take
# it from here instead of computing it again. `lrp` fills this for the duration of one call;
# an entry counts only for the same layer object and the same input tensor object, both
# unchanged since (versions), so any other call of lrp_layer computes z itself.
_OUTPUTS = {}


def _remember(layer, a, z):
    versions = [t._version for t in (a, layer.weight, layer.bias) if t is not None]
    _OUTPUTS[id(layer)] = (layer, a, versions, z)


def _own_output(layer, a):
    """``layer(a)`` as `lrp`'s forward pass computed it, or None."""
    entry = _OUTPUTS.get(id(layer))
    if entry is None or entry[0] is not layer or entry[1] is not a:
        return None
    if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
        return None  # layer(a) pads by itself, _forward would not: not the same z
    versions = [t._version for t in (a, layer.weight, layer.bias) if t is not None]
    return entry[3] if versions == entry[2] else None


def lrp_layer(
    layer, a, relevance, rule="epsilon", *, epsilon=0.25, gamma=0.25, stabilizer=1e-6, zero_bias=False
):
    # The four-step recipe with steps 1 and 3 written out: the modified weights do not depend
    # on the input, so the gradient of step 3 is the transposed layer applied to s (_backward),
    # the very kernel autograd would run, without building or walking a graph.
    eps = epsilon if rule == "epsilon" else stabilizer
    own = _own_output(layer, a)  # z = layer(a) from lrp's forward pass, if there is one
    a = a.detach()
    groups = _terms(layer, a, rule, gamma, zero_bias)
    if rule == "gamma":
        z = _forward(layer, a, layer.weight, layer.bias) if own is None else own
        masks = [(z > 0).to(a), (z < 0).to(a)]
    else:
        masks = [None]
    result = None
    with torch.no_grad():
        for terms, mask in zip(groups, masks):
            r = relevance if mask is None else mask * relevance
            if mask is not None and not r.any():
                continue  # no relevance on these outputs (e.g. z < 0 after a ReLU)
            z = None
            if rule in ("0", "epsilon") and not zero_bias and layer.bias is not None:
                z = own  # (the very terms of the layer's own forward)
            for x, w, b in terms if z is None else ():  # step 1
                zi = _forward(layer, x, w, b)
                z = zi if z is None else z + zi
            if rule == "zplus" and len(terms) == 1:
                # inputs, weights and bias all >= 0 (the bias term makes a zero +0.0): z >= 0,
                # stab(z) = z + s; computed in place in z, a temporary of this call
                s = torch.div(r, z.add_(eps), out=z)  # step 2
            else:
                s = r / L.stabilize(z, eps)  # step 2
            grads = [_backward(layer, x, w, s) for x, w, _ in terms]  # step 3
            if any(c is None for c in grads):
                grads = _via_autograd(layer, terms, s)
            for (x, _, _), c in zip(terms, grads):  # step 4
                c = c.mul_(x)  # (c is a temporary of this call: R_j = x_j c_j in place)
                result = c if result is None else result.add_(c)
    # (for 'wsquare' the inputs are ones: R_j = c_j, the input's value plays no part)
    return torch.zeros_like(a) if result is None else result.detach()


def zb_rule(layer, a, relevance, low=None, high=None, *, stabilizer=1e-6):
    w = layer.weight
    a = a.detach()
    lo = torch.as_tensor(low, dtype=a.dtype).expand_as(a).clone()
    hi = torch.as_tensor(high, dtype=a.dtype).expand_as(a).clone()
    terms = [(a, w), (lo, w.clamp(min=0)), (hi, w.clamp(max=0))]
    with torch.no_grad():
        x_z, lo_z, hi_z = (_forward(layer, t, v, None) for t, v in terms)
        z = x_z - lo_z - hi_z
        s = relevance / L.stabilize(z, stabilizer)
        cx, cl, ch = (_backward(layer, t, v, g) for (t, v), g in zip(terms, (s, -s, -s)))
    if cx is None or cl is None or ch is None:  # (padding 'same'/'valid'): through autograd
        with torch.enable_grad():
            x, lo, hi = (t.clone().requires_grad_(True) for t in (a, lo, hi))
            z = (
                _forward(layer, x, w, None)
                - _forward(layer, lo, terms[1][1], None)
                - _forward(layer, hi, terms[2][1], None)
            )
            cx, cl, ch = torch.autograd.grad(z, (x, lo, hi), grad_outputs=s)
    # the c of lo and hi carry the minus sign of their terms (the transposed layer of -s)
    return (a * cx + lo * cl + hi * ch).detach()


def lrp(model, x, target=None, composite=None):
    if not L.is_sequential(model):  # residual additions, concatenations: the graph path
        return L.lrp_graph(model, x, target, composite)
    layers = L.as_sequential(model)
    composite = composite or L.EpsilonPlus()
    rules = composite.rules(layers)
    L.check_supported(layers, rules)

    _OUTPUTS.clear()
    try:
        return _walk(layers, rules, x.detach(), target)
    finally:
        _OUTPUTS.clear()  # (hold no activations after the call)


def _walk(layers, rules, a, target):
    """The forward pass keeping every layer's input, then the relevance pass backwards."""
    inputs = []  # the input of every layer (for max-pool & co: its graph)
    own = False  # is `a` a dense/conv output that only the walk holds?
    for layer, rule in zip(layers, rules):
        if rule is not None or isinstance(layer, nn.ReLU):
            inputs.append(a)
            with torch.no_grad():
                if isinstance(layer, nn.ReLU):  # (in place on such an output: one copy fewer)
                    out = a.relu_() if own else torch.relu(a)
                else:
                    out = layer(a)
            remember = getattr(rule, "rule", None) in ("0", "epsilon", "gamma")
            if remember:
                _remember(layer, a, out)  # step 1 of these rules, computed already
            own = (
                isinstance(layer, (nn.Linear, nn.Conv2d))
                and not remember
                and not (layer._forward_hooks or nn.modules.module._global_forward_hooks)
            )
            a = out
        else:  # keep the graph: its backward is the plain gradient
            # (max-pooling of small feature maps in channels-last memory: the same values and
            # winners, a several times faster CPU kernel than the default layout's; for large
            # maps, 56 x 56 and up, the two layout conversions cost more than they save)
            fast = isinstance(layer, nn.MaxPool2d) and a.dim() == 4 and a.shape[-2] * a.shape[-1] <= 1024
            leaf = (a.contiguous(memory_format=torch.channels_last) if fast else a).requires_grad_(True)
            with torch.enable_grad():
                out = layer(leaf)
            inputs.append((leaf, out, fast))
            a, own = out.detach().contiguous(), False
    target = a.argmax(1) if target is None else target
    index = torch.as_tensor(target).expand(len(a))
    R = torch.zeros_like(a).scatter(1, index[:, None], class_scores(a, index)[:, None])

    for layer, a, rule in reversed(list(zip(layers, inputs, rules))):
        if rule is not None:
            R = rule.relevance(layer, a, R)
        elif isinstance(layer, nn.ReLU):
            pass  # relevance passes through
        else:  # max-pool (winner takes all), flatten, dropout
            leaf, out, fast = a
            if fast:
                R = R.contiguous(memory_format=torch.channels_last)
            (R,) = torch.autograd.grad(out, leaf, grad_outputs=R)
            R = R.contiguous()
    return R.detach()
