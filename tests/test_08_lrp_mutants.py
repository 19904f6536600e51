"""Lesson 08, tests added for plausible student bugs (python -m interp_lib mutants), all
without a reference library: the z+ rule on signed inputs, z^B with a large stabilizer,
``lrp_layer`` called under ``torch.no_grad()`` and inside a backward pass (as the graph
path calls it), the default composite, a non-predicted target, and ``lrp`` refusing the
layers it cannot handle."""

import pytest
import torch
from torch import nn

from interp_lib import lrp as L
from interp_lib import lrp_rules
from interp_lib.utils import assert_close


def _dense(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(6, 4)


def _signed(shape, seed=1):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _relevance(layer, a, seed=2):
    with torch.no_grad():
        z = layer(a)
    return torch.rand(z.shape, generator=torch.Generator().manual_seed(seed)) * z.sign()


def _stab(z, s):
    return z + s * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


@pytest.mark.exercise("08.1", weight=1)
def test_zplus_on_signed_inputs_by_formula():
    # R_j = sum_k (a_j^+ w_jk^+ + a_j^- w_jk^-) R_k / stab(z_k^+), z_k^+ = sum_j (same) + b_k^+
    layer, a = _dense(), _signed((3, 6))
    R = _relevance(layer, a)
    w, b = layer.weight.detach().double().T, layer.bias.detach().double()
    ad = a.double()
    contrib = ad.clamp(min=0)[:, :, None] * w.clamp(min=0) + ad.clamp(max=0)[:, :, None] * w.clamp(max=0)
    z = contrib.sum(1) + b.clamp(min=0)
    want = (contrib * (R.double() / _stab(z, 1e-6))[:, None, :]).sum(2)
    assert (a < 0).any() and (a > 0).any()
    assert_close(L.lrp_layer(layer, a, R, "zplus"), want, rtol=1e-5)


def _layers():
    torch.manual_seed(3)
    return [
        ("linear", nn.Linear(6, 4), _signed((3, 6))),
        ("conv", nn.Conv2d(2, 3, 3, padding=1, stride=2), _signed((2, 2, 6, 6))),
        ("conv same", nn.Conv2d(2, 3, 3, padding="same"), _signed((2, 2, 5, 5))),
    ]


@pytest.mark.exercise("08.1", weight=1)
def test_lrp_layer_under_no_grad_and_inside_a_backward_pass():
    """Callers rely on both: lrp's walk may run under torch.no_grad(), and lrp_graph calls
    lrp_layer from the backward of an autograd.Function (where grad mode is off)."""
    for kind, layer, a in _layers():
        R = _relevance(layer, a)
        for rule in ("0", "epsilon", "gamma", "zplus", "wsquare"):
            plain = L.lrp_layer(layer, a, R, rule)
            with torch.no_grad():
                quiet = L.lrp_layer(layer, a, R, rule)
            assert_close(quiet, plain, rtol=1e-6, what=f"{kind} {rule} under no_grad")

            class Rule(torch.autograd.Function):
                @staticmethod
                def forward(ctx, inp):
                    ctx.save_for_backward(inp)
                    return layer(inp)  # noqa: B023 (used inside this iteration only)

                @staticmethod
                def backward(ctx, relevance):
                    (inp,) = ctx.saved_tensors
                    return L.lrp_layer(layer, inp, relevance, rule)  # noqa: B023

            leaf = a.clone().requires_grad_(True)
            (inside,) = torch.autograd.grad(Rule.apply(leaf), leaf, grad_outputs=R)
            assert_close(inside, plain, rtol=1e-6, what=f"{kind} {rule} inside backward")
            assert plain.grad_fn is None and not plain.requires_grad


@pytest.mark.exercise("08.2", weight=1)
def test_zb_rule_uses_its_stabilizer():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4, bias=False)
    a = torch.rand(3, 6, generator=torch.Generator().manual_seed(1))
    R = _relevance(layer, a)
    w = layer.weight.detach().double().T
    low, high = torch.full((6,), -0.5, dtype=torch.float64), torch.full((6,), 1.5, dtype=torch.float64)
    contrib = a.double()[:, :, None] * w - low[:, None] * w.clamp(min=0) - high[:, None] * w.clamp(max=0)
    for s in (1e-6, 0.5, 5.0):
        want = (contrib * (R.double() / _stab(contrib.sum(1), s))[:, None, :]).sum(2)
        assert_close(L.zb_rule(layer, a, R, -0.5, 1.5, stabilizer=s), want, rtol=1e-5, what=f"stabilizer {s}")


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_default_composite_is_epsilon_plus(digits_model, digits_images):
    target = torch.arange(len(digits_images)) % 10
    assert_close(
        L.lrp(digits_model, digits_images, target),
        L.lrp(digits_model, digits_images, target, composite=lrp_rules.EpsilonPlus()),
        rtol=1e-7,
    )
    assert not torch.allclose(
        L.lrp(digits_model, digits_images, target),
        L.lrp(digits_model, digits_images, target, composite=lrp_rules.Uniform(lrp_rules.Epsilon())),
    )


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_of_a_class_that_is_not_predicted():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.rand(4, 1, 3, 4)
    logits = model(x).detach()
    other = (logits.argmax(1) + 1) % 3
    R = L.lrp(model, x, other, composite=lrp_rules.Uniform(lrp_rules.Epsilon(0.1)))
    top = torch.zeros_like(logits).scatter(1, other[:, None], logits.gather(1, other[:, None]))
    want = L.lrp_layer(model[1], x.flatten(1), top, "epsilon", epsilon=0.1).view_as(x)
    assert_close(R, want, rtol=1e-6)


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_refuses_layers_it_cannot_handle(digits_images):
    """lrp must refuse, with a ValueError naming the layer, a BatchNorm left in the network
    and a Linear/Conv2d the composite gives no rule (never pass them as a plain gradient)."""
    torch.manual_seed(0)
    with_bn = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(1352, 3)
    ).eval()
    with pytest.raises(ValueError, match="BatchNorm"):
        L.lrp(with_bn, digits_images, 0)
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(1352, 3)).eval()
    convs_only = lrp_rules.Composite([(nn.Conv2d, lrp_rules.ZPlus())])
    with pytest.raises(ValueError, match="no rule"):
        L.lrp(plain, digits_images, 0, composite=convs_only)
