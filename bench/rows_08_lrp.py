"""Benchmark rows for lesson 08: LRP (EpsilonPlus composite) against zennit 0.5.1 and
against one forward + backward pass (the limit), on the shipped shapes CNN and on a
randomly initialised VGG-16 at 224x224; LRP-epsilon against captum's LRP on the shipped CNN.

VGG-16 runs at batch 2 (batch 8 takes ~1 min per repetition on two shared CPU cores,
too long for ``--runs 5`` next to the other rows); ``LRP_BENCH_VGG_BATCH=8`` restores
the batch of the issue.
"""

import os

import torch

from interp_lib import lrp as L
from interp_lib import lrp_rules
from interp_lib.course.bench import Row
from interp_lib.data import load_shapes
from interp_lib.models import load_model


def _zennit(model, x, target, composite):
    from zennit.attribution import Gradient

    with Gradient(model, composite) as att:
        out = model(x)
        _, rel = att(x, torch.nn.functional.one_hot(target, out.shape[1]).to(out) * out)
    return rel


def _forward_backward(model, x, target):
    leaf = x.detach().clone().requires_grad_(True)
    out = model(leaf)
    return torch.autograd.grad(out.gather(1, target[:, None]).sum(), leaf)[0]


def _frozen(model):
    for p in model.parameters():
        p.requires_grad_(False)  # as the exercise wrapper does during lrp
    return model


def _base_rows():
    from zennit.composites import EpsilonPlus

    out = []
    cnn = load_model("shapes_texture")
    x = load_shapes("test").x[:64]
    t = cnn(x).argmax(1)
    out.append(
        Row(
            "LRP EpsilonPlus shapes CNN (64 images)",
            lambda: L.lrp(cnn, x, t, composite=lrp_rules.EpsilonPlus()),
            lambda: _zennit(cnn, x, t, EpsilonPlus()),
            against="zennit 0.5.1",
            goal=0.5,
            lesson="08",
        )
    )
    frozen_cnn = _frozen(load_model("shapes_texture"))
    out.append(
        Row(
            "LRP EpsilonPlus shapes CNN vs forward+backward",
            lambda: L.lrp(cnn, x, t, composite=lrp_rules.EpsilonPlus()),
            lambda: _forward_backward(frozen_cnn, x, t),
            against="limit: 1 forward+backward",
            # the textbook recipe (issue #12): each layer's step 1 is its own forward with the
            # rule's weights and step 3 its own backward, so about two passes, not one
            goal=2.0,
            lesson="08",
        )
    )

    import torchvision

    batch = int(os.environ.get("LRP_BENCH_VGG_BATCH", "2"))
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None).eval()
    xv = torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tv = vgg(xv).argmax(1)
    out.append(
        Row(
            f"LRP EpsilonPlus VGG-16 224x224 (batch {batch})",
            lambda: L.lrp(vgg, xv, tv, composite=lrp_rules.EpsilonPlus()),
            lambda: _zennit(vgg, xv, tv, EpsilonPlus()),
            against="zennit 0.5.1",
            goal=0.5,
            lesson="08",
        )
    )
    out.append(
        Row(
            f"LRP EpsilonPlus VGG-16 vs forward+backward (batch {batch})",
            lambda: L.lrp(vgg, xv, tv, composite=lrp_rules.EpsilonPlus()),
            lambda: _forward_backward(vgg, xv, tv),
            against="limit: 1 forward+backward",
            # the textbook recipe (issue #12): each layer's step 1 is its own forward with the
            # rule's weights and step 3 its own backward, so about two passes, not one
            goal=2.0,
            lesson="08",
        )
    )
    return out


class _FunctionalFlatten(torch.nn.Module):
    """The CNN with its nn.Flatten replaced by torch.flatten: captum's LRP fails on an
    nn.Flatten module even with an explicit IdentityRule ("hook ... has changed the size
    of value"), but handles a functional flatten as torchvision's VGG does."""

    def __init__(self, model):
        super().__init__()
        i = next(k for k, m in enumerate(model) if isinstance(m, torch.nn.Flatten))
        self.features, self.classifier = model[:i], model[i + 1 :]

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _captum_rows():
    """LRP-epsilon on the shipped CNN against captum's LRP (EpsilonRule on every
    Conv2d/Linear, set before every call because captum deletes custom rules afterwards).
    The two maps agree to ~2e-6 norm-relative (measured)."""
    import copy

    from captum.attr import LRP
    from captum.attr._utils.lrp_rules import EpsilonRule

    cnn = load_model("shapes_texture")
    x = load_shapes("test").x[:64]
    t = cnn(x).argmax(1)
    theirs = _FunctionalFlatten(copy.deepcopy(cnn))

    def captum_lrp():
        for m in theirs.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.rule = EpsilonRule(1e-6)
        return LRP(theirs).attribute(x, target=t)

    return [
        Row(
            "LRP epsilon shapes CNN vs captum (64 images)",
            lambda: L.lrp(cnn, x, t, composite=lrp_rules.Uniform(lrp_rules.Epsilon(1e-6))),
            captum_lrp,
            against="captum 0.9 LRP",
            goal=1.1,
            lesson="08",
        )
    ]


def rows():
    base = _base_rows()
    return base[:2] + _captum_rows() + base[2:]
