"""Reference bodies for lesson 11 (concepts inside the network)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interp_lib.attacks import class_scores


def concept_activation_vector(concept, random, ridge=1.0):
    a = torch.cat([concept, random]).double()
    t = torch.cat([torch.ones(len(concept)), -torch.ones(len(random))]).double()
    a_c = a - a.mean(0)
    t_c = t - t.mean()
    gram = a_c @ a_c.T + ridge * torch.eye(len(a), dtype=torch.float64)
    w = a_c.T @ torch.linalg.solve(gram, t_c)
    return w / w.norm()


def tcav_score(model, x, target, layer, cavs):
    stored = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: stored.append(out))
    try:
        logits = model(x.detach().clone().requires_grad_(True))
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(class_scores(logits, target).sum(), stored[0])
    if cavs.shape[1] != grad[0].numel():
        raise ValueError(f"`cavs` has {cavs.shape[1]} features but `{layer}` has {grad[0].numel()}")
    derivatives = grad.flatten(1).double() @ cavs.double().T  # (N, R)
    return (derivatives > 0).double().mean(0)


def unit_iou(activations, masks, top=0.005):
    n, units = activations.shape[:2]
    per_unit = activations.transpose(0, 1).reshape(units, -1)
    threshold = torch.quantile(per_unit, 1 - top, dim=1)
    up = F.interpolate(activations, size=masks.shape[-2:], mode="bilinear", align_corners=False)
    on = (up > threshold.view(1, units, 1, 1)).flatten(2).double()  # (N, U, P)
    concept = masks.flatten(2).double()  # (N, K, P)
    inter = torch.einsum("nup,nkp->uk", on, concept)
    union = on.sum((0, 2))[:, None] + concept.sum((0, 2))[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1.0), 0.0)
