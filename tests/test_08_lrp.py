"""Lesson 08: LRP rules for one layer, z^B, and whole-network LRP under composites."""

import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import lrp as L
from interp_lib import lrp_graph, lrp_rules
from interp_lib.models import bias_free_copy
from interp_lib.utils import assert_close


def _layer(kind, seed=0, bias=True):
    torch.manual_seed(seed)
    if kind == "linear":
        return nn.Linear(6, 4, bias=bias)
    return nn.Conv2d(2, 3, 3, padding=1, stride=1, bias=bias)


def _input(kind, seed=1, signed=False):
    g = torch.Generator().manual_seed(seed)
    shape = (3, 6) if kind == "linear" else (2, 2, 5, 5)
    x = torch.rand(shape, generator=g)
    return x * 2 - 1 if signed else x


def _relevance(layer, a, seed=2):
    with torch.no_grad():
        z = layer(a)
    return torch.rand(z.shape, generator=torch.Generator().manual_seed(seed)) * z.sign()


def _explicit(layer, a, R, rule, eps=0.25, gamma=0.25, s=1e-6):
    """Textbook formulas written out for a dense layer, float64."""
    w, b = layer.weight.double().T, layer.bias.double()  # (D, K)
    a, R = a.double(), R.double()
    stab = lambda z, e: z + e * torch.where(z >= 0, 1.0, -1.0).double()  # noqa: E731
    if rule in ("0", "epsilon"):
        contrib = a[:, :, None] * w[None]
        z = contrib.sum(1) + b
        return (contrib * (R / stab(z, eps if rule == "epsilon" else s))[:, None, :]).sum(2)
    if rule == "zplus":
        contrib = (a[:, :, None] * w[None]).clamp(min=0)
        z = contrib.sum(1) + b.clamp(min=0)
        return (contrib * (R / stab(z, s))[:, None, :]).sum(2)
    if rule == "gamma":  # inputs >= 0: w + gamma w+
        wg = w + gamma * w.clamp(min=0)
        contrib = a[:, :, None] * wg[None]
        z = contrib.sum(1) + b + gamma * b.clamp(min=0)
        zr = a @ w + b
        return (contrib * ((zr > 0) * R / stab(z, s))[:, None, :]).sum(2)
    if rule == "wsquare":
        z = (w**2).sum(0) + b**2
        return ((w**2)[None] * (R / stab(z, s))[:, None, :]).sum(2)


# --------------------------------------------------------------------------- 08.1


@pytest.mark.exercise("08.1", weight=2)
@pytest.mark.parametrize("rule", ["0", "epsilon", "zplus", "wsquare"])
def test_lrp_layer_dense_matches_formula(rule):
    layer, a = _layer("linear"), _input("linear")
    R = _relevance(layer, a)
    assert_close(L.lrp_layer(layer, a, R, rule), _explicit(layer, a, R, rule), rtol=1e-5, what=rule)


@pytest.mark.exercise("08.1", weight=1)
def test_lrp_layer_gamma_on_positive_inputs_is_textbook():
    layer, a = _layer("linear"), _input("linear")
    R = torch.rand(3, 4) * (layer(a) > 0).detach()  # relevance only on active outputs
    assert_close(
        L.lrp_layer(layer, a, R, "gamma", gamma=0.5), _explicit(layer, a, R, "gamma", gamma=0.5), rtol=1e-5
    )


@pytest.mark.exercise("08.1", weight=1)
def test_lrp_layer_conserves_without_bias():
    for kind in ("linear", "conv"):
        layer, a = _layer(kind, bias=False), _input(kind)
        R = _relevance(layer, a)
        for rule in ("0", "zplus", "gamma", "wsquare"):
            out = L.lrp_layer(layer, a, R, rule)
            assert out.shape == a.shape and out.grad_fn is None
            assert_close(out.sum(), R.sum(), rtol=1e-4, what=f"{kind} {rule} conservation")


@pytest.mark.exercise("08.1", weight=1)
def test_lrp_layer_epsilon_absorbs_relevance():
    layer, a = _layer("linear", bias=False), _input("linear")
    R = _relevance(layer, a)
    small = L.lrp_layer(layer, a, R, "epsilon", epsilon=1e-6).abs().sum()
    large = L.lrp_layer(layer, a, R, "epsilon", epsilon=10.0).abs().sum()
    assert large < 0.8 * small


