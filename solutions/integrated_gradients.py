import math

import torch

from interp_lib import attacks
from interp_lib.attacks import class_scores
from interp_lib.integrated_gradients import interpolation_path as path_of
from interp_lib.integrated_gradients import patch_masks, quadrature
from interp_lib.utils import batches


def interpolation_path(x, baseline, alphas):
    a = alphas.to(x.dtype).view(-1, 1, 1, 1, 1)
    return baseline + a * (x - baseline)


def integrated_gradients(
    model, x, target, baseline=None, steps=64, method="gausslegendre", internal_batch_size=None
):
    x = x.detach()
    baseline = torch.zeros_like(x) if baseline is None else baseline.detach().expand_as(x)
    alphas, weights = quadrature(method, steps)
    n = len(x)
    chunk = steps if internal_batch_size is None else max(1, internal_batch_size // n)
    targets = torch.as_tensor(target).expand(n)
    total = torch.zeros_like(x)
    for part in batches(steps, chunk):
        images = path_of(x, baseline, alphas[part])
        s = len(images)
        grads = attacks.input_gradient(model, images.reshape(s * n, *x.shape[1:]), targets.repeat(s))
        w = weights[part].to(x.dtype).view(-1, 1, 1, 1, 1)
        total += (grads.reshape(s, *x.shape) * w).sum(0)
    return (x - baseline) * total


def completeness_gap(model, x, target, attributions, baseline=None):
    baseline = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    with torch.no_grad():
        change = class_scores(model(x), target) - class_scores(model(baseline), target)
    return attributions.detach().flatten(1).sum(1) - change


def patch_shapley(model, x, target, baseline=None, grid=3):
    x = x.detach()
    baseline = torch.zeros_like(x) if baseline is None else baseline.detach().expand_as(x)
    n, d = len(x), grid * grid
    masks = patch_masks(x.shape[2], x.shape[3], grid)  # (d, H, W)
    codes = torch.arange(2**d)
    members = (codes[:, None] >> torch.arange(d)) & 1  # (2^d, d) coalition bits
    pixel_on = (members.float() @ masks.flatten(1).float()).view(-1, 1, 1, *masks.shape[1:]) > 0
    targets = torch.as_tensor(target).expand(n)
    values = torch.empty(2**d, n, dtype=x.dtype)
    with torch.no_grad():
        for part in batches(2**d, max(1, 1024 // n)):
            images = torch.where(pixel_on[part], x, baseline)  # (b, N, C, H, W)
            b = len(images)
            scores = class_scores(model(images.reshape(b * n, *x.shape[1:])), targets.repeat(b))
            values[part] = scores.reshape(b, n)
    size = members.sum(1)
    phi = torch.zeros(d, n, dtype=torch.float64)
    for i in range(d):
        without = members[:, i] == 0
        t = size[without]
        weight = torch.tensor(
            [math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d) for k in t.tolist()],
            dtype=torch.float64,
        )
        gain = values[codes[without] | (1 << i)] - values[codes[without]]
        phi[i] = (weight[:, None] * gain.double()).sum(0)
    per_element = masks.flatten(1).sum(1) * x.shape[1]  # elements per patch
    spread = (phi / per_element[:, None]).T.to(x.dtype)  # (N, d)
    return torch.einsum("nd,dhw->nhw", spread, masks.to(x.dtype))[:, None].expand_as(x).clone()
