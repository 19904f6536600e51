"""Reference bodies for lesson 10 (evaluating explanations)."""

from __future__ import annotations

import copy

import torch

from interp_lib.attacks import class_scores
from interp_lib.evaluation import SanityCheck, average_ranks, randomisable_layers, region_scores


def deletion_curve(
    model, x, target, attributions, region=4, steps=None, baseline=0.0, order="most", probability=False
):
    n, c, h, w = x.shape
    scores = region_scores(attributions, region)  # (N, R)
    steps = scores.shape[1] if steps is None else steps
    ranking = torch.argsort(scores, dim=1, descending=(order == "most"), stable=True)
    rank = torch.argsort(ranking, dim=1)  # step at which each square goes
    k = torch.arange(steps + 1).view(1, -1, 1)
    gone = (rank[:, None, :] < k).view(n, steps + 1, h // region, w // region)
    gone = gone.repeat_interleave(region, 2).repeat_interleave(region, 3)[:, :, None]  # (N, L+1, 1, H, W)
    base = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x)
    target = torch.as_tensor(target).expand(n)
    curves = torch.empty(n, steps + 1, dtype=x.dtype)
    per_chunk = max(1, 1024 // (steps + 1))
    with torch.no_grad():
        for s in range(0, n, per_chunk):
            e = min(s + per_chunk, n)
            images = torch.where(gone[s:e], base[s:e, None], x[s:e, None]).reshape(-1, c, h, w)
            logits = model(images)
            if probability:
                logits = logits.softmax(1)
            curves[s:e] = class_scores(logits, target[s:e].repeat_interleave(steps + 1)).view(
                e - s, steps + 1
            )
    return curves


def aopc(curves):
    return (curves[:, :1] - curves).mean(1)


def relevance_mass(attributions, mask, absolute=False):
    r = attributions.sum(1, keepdim=True)
    p = r.abs() if absolute else r.clamp(min=0)
    inside = (p * mask).flatten(1).sum(1)
    total = p.flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)


def _spearman(a, b):
    ra, rb = average_ranks(a), average_ranks(b)
    ra = ra - ra.mean(-1, keepdim=True)
    rb = rb - rb.mean(-1, keepdim=True)
    return (ra * rb).sum(-1) / (ra.norm(dim=-1) * rb.norm(dim=-1))  # 0/0 = NaN for a constant map


def sanity_check(model, x, target, method, layers=None, generator=None, **options):
    layers = randomisable_layers(model) if layers is None else list(layers)
    maps = [method(model, x, target, **options).detach()]
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    for name in layers:
        with torch.no_grad():
            for p in modules[name].parameters(recurse=False):
                p.copy_(torch.randn(p.shape, generator=generator) * p.std())
        maps.append(method(clone, x, target, **options).detach())
    maps = torch.stack(maps)
    summed = maps.sum(2).flatten(2)  # (L+1, N, pixels)
    rho = _spearman(summed[1:], summed[:1].expand_as(summed[1:]))
    rho_abs = _spearman(summed[1:].abs(), summed[:1].abs().expand_as(summed[1:]))
    return SanityCheck(layers, maps, rho, rho_abs)