@pytest.mark.exercise("08.1", weight=1)
def test_lrp_layer_conv_equals_dense_unfolded():
    conv, a = _layer("conv"), _input("conv", signed=True)
    R = _relevance(conv, a)
    # the same conv as a dense layer over the flattened image
    D, K = a[0].numel(), R[0].numel()
    dense_w = torch.autograd.functional.jacobian(
        lambda v: nn.functional.conv2d(v.view(1, *a.shape[1:]), conv.weight, None, padding=1).flatten(),
        torch.zeros(D),
    )
    dense = nn.Linear(D, K)
    with torch.no_grad():
        dense.weight.copy_(dense_w)
        dense.bias.copy_(conv.bias[:, None, None].expand(R.shape[1:]).flatten())
    for rule in ("epsilon", "zplus", "gamma"):
        got = L.lrp_layer(conv, a, R, rule)
        want = L.lrp_layer(dense, a.flatten(1), R.flatten(1), rule).view_as(a)
        assert_close(got, want, rtol=1e-5, what=rule)


@pytest.mark.reference
@pytest.mark.exercise("08.1", weight=2)
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_lrp_layer_matches_zennit(kind):
    pytest.importorskip("zennit")
    from zennit import rules as zr

    layer, a = _layer(kind), _input(kind, signed=True)
    R = _relevance(layer, a)
    cases = [
        ("0", {}, zr.Epsilon(1e-6)),
        ("epsilon", {"epsilon": 0.3}, zr.Epsilon(0.3)),
        ("gamma", {"gamma": 0.3}, zr.Gamma(0.3)),
        ("zplus", {}, zr.ZPlus()),
        ("zplus", {"zero_bias": True}, zr.ZPlus(zero_params="bias")),
        ("wsquare", {"zero_bias": True}, zr.WSquare(zero_params="bias")),
        ("wsquare", {}, zr.WSquare()),
    ]
    for rule, options, hook in cases:
        ref = _zennit_layer(layer, a, R, hook)
        assert_close(L.lrp_layer(layer, a, R, rule, **options), ref, rtol=1e-5, what=f"{rule} {options}")


def _zennit_layer(layer, a, R, hook):
    handles = hook.register(layer)
    try:
        leaf = a.clone().requires_grad_(True)
        out = layer(leaf)
        (rel,) = torch.autograd.grad(out, leaf, R)
    finally:
        handles.remove()
    return rel


def test_lrp_layer_bad_input():
    layer, a = _layer("linear"), _input("linear")
    R = _relevance(layer, a)
    with pytest.raises(ValueError, match="gamma"):
        L.lrp_layer(layer, a, R, "gamma", gamma=-0.1)
    with pytest.raises(ValueError, match="rule"):
        L.lrp_layer(layer, a, R, "alpha2beta1")
    with pytest.raises(ValueError, match="relevance"):
        L.lrp_layer(layer, a, R[:, :2], "epsilon")
    with pytest.raises(TypeError, match="layer"):
        L.lrp_layer(nn.ReLU(), a, R, "epsilon")
    with pytest.raises(ValueError, match="gamma"):
        lrp_rules.Gamma(-1.0)


# --------------------------------------------------------------------------- 08.2


@pytest.mark.exercise("08.2", weight=2)
def test_zb_rule_matches_formula_and_conserves():
    layer, a = _layer("linear", bias=False), _input("linear")
    R = _relevance(layer, a)
    w = layer.weight.double().T
    low, high = torch.full((6,), -0.5), torch.full((6,), 1.5)
    contrib = (
        a.double()[:, :, None] * w
        - low.double()[:, None] * w.clamp(min=0)
        - high.double()[:, None] * w.clamp(max=0)
    )
    den = contrib.sum(1)
    want = (contrib * (R.double() / (den + 1e-6 * torch.where(den >= 0, 1.0, -1.0)))[:, None, :]).sum(2)
    got = L.zb_rule(layer, a, R, low, high)
    assert_close(got, want, rtol=1e-5)
    assert_close(got.sum(), R.sum(), rtol=1e-4, what="conservation")


