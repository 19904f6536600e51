"""Lesson 10: deletion curves, AOPC, relevance mass, cascading randomisation (sanity checks)."""

import collections
import copy

import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import evaluation, gradients
from interp_lib.utils import assert_close


def _linear_toy(weights):
    """A model whose logit 0 is sum(w * x) and logit 1 is its negative (1x4x4 images)."""
    w = torch.as_tensor(weights, dtype=torch.float32).reshape(1, 16)
    model = nn.Sequential(collections.OrderedDict([("flatten", nn.Flatten()), ("fc", nn.Linear(16, 2))]))
    with torch.no_grad():
        model.fc.weight.copy_(torch.cat([w, -w]))
        model.fc.bias.zero_()
    return model.eval()


# the four 2x2 regions of a 4x4 image, row-major: top-left, top-right, bottom-left, bottom-right
REGION_WEIGHTS = [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]


@pytest.fixture(scope="module")
def toy():
    return _linear_toy(REGION_WEIGHTS)


@pytest.fixture(scope="module")
def tagged():
    from interp_lib.data import load_shapes

    return load_shapes("test", n=16, texture_rate=1.0, tag_rate=1.0)


def _naive_curve(model, x, target, attributions, region, steps, baseline, order):
    """Pixel flipping written as a plain loop (an independent reference)."""
    n, c, h, w = x.shape
    out = torch.empty(n, steps + 1)
    for i in range(n):
        squares = [(r, q) for r in range(0, h, region) for q in range(0, w, region)]
        scores = torch.stack([attributions[i, :, r : r + region, q : q + region].sum() for r, q in squares])
        ranking = torch.argsort(scores, descending=(order == "most"), stable=True)
        img = x[i].clone()
        base = torch.as_tensor(baseline).expand_as(x)[i]
        with torch.no_grad():
            out[i, 0] = model(img[None])[0, target[i]]
            for k in range(steps):
                r, q = squares[ranking[k]]
                img[:, r : r + region, q : q + region] = base[:, r : r + region, q : q + region]
                out[i, k + 1] = model(img[None])[0, target[i]]
    return out


# --------------------------------------------------------------------------- 10.1


@pytest.mark.exercise("10.1", weight=3)
def test_deletion_curve_by_hand(toy):
    x = torch.ones(1, 1, 4, 4)
    # relevance ranks the regions bottom-right, top-left, bottom-left, top-right
    relevance = torch.tensor(
        [[9.0, 9.0, 1.0, 1.0], [9.0, 9.0, 1.0, 1.0], [5.0, 5.0, 20.0, 20.0], [5.0, 5.0, 20.0, 20.0]]
    )
    a = relevance.view(1, 1, 4, 4)
    curve = evaluation.deletion_curve(toy, x, 0, a, region=2)
    # f(x) = 4*(1+2+3+4) = 40; deleting bottom-right (-16), top-left (-4), bottom-left (-12), top-right (-8)
    assert curve.shape == (1, 5)
    assert_close(curve, torch.tensor([[40.0, 24.0, 20.0, 8.0, 0.0]]), rtol=1e-6)
    least = evaluation.deletion_curve(toy, x, 0, a, region=2, order="least")
    assert_close(least, torch.tensor([[40.0, 32.0, 20.0, 16.0, 0.0]]), rtol=1e-6)
    half = evaluation.deletion_curve(toy, x, 0, a, region=2, steps=2, baseline=0.5)
    assert_close(half, torch.tensor([[40.0, 32.0, 30.0]]), rtol=1e-6)
    other = evaluation.deletion_curve(toy, x, 1, a, region=2, steps=1)
    assert_close(other, torch.tensor([[-40.0, -24.0]]), rtol=1e-6)


@pytest.mark.exercise("10.1", weight=1)
def test_deletion_curve_probability_and_ties(toy):
    x = torch.full((1, 1, 4, 4), 0.1)
    flat = torch.zeros(1, 1, 4, 4)  # all ties: row-major order
    logits = evaluation.deletion_curve(toy, x, 0, flat, region=2)
    assert_close(logits, torch.tensor([[4.0, 3.6, 2.8, 1.6, 0.0]]), rtol=1e-6)
    probs = evaluation.deletion_curve(toy, x, 0, flat, region=2, probability=True)
    # logits (s, -s): p_0 = sigmoid(2 s)
    assert_close(probs, torch.sigmoid(2 * logits), rtol=1e-6)


