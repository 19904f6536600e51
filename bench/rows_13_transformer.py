"""Benchmark rows for lesson 13 (the ViT shapes_vit_cleverhans, 64 tagged images): AttnLRP
by gradient x input with rule hooks against lxt 2.1's explicit rules (the same rules;
ours adds the zB step to the pixels), and patch-level integrated gradients against captum's
LayerIntegratedGradients on the patch embedding (32 Gauss-Legendre nodes, black baseline)."""

import importlib.util
import pathlib

import torch

from interp_lib import transformer as T
from interp_lib.course.bench import Row
from interp_lib.data import load_shapes
from interp_lib.models import load_model


def _lxt_attnlrp():
    path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "lxt_vit.py"
    spec = importlib.util.spec_from_file_location("lxt_vit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lxt_attnlrp


def _captum_patch_ig(model, x, target, steps):
    from captum.attr import LayerIntegratedGradients

    lig = LayerIntegratedGradients(model, model.patch_embed)
    return lig.attribute(x, torch.zeros_like(x), target=target, n_steps=steps, method="gausslegendre")


def rows():
    vit = load_model("shapes_vit_cleverhans")
    s = load_shapes("test", n=64, texture_rate=1.0, tag_rate=1.0)
    x, y = s.x, s.y
    lxt_attnlrp = _lxt_attnlrp()
    return [
        Row(
            "AttnLRP ViT (64 images)",
            lambda: T.transformer_lrp(vit, x, y, "attnlrp"),
            lambda: lxt_attnlrp(vit, x, y),
            against="lxt 2.1 (explicit rules)",
            goal=1.5,
            lesson="13",
        ),
        Row(
            "patch IG ViT (64 images, 32 nodes)",
            lambda: T.patch_integrated_gradients(vit, x, y, steps=32),
            lambda: _captum_patch_ig(vit, x, y, 32),
            against="captum LayerIntegratedGradients",
            goal=1.5,
            lesson="13",
        ),
    ]
