import torch
import torch.nn.functional as F
from torch import nn

from interp_lib import deconvnet
from interp_lib.attacks import class_scores


def unpool_with_switches(y, switches, size):
    n, c = y.shape[:2]
    out = y.new_zeros(n, c, size[0] * size[1])
    out.scatter_add_(2, switches.flatten(2), y.flatten(2))
    return out.view(n, c, *size)


def _relu_rule(a, R, rule):
    if rule == "gradient":
        return R * (a > 0)
    if rule == "deconvnet":
        return R.clamp(min=0)
    return R.clamp(min=0) * (a > 0)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _transposed_conv(conv, R, a):
    stride, padding, dilation = _pair(conv.stride), _pair(conv.padding), _pair(conv.dilation)
    kernel = conv.weight.shape[-2:]
    output_padding = tuple(
        a.shape[2 + d]
        - ((R.shape[2 + d] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kernel[d] - 1) + 1)
        for d in range(2)
    )
    return F.conv_transpose2d(
        R,
        conv.weight,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=conv.groups,
        dilation=dilation,
    )


def deconvnet_reconstruction(model, x, layer, channel=None, rule="deconvnet", start="activation"):
    # forward up to `layer`, recording (module, its input, switches)
    record = []
    h = x.detach()
    with torch.no_grad():
        for name, module in deconvnet.sequential_layers(model):
            if isinstance(module, nn.MaxPool2d):
                out, switches = F.max_pool2d(
                    h,
                    module.kernel_size,
                    module.stride,
                    module.padding,
                    module.dilation,
                    module.ceil_mode,
                    return_indices=True,
                )
            else:
                out, switches = module(h), None
            record.append((module, h, switches))
            h = out
            if name == layer:
                break

        R = h.clone() if start == "activation" else torch.ones_like(h)
        if channel is not None:
            keep = torch.zeros_like(R)
            keep[:, channel] = R[:, channel]
            R = keep

        # walk back down to the pixels
        for module, a, switches in reversed(record):
            if isinstance(module, nn.MaxPool2d):
                R = deconvnet.unpool_with_switches(R, switches, tuple(a.shape[-2:]))
            elif isinstance(module, nn.ReLU):
                R = _relu_rule(a, R, rule)
            elif isinstance(module, nn.Conv2d):
                R = _transposed_conv(module, R, a)
            elif isinstance(module, nn.Linear):
                R = R @ module.weight
            elif isinstance(module, nn.Flatten):
                R = R.reshape(a.shape)
    return R


class ReLURule(torch.autograd.Function):
    """A ReLU whose backward pass follows `rule` ("gradient", "deconvnet" or "guided")."""

    @staticmethod
    def forward(ctx, a, out, rule):
        # `out` = relu(a), already computed by the nn.ReLU module: reuse it (1[out > 0] = 1[a > 0])
        ctx.save_for_backward(out)
        ctx.rule = rule
        return out.view_as(out)

    @staticmethod
    def backward(ctx, R):
        (out,) = ctx.saved_tensors
        # out = relu(a) >= 0, so out.sign() is the mask 1[a > 0] (as floats)
        if ctx.rule == "gradient":
            R_in = R * out.sign()
        elif ctx.rule == "deconvnet":
            R_in = R.clamp(min=0)
        else:
            R_in = R.clamp(min=0) * out.sign()
        return R_in, None, None


def guided_backprop(model, x, target, rule="guided"):
    def hook(module, inputs, output):
        return ReLURule.apply(inputs[0], output.detach(), rule)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        x = x.detach().clone().requires_grad_(True)
        scores = class_scores(model(x), target)
        return torch.autograd.grad(scores.sum(), x)[0]
    finally:
        for handle in handles:
            handle.remove()