@pytest.mark.exercise("10.1", weight=3)
@pytest.mark.parametrize("order", ["most", "least"])
def test_deletion_curve_matches_naive_loop(cleverhans, tagged, order):
    g = torch.Generator().manual_seed(1)
    x, y = tagged.x[:4], tagged.y[:4]
    a = torch.randn(4, 3, 32, 32, generator=g)
    baseline = torch.rand(4, 3, 32, 32, generator=g)
    curve = evaluation.deletion_curve(cleverhans, x, y, a, region=8, baseline=baseline, order=order)
    assert curve.shape == (4, 17) and curve.grad_fn is None
    assert_close(curve, _naive_curve(cleverhans, x, y, a, 8, 16, baseline, order), rtol=1e-5)
    one_channel = evaluation.deletion_curve(
        cleverhans, x, y, a.sum(1, keepdim=True), region=8, steps=5, baseline=baseline, order=order
    )
    assert_close(one_channel, curve[:, :6], rtol=1e-5)


@pytest.mark.exercise("10.1", weight=1)
def test_insertion_is_deletion_with_roles_swapped(toy):
    x = torch.ones(1, 1, 4, 4)
    blurred = torch.zeros(1, 1, 4, 4)
    a = torch.tensor(REGION_WEIGHTS).view(1, 1, 4, 4)  # most relevant: bottom-right
    insertion = evaluation.deletion_curve(toy, blurred, 0, a, region=2, baseline=x)
    assert_close(insertion, torch.tensor([[0.0, 16.0, 28.0, 36.0, 40.0]]), rtol=1e-6)
    assert_close(evaluation.deletion_auc(insertion), torch.tensor([(8 + 22 + 32 + 38) / 4.0]), rtol=1e-6)


@pytest.mark.exercise("10.1", weight=1)
def test_deletion_curve_leaves_model_and_input_unchanged(cleverhans, tagged):
    x = tagged.x[:3].clone()
    before, x_before = snapshot(cleverhans), x.clone()
    evaluation.deletion_curve(cleverhans, x, 0, torch.rand(3, 1, 32, 32), region=4, steps=3)
    assert_unchanged(cleverhans, before)
    assert torch.equal(x, x_before)


def test_deletion_curve_bad_input(toy):
    x, a = torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="region"):
        evaluation.deletion_curve(toy, x, 0, a, region=3)
    with pytest.raises(ValueError, match="steps"):
        evaluation.deletion_curve(toy, x, 0, a, region=2, steps=5)
    with pytest.raises(ValueError, match="attributions"):
        evaluation.deletion_curve(toy, x, 0, torch.ones(1, 1, 2, 2), region=2)
    with pytest.raises(ValueError, match="order"):
        evaluation.deletion_curve(toy, x, 0, a, region=2, order="random")
    with pytest.raises(ValueError, match="baseline"):
        evaluation.deletion_curve(toy, x, 0, a, region=2, baseline=torch.zeros(2, 1, 4, 4))


# --------------------------------------------------------------------------- 10.2


@pytest.mark.exercise("10.2", weight=2)
def test_aopc_by_hand():
    curves = torch.tensor(
        [[40.0, 24.0, 20.0, 8.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 3.0, 4.0, 2.0, 1.0]]
    )
    # (0 + 16 + 20 + 32 + 40) / 5 = 21.6; flat: 0; rising then falling: (0 - 1 - 2 + 0 + 1) / 5
    assert_close(evaluation.aopc(curves), torch.tensor([21.6, 0.0, -0.4]), rtol=1e-6)


@pytest.mark.exercise("10.2", weight=1)
def test_aopc_of_the_toy_orders(toy):
    x = torch.ones(1, 1, 4, 4)
    a = torch.tensor(REGION_WEIGHTS).view(1, 1, 4, 4)  # the true contributions
    most = evaluation.aopc(evaluation.deletion_curve(toy, x, 0, a, region=2))
    least = evaluation.aopc(evaluation.deletion_curve(toy, x, 0, a, region=2, order="least"))
    # most: 40, 24, 12, 4, 0 -> (0+16+28+36+40)/5 = 24; least: 40, 36, 28, 16, 0 -> 16
    assert_close(most, torch.tensor([24.0]), rtol=1e-6)
    assert_close(least, torch.tensor([16.0]), rtol=1e-6)


