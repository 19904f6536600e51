"""Reference bodies for lesson 13 (inside a transformer)."""

from __future__ import annotations

import torch

from interp_lib.attacks import class_scores
from interp_lib.integrated_gradients import quadrature
from interp_lib.transformer import patches_to_pixels


def attention_rollout(attentions, residual=0.5):
    n, _, t, _ = attentions[0].shape
    eye = torch.eye(t, dtype=attentions[0].dtype)
    rolled = eye.expand(n, t, t)
    for a in attentions:
        a_hat = residual * eye + (1 - residual) * a.mean(1)
        a_hat = a_hat / a_hat.sum(-1, keepdim=True)
        rolled = a_hat @ rolled  # the later block multiplies from the left
    return rolled


def layernorm_rule(norm, h):
    mu = h.mean(-1, keepdim=True)
    sigma = torch.sqrt(h.var(-1, keepdim=True, unbiased=False) + norm.eps)
    y = (h - mu) / sigma.detach()  # identity rule: the normalisation is a constant
    if norm.weight is not None:
        y = y * norm.weight
    if norm.bias is not None:
        y = y + norm.bias
    return y


def patch_integrated_gradients(model, x, target, baseline=None, steps=32):
    x = x.detach()
    with torch.no_grad():
        tokens = model.embed(x)  # (N, P, D)
        if isinstance(baseline, str):  # "zero"
            base = torch.zeros_like(tokens)
        else:
            image = torch.zeros_like(x) if baseline is None else baseline.detach().expand_as(x)
            base = model.embed(image)
    alphas, weights = quadrature("gausslegendre", steps)
    a = alphas.to(x.dtype).view(-1, 1, 1, 1)
    path = (base + a * (tokens - base)).reshape(-1, *tokens.shape[1:])  # (S * N, P, D)
    path.requires_grad_(True)
    n = len(x)
    scores = class_scores(model.forward_tokens(path), torch.as_tensor(target).expand(n).repeat(steps))
    (grads,) = torch.autograd.grad(scores.sum(), path)
    w = weights.to(x.dtype).view(-1, 1, 1, 1)
    mean_grad = (grads.reshape(steps, *tokens.shape) * w).sum(0)
    ig = ((tokens - base) * mean_grad).sum(-1)  # (N, P)
    return patches_to_pixels(model, ig, x)