@pytest.mark.exercise("08.2", weight=1)
def test_zb_rule_ignores_bias_and_broadcasts_bounds():
    conv, a = _layer("conv"), _input("conv")
    R = _relevance(conv, a)
    got = L.zb_rule(conv, a, R, 0.0, 1.0)
    no_bias = bias_free_copy(conv)
    assert_close(got, L.zb_rule(no_bias, a, R, torch.zeros(1, 2, 1, 1), torch.ones(1, 2, 1, 1)), rtol=1e-6)


@pytest.mark.reference
@pytest.mark.exercise("08.2", weight=1)
def test_zb_rule_matches_zennit():
    pytest.importorskip("zennit")
    from zennit import rules as zr

    conv, a = _layer("conv"), _input("conv")
    R = _relevance(conv, a)
    low, high = torch.tensor([-0.1, 0.0])[None, :, None, None], torch.tensor([1.0, 1.2])[None, :, None, None]
    assert_close(L.zb_rule(conv, a, R, low, high), _zennit_layer(conv, a, R, zr.ZBox(low, high)), rtol=1e-5)


def test_zb_rule_bad_input():
    conv, a = _layer("conv"), _input("conv")
    R = _relevance(conv, a)
    with pytest.raises(ValueError, match="low"):
        L.zb_rule(conv, a, R, high=1.0)
    with pytest.raises(ValueError, match="high"):
        L.zb_rule(conv, a, R, low=0.0)
    with pytest.raises(ValueError, match="box"):
        L.zb_rule(conv, a + 2, R, 0.0, 1.0)
    with pytest.raises(ValueError, match="low"):
        lrp_rules.ZBox(None, 1.0)


# --------------------------------------------------------------------------- 08.3


def _models(digits_model, shapes_model, digits_images, shapes_images):
    return [("digits", digits_model, digits_images), ("shapes", shapes_model, shapes_images)]


@pytest.mark.exercise("08.3", weight=2)
def test_lrp_conserves_on_bias_free_copies(digits_model, shapes_model, digits_images, shapes_images):
    for name, model, x in _models(digits_model, shapes_model, digits_images, shapes_images):
        clean = bias_free_copy(model)
        target = clean(x).argmax(1)
        logit = clean(x).gather(1, target[:, None]).squeeze(1).detach()
        for composite in (
            lrp_rules.EpsilonPlus(),
            lrp_rules.EpsilonGammaBox(0.0, 1.0),
            lrp_rules.Uniform(lrp_rules.Zero()),
        ):
            R = L.lrp(clean, x, target, composite=composite)
            assert R.shape == x.shape and R.grad_fn is None
            assert_close(R.flatten(1).sum(1), logit, rtol=1e-4, what=f"{name} {composite}")


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_single_linear_layer_is_lrp_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.rand(2, 1, 3, 4)
    R = L.lrp(model, x, 1, composite=lrp_rules.Uniform(lrp_rules.Epsilon(0.1)))
    logits = model(x).detach()
    top = torch.zeros_like(logits)
    top[:, 1] = logits[:, 1]
    want = L.lrp_layer(model[1], x.flatten(1), top, "epsilon", epsilon=0.1).view_as(x)
    assert_close(R, want, rtol=1e-6)


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_default_target_is_prediction(digits_model, digits_images):
    pred = digits_model(digits_images).argmax(1)
    assert_close(L.lrp(digits_model, digits_images), L.lrp(digits_model, digits_images, pred), rtol=1e-7)


