import torch
import torch.nn.functional as F

from interp_lib import attacks
from interp_lib.attacks import class_scores
from interp_lib.gradients import last_conv_name


def saliency_map(model, x, target):
    g = attacks.input_gradient(model, x, target)
    return g.abs().amax(dim=1, keepdim=True)


def input_x_gradient(model, x, target):
    return x.detach() * attacks.input_gradient(model, x, target)


def smoothgrad(model, x, target, n_samples=16, sigma=0.15, generator=None):
    n = len(x)
    eps = torch.randn((n_samples, *x.shape), generator=generator, dtype=x.dtype) * sigma
    noisy = (x.detach()[None] + eps).reshape(n_samples * n, *x.shape[1:])
    targets = torch.as_tensor(target).expand(n).repeat(n_samples)
    grads = attacks.input_gradient(model, noisy, targets)
    return grads.reshape(n_samples, *x.shape).mean(0)


def grad_cam(model, x, target, layer=None):
    module = model.get_submodule(layer if layer is not None else last_conv_name(model))
    stored = []

    def keep(_module, _inputs, output):
        stored.append(output)
        # the rest of the network runs on a copy: an in-place op after the layer (a ReLU with
        # inplace=True, ResNet's `out += identity`) changes the copy, not the kept activation
        return output.clone() if isinstance(output, torch.Tensor) else None

    handle = module.register_forward_hook(keep)
    try:
        x = x.detach().clone().requires_grad_(True)
        scores = class_scores(model(x), target)
    finally:
        handle.remove()
    maps = stored[-1]
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4:
        what = f"shape {tuple(maps.shape)}" if isinstance(maps, torch.Tensor) else f"a {type(maps).__name__}"
        raise ValueError(f"`layer` {layer!r} outputs {what}, not a feature map (N, K, h, w)")
    grads = torch.autograd.grad(scores.sum(), maps)[0]
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True)).detach()
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear")
