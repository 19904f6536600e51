"""Reference bodies for lesson 14 (capstone: audit a model)."""

from __future__ import annotations

import torch

from interp_lib import attacks, capstone, data
from interp_lib.models import load_model


def intervention_effect(model, x, target, region, fill=0.0, probability=True):
    changed = torch.where(region, torch.as_tensor(fill, dtype=x.dtype), x)
    n = len(x)
    target = torch.as_tensor(target).expand(n)
    with torch.no_grad():
        scores = model(torch.cat([x, changed]))
        if probability:
            scores = scores.softmax(1)
    scores = attacks.class_scores(scores, target.repeat(2))
    return scores[:n] - scores[n:]


def suspected_shortcut():
    # The audit as a recipe, on clean images only: what raises a class score *at a fixed
    # place*? The mean input gradient of each class (object evidence averages out).
    model = load_model("capstone")
    x = data.load_shapes("val", n=128, texture_rate=1.0).x
    push = capstone.class_templates(model, x).amax(1).clamp(min=0)  # (K, H, W): best channel, raising only
    peakiness = push.flatten(1).amax(1) / push.flatten(1).mean(1)
    cls = int(peakiness.argmax())  # the class whose template has one sharp peak
    region = (push[cls] >= 0.25 * push[cls].max())[None, None]
    return region, cls