@pytest.mark.reference
@pytest.mark.exercise("08.3", weight=2)
def test_lrp_matches_zennit_shipped(digits_model, shapes_model, digits_images, shapes_images):
    pytest.importorskip("zennit")
    from zennit import composites as zc
    from zennit import rules as zr

    for name, model, x in _models(digits_model, shapes_model, digits_images, shapes_images):
        target = model(x).argmax(1)
        cases = [
            (lrp_rules.EpsilonPlus(), zc.EpsilonPlus()),
            (lrp_rules.EpsilonGammaBox(0.0, 1.0), zc.EpsilonGammaBox(low=0.0, high=1.0)),
            (
                lrp_rules.EpsilonPlus(epsilon=0.25, zero_bias=True),
                zc.EpsilonPlus(epsilon=0.25, zero_params="bias"),
            ),
            (lrp_rules.Uniform(lrp_rules.Gamma(0.5)), _zennit_uniform(zr.Gamma(0.5))),
            (
                lrp_rules.Uniform(lrp_rules.WSquare(zero_bias=True)),
                _zennit_uniform(zr.WSquare(zero_params="bias")),
            ),
        ]
        for ours, theirs in cases:
            assert_close(
                L.lrp(model, x, target, composite=ours),
                _zennit(model, x, target, theirs),
                rtol=1e-5,
                what=f"{name} {ours}",
            )


@pytest.mark.reference
@pytest.mark.exercise("08.3", weight=1)
def test_lrp_matches_zennit_vgg16():
    pytest.importorskip("zennit")
    tv = pytest.importorskip("torchvision")
    from zennit import composites as zc

    torch.manual_seed(0)
    model = tv.models.vgg16(weights=None).eval()
    x = torch.rand(1, 3, 64, 64)
    target = model(x).argmax(1)
    for ours, theirs in [
        (lrp_rules.EpsilonPlus(), zc.EpsilonPlus()),
        (lrp_rules.EpsilonGammaBox(0.0, 1.0), zc.EpsilonGammaBox(low=0.0, high=1.0)),
    ]:
        assert_close(
            L.lrp(model, x, target, composite=ours),
            _zennit(model, x, target, theirs),
            rtol=1e-5,
            what=f"vgg16 {ours}",
        )


def _zennit_uniform(rule):
    from zennit.composites import LayerMapComposite
    from zennit.rules import Pass

    return LayerMapComposite([((nn.Conv2d, nn.Linear), rule), (nn.ReLU, Pass())])


def _zennit(model, x, target, composite):
    from zennit.attribution import Gradient

    with Gradient(model, composite) as att:
        out = model(x)
        _, rel = att(x, nn.functional.one_hot(target, out.shape[1]).float() * out)
    return rel


class _Broken(lrp_rules.Rule):
    def relevance(self, layer, a, relevance):
        raise RuntimeError("broken rule")


def test_lrp_bad_input_and_model_unchanged(digits_model, digits_images):
    model = digits_model
    model.train()
    before = snapshot(model)
    with pytest.raises(ValueError, match="target"):
        L.lrp(model, digits_images, 10)
    with pytest.raises(TypeError, match="composite"):
        L.lrp(model, digits_images, 0, composite="epsilon_plus")
    with pytest.raises(ValueError, match="low"):
        lrp_rules.EpsilonGammaBox(None, 1.0)
    with pytest.raises(ValueError, match="gamma"):
        lrp_rules.EpsilonGammaBox(0.0, 1.0, gamma=-0.5)
    with pytest.raises(RuntimeError, match="broken"):
        L.lrp(
            model,
            digits_images,
            0,
            composite=lrp_rules.Composite([(nn.Linear, _Broken()), (nn.Conv2d, lrp_rules.ZPlus())]),
        )
    with pytest.raises(TypeError, match="model"):
        L.lrp(nn.ModuleList([nn.Linear(2, 2)]), digits_images, 0)
    with pytest.raises(ValueError, match="BatchNorm"):
        L.lrp(
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(1352, 3)),
            digits_images,
            0,
        )
    assert_unchanged(model, before)
    model.eval()


def test_lrp_model_unchanged_after_success(shapes_model, shapes_images):
    before = snapshot(shapes_model)
    L.lrp(shapes_model, shapes_images, 0, composite=lrp_rules.EpsilonGammaBox(0.0, 1.0))
    assert_unchanged(shapes_model, before)


def test_lrp_registered_as_attribution():
    from interp_lib.attribution import methods

    assert "lrp" in methods()


# --------------------------------------------------------------------------- real architectures
# BatchNorm merged into the preceding layer (interp_lib.models.merge_batchnorm), residual
# additions and concatenations (lrp_graph, which lrp uses for anything but a Sequential).