def test_aopc_bad_input():
    with pytest.raises(ValueError, match="curves"):
        evaluation.aopc(torch.ones(5))
    with pytest.raises(TypeError, match="curves"):
        evaluation.aopc([[1.0, 0.0]])


def test_deletion_auc_by_hand():
    curves = torch.tensor([[4.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    assert_close(evaluation.deletion_auc(curves), torch.tensor([2.0, 1.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="curves"):
        evaluation.deletion_auc(torch.ones(3, 1))


# --------------------------------------------------------------------------- 10.3


@pytest.mark.exercise("10.3", weight=3)
def test_relevance_mass_by_hand():
    mask = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    mask[..., 0, 0] = True
    a = torch.tensor(
        [
            [[[3.0, 1.0], [-2.0, 0.0]]],  # positive part 3+1: 3/4
            [[[-1.0, 2.0], [2.0, 4.0]]],  # 0/8
            [[[0.0, 0.0], [0.0, 0.0]]],  # nothing: 0
            [[[-5.0, 1.0], [1.0, 3.0]]],
        ]
    )  # abs: 5/10
    assert_close(evaluation.relevance_mass(a, mask), torch.tensor([0.75, 0.0, 0.0, 0.0]), rtol=1e-6)
    assert_close(
        evaluation.relevance_mass(a, mask, absolute=True), torch.tensor([3 / 6, 1 / 9, 0.0, 0.5]), rtol=1e-6
    )
    per_image = mask.expand(4, 1, 2, 2).clone()
    per_image[1] = ~per_image[1]
    assert_close(evaluation.relevance_mass(a, per_image), torch.tensor([0.75, 1.0, 0.0, 0.0]), rtol=1e-6)


@pytest.mark.exercise("10.3", weight=1)
def test_relevance_mass_sums_channels_first():
    mask = torch.tensor([[[[True, False]]]])
    a = torch.tensor([[[[2.0, 1.0]], [[-2.0, 1.0]]]])  # pixel 0: +2 - 2 = 0; pixel 1: 2
    assert_close(evaluation.relevance_mass(a, mask), torch.tensor([0.0]), atol_scale=1e-9)
    uniform = torch.ones(3, 3, 32, 32)
    from interp_lib.data import load_shapes

    tag_mask = load_shapes("test", n=1).tag_mask
    assert_close(evaluation.relevance_mass(uniform, tag_mask), torch.full((3,), 36 / 1024), rtol=1e-6)


@pytest.mark.exercise("10.3", weight=2)
def test_some_method_finds_the_clever_hans_tag(cleverhans, tagged):
    # the model follows the tag: at least one method puts most of its relevance there
    from interp_lib import lrp

    a = lrp.lrp(cleverhans, tagged.x, tagged.y)
    mass = evaluation.relevance_mass(a, tagged.tag_mask)
    assert mass.shape == (16,) and mass.mean() > 0.5


def test_relevance_mass_bad_input():
    a = torch.ones(2, 1, 4, 4)
    with pytest.raises(ValueError, match="mask"):
        evaluation.relevance_mass(a, torch.ones(1, 1, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        evaluation.relevance_mass(a, torch.ones(3, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask"):
        evaluation.relevance_mass(a, torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="attributions"):
        evaluation.relevance_mass(torch.ones(4, 4), torch.ones(1, 1, 4, 4, dtype=torch.bool))


# --------------------------------------------------------------------------- 10.4


@pytest.mark.exercise("10.4", weight=3)
@pytest.mark.reference
def test_sanity_check_spearman_equals_scipy(cleverhans, tagged):
    stats = pytest.importorskip("scipy.stats")
    x, y = tagged.x[:4], tagged.y[:4]
    for method in (gradients.saliency_map, gradients.input_x_gradient, gradients.grad_cam):
        result = evaluation.sanity_check(cleverhans, x, y, method, generator=torch.Generator().manual_seed(0))
        assert result.layers == ["fc2", "fc1", "conv3", "conv2", "conv1"]
        assert result.maps.shape[:2] == (6, 4) and result.spearman.shape == (5, 4)
        summed = result.maps.sum(2).flatten(2).double()
        for i in range(5):
            for n in range(4):
                a, b = summed[i + 1, n].numpy(), summed[0, n].numpy()
                want = stats.spearmanr(a, b).statistic
                want_abs = stats.spearmanr(abs(a), abs(b)).statistic
                for got, exp in (
                    (result.spearman[i, n].item(), want),
                    (result.spearman_abs[i, n].item(), want_abs),
                ):
                    assert (got != got and exp != exp) or abs(got - exp) < 1e-9, (method.__name__, i, n)


@pytest.mark.exercise("10.4", weight=3)
def test_sanity_check_randomises_a_copy_cumulatively(cleverhans, tagged):
    x, y = tagged.x[:2], tagged.y[:2]
    original = {k: v.clone() for k, v in cleverhans.state_dict().items()}
    seen = []

    def spy(model, x, target):
        assert all(torch.equal(v, original[k]) for k, v in cleverhans.state_dict().items()), (
            "the caller's model changed during sanity_check"
        )
        seen.append((model, {k: v.clone() for k, v in model.state_dict().items()}))
        return x.clone()

    before = snapshot(cleverhans)
    layers = ["fc2", "conv2", "conv1"]
    result = evaluation.sanity_check(
        cleverhans, x, y, spy, layers=layers, generator=torch.Generator().manual_seed(3)
    )
    assert_unchanged(cleverhans, before)
    assert len(seen) == 4 and result.layers == layers
    assert all(m is not cleverhans for m, _ in seen[1:])
    assert all(torch.equal(v, original[k]) for k, v in seen[0][1].items())
    # step i: layers[:i] redrawn, all others as trained
    for i in range(1, 4):
        state = seen[i][1]
        for k, v in state.items():
            layer = k.split(".")[0]
            changed = not torch.equal(v, original[k])
            assert changed == (layer in layers[:i]), (i, k)
            if layer in layers[: i - 1]:  # randomisations accumulate
                assert torch.equal(v, seen[i - 1][1][k])
    # the draws: weight then bias of each layer in turn, scaled by the trained std
    g = torch.Generator().manual_seed(3)
    for name in layers:
        for suffix in ("weight", "bias"):
            p = original[f"{name}.{suffix}"]
            expected = torch.randn(p.shape, generator=g) * p.std()
            assert_close(seen[-1][1][f"{name}.{suffix}"], expected, rtol=1e-6)
    # a map that ignores the model passes through unchanged: correlation 1 at every step
    assert torch.allclose(result.spearman, torch.ones(3, 2, dtype=result.spearman.dtype))


@pytest.mark.exercise("10.4", weight=2)
def test_sanity_check_gradient_loses_its_structure(cleverhans, tagged):
    x, y = tagged.x[:8], tagged.y[:8]
    result = evaluation.sanity_check(
        cleverhans, x, y, gradients.saliency_map, generator=torch.Generator().manual_seed(0)
    )
    again = evaluation.sanity_check(
        cleverhans, x, y, gradients.saliency_map, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(result.maps, again.maps)
    assert_close(result.maps[0], gradients.saliency_map(cleverhans, x, y), rtol=1e-6)
    assert (
        result.spearman_abs[-1].mean() < 0.5 * result.spearman_abs[0].mean()
        or result.spearman_abs[-1].mean() < 0.3
    )


@pytest.mark.exercise("10.4", weight=1)
def test_sanity_check_constant_map_gives_nan(cleverhans, tagged):
    x = tagged.x[:2]
    result = evaluation.sanity_check(cleverhans, x, 0, lambda m, x, t: torch.zeros_like(x), layers=["fc2"])
    assert result.spearman.shape == (1, 2) and torch.isnan(result.spearman).all()


def _ranks(v):
    return torch.argsort(torch.argsort(v)).double() + 1  # 1..n, no ties here


def _spearman_by_hand(a, b):
    d = _ranks(a) - _ranks(b)
    n = len(a)
    return 1 - 6 * (d**2).sum().item() / (n * (n**2 - 1))


@pytest.mark.exercise("10.4", weight=2)
def test_sanity_check_spearman_by_hand(toy):
    """Spearman's rho of the channel-summed maps (ranks, not values), and of their absolute
    values, on three worked cases: a sign flip, a monotone non-linear change, a permutation."""
    g = torch.Generator().manual_seed(0)
    a0 = torch.randperm(16, generator=g).double() + 1
    a1 = torch.linspace(-1, 1.1, 16, dtype=torch.float64)[torch.randperm(16, generator=g)]  # distinct |a|
    a2 = torch.arange(1, 17, dtype=torch.float64)
    b2 = a2[torch.randperm(16, generator=g)]
    original = torch.stack([a0, a1, a2]).view(3, 1, 4, 4)
    randomised = torch.stack([-a0, torch.exp(3 * a1), b2]).view(3, 1, 4, 4)
    maps = iter([original, randomised])
    result = evaluation.sanity_check(
        toy, torch.rand(3, 1, 4, 4), 0, lambda m, x, t: next(maps), layers=["fc"]
    )
    want = torch.tensor([[-1.0, 1.0, _spearman_by_hand(b2, a2)]], dtype=torch.float64)
    want_abs = torch.tensor(
        [[1.0, _spearman_by_hand(torch.exp(3 * a1), a1.abs()), _spearman_by_hand(b2, a2)]],
        dtype=torch.float64,
    )
    assert result.spearman.shape == (1, 3)
    assert torch.allclose(result.spearman.double(), want, atol=1e-6), (result.spearman, want)
    assert torch.allclose(result.spearman_abs.double(), want_abs, atol=1e-6), (result.spearman_abs, want_abs)


@pytest.mark.exercise("10.4", weight=1)
def test_sanity_check_passes_the_options_to_every_call(toy):
    calls = []

    def method(model, x, target, scale=1.0):
        calls.append(scale)
        return x * scale

    evaluation.sanity_check(toy, torch.rand(2, 1, 4, 4), 0, method, layers=["fc"], scale=3.0)
    assert calls == [3.0, 3.0], "the options go to the method on the original and on every randomised copy"


def test_sanity_check_model_unchanged_when_method_raises(cleverhans, tagged):
    before = snapshot(cleverhans)
    calls = []

    def boom(model, x, target):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError, match="boom"):
        evaluation.sanity_check(cleverhans, tagged.x[:2], 0, boom)
    assert_unchanged(cleverhans, before)


def test_sanity_check_bad_input(cleverhans, tagged):
    x = tagged.x[:2]
    with pytest.raises(ValueError, match="layers"):
        evaluation.sanity_check(cleverhans, x, 0, gradients.saliency_map, layers=["fc3"])
    with pytest.raises(ValueError, match="layers"):
        evaluation.sanity_check(cleverhans, x, 0, gradients.saliency_map, layers=["relu1"])
    with pytest.raises(TypeError, match="method"):
        evaluation.sanity_check(cleverhans, x, 0, "saliency_map")
    with pytest.raises(TypeError, match="generator"):
        evaluation.sanity_check(cleverhans, x, 0, gradients.saliency_map, generator=0)


# --------------------------------------------------------------------------- infrastructure


def test_average_ranks_equal_scipy():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    v = torch.randint(5, (3, 40), generator=g).float()
    want = torch.from_numpy(stats.rankdata(v.numpy(), axis=1).astype("float64"))
    assert torch.equal(evaluation.average_ranks(v), want)


def test_bootstrap_ci_brackets_the_mean():
    values = torch.arange(100, dtype=torch.float64)
    mean, low, high = evaluation.bootstrap_ci(values, generator=torch.Generator().manual_seed(0))
    assert mean == 49.5 and low < mean < high and high - low < 30
    assert evaluation.bootstrap_ci(torch.tensor([1.0, float("nan")]))[0] == 1.0


# --------------------------------------------------------------------------- real-world architectures


def _torchvision(name):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    if name == "googlenet":
        model = tv.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    else:
        model = getattr(tv.models, name)(weights=None)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # random running statistics: merging must use them
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "vgg16_bn"])
def test_merge_batchnorm_keeps_outputs(name):
    from interp_lib.models import merge_batchnorm
    from interp_lib.utils import rel_error

    model = _torchvision(name)
    before = copy.deepcopy(model.state_dict())
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    merged = merge_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in merged.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with torch.no_grad():
        assert rel_error(merged(x), model(x)) < 1e-5


@pytest.mark.reference
def test_lrp_on_merged_vgg16_bn_matches_zennit():
    pytest.importorskip("zennit")
    from zennit import composites as zc
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm

    from interp_lib import lrp as L
    from interp_lib import lrp_rules
    from interp_lib.models import merge_batchnorm

    model = _torchvision("vgg16_bn")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.0  # zennit's "identity" BatchNorm still divides by sqrt(1 + eps) after merging
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    target = model(x).argmax(1)
    ours = L.lrp(merge_batchnorm(model), x, target, composite=lrp_rules.EpsilonPlus())
    reference = copy.deepcopy(model)
    with Gradient(reference, zc.EpsilonPlus(canonizers=[SequentialMergeBatchNorm()])) as att:
        out = reference(x)
        _, theirs = att(x, nn.functional.one_hot(target, out.shape[1]).float() * out)
    assert_close(ours, theirs, rtol=1e-5, what="LRP EpsilonPlus on merged vgg16_bn vs zennit")


_OPTIONS = {
    "smoothgrad": dict(n_samples=2, generator=torch.Generator().manual_seed(0)),
    "integrated_gradients": dict(steps=4),
    "occlusion": dict(window=32, stride=32),
}


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "googlenet"])
def test_every_method_runs_on_torchvision(name):
    from interp_lib import attribution
    from interp_lib.models import convert_relus, merge_batchnorm

    model = _torchvision(name)
    merged = merge_batchnorm(model)
    converted = convert_relus(merged)  # hook-based methods need one nn.ReLU per use
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    target = int(model(x).argmax(1))
    for method in attribution.methods():
        if method == "patch_shapley":
            continue
        if method == "lrp":  # rules need BatchNorm merged; ReLUs may stay
            a = attribution.attribute(method, merged, x, target)
        else:
            a = attribution.attribute(method, converted, x, target, **_OPTIONS.get(method, {}))
        assert a.shape[0] == 1 and a.shape[-2:] == x.shape[-2:] and torch.isfinite(a).all(), method


@pytest.mark.exercise("10.4", weight=1)
def test_sanity_check_on_resnet18_copy():
    from interp_lib.models import convert_relus

    model = convert_relus(_torchvision("resnet18"))
    before = snapshot(model)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    layers = evaluation.randomisable_layers(model)
    assert layers[0] == "fc"
    result = evaluation.sanity_check(
        model, x, 0, gradients.saliency_map, layers=layers[:2], generator=torch.Generator().manual_seed(0)
    )
    assert_unchanged(model, before)
    assert result.maps.shape == (3, 2, 1, 64, 64) and result.spearman.shape == (2, 2)


# --------------------------------------------------------------------------- the lessons' shared helpers


def test_tag_mass_verdict_worked_cases():
    """The criterion lessons 04 and 10 share: intervals against the area share, the honest
    model and one half."""
    g = torch.Generator().manual_seed(0)
    honest = torch.full((24,), 0.03)
    spread = torch.linspace(-0.02, 0.02, 24)
    numbers, verdict = evaluation.tag_mass_verdict(0.8 + spread, honest, 0.035, generator=g)
    assert verdict == "singles it out"
    assert numbers == "80% (80%-80%) vs honest 3% (3%-3%), area 3.5%"
    assert evaluation.tag_mass_verdict(0.16 + spread, honest, 0.035, generator=g)[1] == (
        "sees it, but most mass elsewhere"
    )
    # above the area share but not above the honest model: no evidence of the shortcut
    assert evaluation.tag_mass_verdict(0.15 + spread, 0.15 - spread, 0.035, generator=g)[1] == (
        "does not separate it"
    )
    # the honest model at the area share and the clever one below it
    assert evaluation.tag_mass_verdict(0.02 + spread / 4, honest, 0.035, generator=g)[1] == (
        "does not separate it"
    )


def test_lesson_methods_follow_the_uniform_call(shapes_model, shapes_batch):
    x, y = shapes_batch
    x, y = x[:3], y[:3]
    methods = evaluation.lesson_methods()
    assert list(methods) == [
        "saliency",
        "input×gradient",
        "SmoothGrad",
        "Grad-CAM",
        "integrated gradients",
        "occlusion",
        "deconvnet",
        "guided backprop",
        "LRP ε/z⁺",
        "LRP ε/γ/box",
        "random",
    ]
    before = snapshot(shapes_model)
    for name, method in methods.items():
        a = method(shapes_model, x, y)
        assert a.shape[0] == 3 and a.shape[-2:] == x.shape[-2:] and torch.isfinite(a).all(), name
    assert_unchanged(shapes_model, before)
    # SmoothGrad and the random control draw the same noise at every call
    assert torch.equal(methods["SmoothGrad"](shapes_model, x, y), methods["SmoothGrad"](shapes_model, x, y))
    assert torch.equal(methods["random"](shapes_model, x, y), methods["random"](None, x, y))
    assert (methods["SmoothGrad"](shapes_model, x, y) >= 0).all()
    from interp_lib import attribution

    assert torch.equal(
        methods["saliency"](shapes_model, x, y), attribution.attribute("saliency_map", shapes_model, x, y)
    )