def _bn_randomised(model, seed=1, eps=None):
    """Running statistics of random 64x64 images, then randomly perturbed (a randomly
    initialised BN would merge into a zero bias and identity scale); eval mode."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for m in bns:
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64, generator=g))
        for m in bns:
            m.running_var.mul_(0.5 + torch.rand(m.running_var.shape, generator=g))
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(m.running_mean.shape, generator=g))
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if eps is not None:
                m.eps = eps  # zennit's merged BN still divides by sqrt(1 + eps): compare with eps = 0
    return model.eval()


def _small_bn_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, 5),
    )


def _tv(name, **kw):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    if name == "googlenet":
        kw = {"aux_logits": False, "init_weights": False, **kw}
    return getattr(tv.models, name)(weights=None, **kw).eval()


def _image(seed=3):
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _zennit_canonized(model, x, target, composite):
    import copy

    reference = copy.deepcopy(model)
    return _zennit(reference, x, target, composite)


def test_merge_batchnorm_keeps_outputs_small_net():
    from interp_lib.models import merge_batchnorm
    from interp_lib.utils import rel_error

    model = _bn_randomised(_small_bn_net())
    before = snapshot(model)
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    merged = merge_batchnorm(model)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in merged.modules())
    assert_unchanged(model, before)
    with torch.no_grad():
        assert rel_error(merged(x), model(x)) < 1e-5


@pytest.mark.reference
@pytest.mark.exercise("08.3", weight=1)
@pytest.mark.parametrize("name", ["small", "vgg16_bn"])
def test_lrp_merged_batchnorm_matches_zennit(name):
    pytest.importorskip("zennit")
    from zennit import composites as zc
    from zennit.canonizers import SequentialMergeBatchNorm

    from interp_lib.models import merge_batchnorm

    model = _bn_randomised(_small_bn_net() if name == "small" else _tv("vgg16_bn"), eps=0.0)
    x = _image()
    target = model(x).argmax(1)
    merged = merge_batchnorm(model)
    cases = [
        (lrp_rules.EpsilonPlus(), zc.EpsilonPlus(canonizers=[SequentialMergeBatchNorm()])),
        (
            lrp_rules.EpsilonGammaBox(0.0, 1.0),
            zc.EpsilonGammaBox(low=0.0, high=1.0, canonizers=[SequentialMergeBatchNorm()]),
        ),
    ]
    for ours, theirs in cases[: 2 if name == "small" else 1]:  # (VGG-16-BN: one composite, for time)
        assert_close(
            L.lrp(merged, x, target, composite=ours),
            _zennit_canonized(model, x, target, theirs),
            rtol=1e-5,
            what=f"{name} {ours}",
        )


@pytest.fixture(scope="module")
def resnet_merged():
    from interp_lib.models import merge_batchnorm

    model = _bn_randomised(_tv("resnet18"), eps=0.0)
    return model, merge_batchnorm(model)


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_resnet18_conserves(resnet_merged):
    _, merged = resnet_merged
    clean = bias_free_copy(merged)
    x = _image()
    logit = clean(x).max(1).values.detach()
    before = snapshot(clean)
    for composite in (
        lrp_rules.EpsilonPlus(),
        lrp_rules.EpsilonGammaBox(0.0, 1.0),
        lrp_rules.Uniform(lrp_rules.Zero()),
    ):
        R = L.lrp(clean, x, None, composite=composite)
        assert R.shape == x.shape and R.grad_fn is None
        assert_close(R.flatten(1).sum(1), logit, rtol=1e-3, what=f"resnet18 {composite}")
    assert_unchanged(clean, before)


@pytest.mark.reference
@pytest.mark.exercise("08.3", weight=1)
def test_lrp_resnet18_matches_zennit(resnet_merged):
    pytest.importorskip("zennit")
    from zennit import composites as zc
    from zennit.torchvision import ResNetCanonizer

    from interp_lib.models import convert_relus

    model, merged = resnet_merged
    x = _image()
    target = model(x).argmax(1)
    for ours, theirs in [
        (lrp_rules.EpsilonPlus(), zc.EpsilonPlus(canonizers=[ResNetCanonizer()])),
        (
            lrp_rules.EpsilonGammaBox(0.0, 1.0),
            zc.EpsilonGammaBox(low=0.0, high=1.0, canonizers=[ResNetCanonizer()]),
        ),
    ]:
        got = L.lrp(merged, x, target, composite=ours)
        assert_close(got, _zennit_canonized(model, x, target, theirs), rtol=1e-5, what=f"resnet18 {ours}")
    # converting the ReLUs first changes nothing (lrp_graph handles reused and in-place ReLUs)
    assert_close(L.lrp(convert_relus(merged), x, target, composite=ours), got, rtol=1e-6)


@pytest.mark.reference
@pytest.mark.exercise("08.3", weight=1)
def test_lrp_googlenet_conserves_and_matches_zennit():
    pytest.importorskip("zennit")
    from zennit import composites as zc

    from interp_lib.models import convert_relus, merge_batchnorm

    model = convert_relus(merge_batchnorm(_bn_randomised(_tv("googlenet"))))
    x = _image()
    clean = bias_free_copy(model)
    logit = clean(x).max(1).values.detach()
    R = L.lrp(clean, x, None, composite=lrp_rules.EpsilonPlus())
    assert_close(R.flatten(1).sum(1), logit, rtol=1e-3, what="googlenet conservation")
    target = model(x).argmax(1)  # concatenations only: zennit needs no canonizer once ReLUs are modules
    assert_close(
        L.lrp(model, x, target, composite=lrp_rules.EpsilonPlus()),
        _zennit(model, x, target, zc.EpsilonPlus()),
        rtol=1e-5,
        what="googlenet vs zennit",
    )


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_graph_path_equals_sequential_path(shapes_model, shapes_images):
    from interp_lib.models import convert_relus

    graph = convert_relus(shapes_model)  # a torch.fx.GraphModule: not a Sequential
    assert not lrp_rules.is_sequential(graph)
    target = shapes_model(shapes_images).argmax(1)
    for composite in (lrp_rules.EpsilonPlus(), lrp_rules.EpsilonGammaBox(0.0, 1.0), lrp_rules.LayerGroups()):
        assert_close(
            L.lrp(graph, shapes_images, target, composite=composite),
            L.lrp(shapes_model, shapes_images, target, composite=composite),
            rtol=1e-6,
            what=f"{composite}",
        )


def test_lrp_graph_refuses_unmerged_batchnorm(resnet_merged):
    model, _ = resnet_merged
    with pytest.raises(ValueError, match="BatchNorm"):
        lrp_graph.lrp_graph(model, _image(), 0)


@pytest.mark.exercise("08.1", weight=1)
def test_gamma_case_split_uses_the_real_output_with_zero_bias():
    """With zero_bias the denominators drop the bias, but which outputs count as positive
    is decided by the layer's real output z_k (bias included), as in zennit."""
    torch.manual_seed(0)
    layer = nn.Linear(6, 5)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([3.0, -3.0, 3.0, -3.0, 0.5]))
    a, relevance, g = torch.randn(4, 6), torch.rand(4, 5), 0.25
    w = layer.weight.detach().T  # w_jk, (6, 5)
    with torch.no_grad():
        z = layer(a)
    ap, an = a.clamp(min=0)[:, :, None], a.clamp(max=0)[:, :, None]
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    up = ap * (w + g * wp) + an * (w + g * wn)  # outputs with z_k > 0
    down = ap * (w + g * wn) + an * (w + g * wp)  # outputs with z_k < 0
    contrib = torch.where(z[:, None, :] > 0, up, torch.where(z[:, None, :] < 0, down, torch.zeros(())))
    denom = contrib.sum(1)
    stab = denom + 1e-6 * torch.where(denom >= 0, 1.0, -1.0)
    expected = (contrib * (relevance / stab)[:, None, :]).sum(2)
    assert ((z > 0) != (z - layer.bias.detach() > 0)).any(), "the bias must flip some signs here"
    got = L.lrp_layer(layer, a, relevance, "gamma", gamma=g, zero_bias=True)
    assert_close(got, expected, rtol=1e-5, what="gamma rule with zero_bias")
