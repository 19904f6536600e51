"""Lesson 07: unpooling with switches, the deconvnet walk, guided backprop, occlusion; ReLU converter."""

import collections

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import attribution, deconvnet, models, occlusion
from interp_lib.utils import assert_close

# --------------------------------------------------------------------------- 07.1


@pytest.mark.exercise("07.1", weight=2)
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 0)])
def test_unpool_equals_maxpool_backward(kernel, stride, padding):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 9, 10, generator=g, requires_grad=True)
    y, switches = F.max_pool2d(a, kernel, stride, padding, return_indices=True)
    R = torch.randn(y.shape, generator=g)
    expected = torch.autograd.grad(y, a, R)[0]
    out = deconvnet.unpool_with_switches(R, switches, (9, 10))
    assert out.shape == a.shape
    assert_close(out, expected, rtol=1e-6)


@pytest.mark.exercise("07.1", weight=1)
def test_unpool_places_values_at_switches():
    a = torch.tensor([[[[1.0, 5.0, 0.0, 2.0], [3.0, 4.0, 7.0, 1.0]]]])
    y, switches = F.max_pool2d(a, 2, return_indices=True)
    out = deconvnet.unpool_with_switches(y, switches, (2, 4))
    assert torch.equal(out, torch.tensor([[[[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 7.0, 0.0]]]]))


def test_unpool_bad_input():
    y = torch.zeros(1, 1, 2, 2)
    with pytest.raises(TypeError, match="switches"):
        deconvnet.unpool_with_switches(y, torch.zeros(1, 1, 2, 2), (4, 4))
    with pytest.raises(ValueError, match="size"):
        deconvnet.unpool_with_switches(y, torch.zeros(1, 1, 2, 2, dtype=torch.long), (4,))
    with pytest.raises(ValueError, match="size"):
        deconvnet.unpool_with_switches(y, torch.full((1, 1, 2, 2), 99), (4, 4))


# --------------------------------------------------------------------------- 07.2


@pytest.mark.exercise("07.2", weight=2)
@pytest.mark.parametrize("rule", deconvnet.RULES)
def test_walk_equals_hook_version(shapes_model, shapes_images, rule):
    ours = deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "fc2", 2, rule=rule, start="ones")
    hooked = deconvnet.guided_backprop(shapes_model, shapes_images, 2, rule=rule)
    assert ours.shape == shapes_images.shape and ours.grad_fn is None
    assert_close(ours, hooked, rtol=1e-5)


@pytest.mark.exercise("07.2", weight=1)
def test_walk_on_digits(digits_model, digits_images):
    ours = deconvnet.deconvnet_reconstruction(
        digits_model, digits_images, "fc2", 7, rule="deconvnet", start="ones"
    )
    assert_close(ours, deconvnet.guided_backprop(digits_model, digits_images, 7, rule="deconvnet"), rtol=1e-5)


@pytest.mark.exercise("07.2", weight=2)
def test_walk_feature_map_equals_autograd(shapes_model, shapes_images):
    # starting from a feature map's own activation = backward of sum(A_k * A_k.detach()) under the rule
    class Rectify(torch.autograd.Function):  # ReLU forward, deconvnet backward
        @staticmethod
        def forward(ctx, a):
            return a.clamp(min=0)

        @staticmethod
        def backward(ctx, R):
            return R.clamp(min=0)

    x = shapes_images.clone().requires_grad_(True)
    handles = [
        m.register_forward_hook(lambda m, i, o: Rectify.apply(i[0]))
        for m in shapes_model.modules()
        if isinstance(m, nn.ReLU)
    ]
    try:
        h = x
        for name, m in shapes_model.named_children():
            h = m(h)
            if name == "relu2":
                break
        expected = torch.autograd.grad((h[:, 5] * h[:, 5].detach()).sum(), x)[0]
    finally:
        for hd in handles:
            hd.remove()
    ours = deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "relu2", 5)
    assert_close(ours, expected, rtol=1e-5)


@pytest.mark.exercise("07.2", weight=1)
def test_walk_from_any_layer_leaves_model_unchanged(shapes_model, shapes_images):
    full = deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "conv3", None)
    assert full.shape == shapes_images.shape and full.abs().sum() > 0
    before = snapshot(shapes_model)
    deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "relu1", 3, rule="guided")
    assert_unchanged(shapes_model, before)


def test_walk_bad_input(shapes_model, shapes_images):
    with pytest.raises(ValueError, match="layer"):
        deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "conv9", 0)
    with pytest.raises(ValueError, match="channel"):
        deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "conv1", 16)
    with pytest.raises(ValueError, match="rule"):
        deconvnet.deconvnet_reconstruction(shapes_model, shapes_images, "conv1", 0, rule="lrp")
    with pytest.raises(TypeError, match="model"):
        deconvnet.deconvnet_reconstruction(nn.Sequential(nn.Conv2d(3, 2, 3), nn.Tanh()), shapes_images, "0")


# --------------------------------------------------------------------------- 07.3


@pytest.mark.exercise("07.3", weight=2)
def test_guided_backprop_rules_by_hand():
    # one ReLU between two linear maps: check each rule's formula on a tiny network
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0]]))
        model[3].weight.copy_(torch.tensor([[2.0, -3, 5], [1, 1, 1]]))
    x = torch.tensor([1.0, 2, 3, 4]).view(1, 1, 2, 2)  # ReLU inputs 1, 2, -3
    R = torch.tensor([2.0, -3, 5])
    W1 = model[1].weight
    expected = {
        "gradient": (R * torch.tensor([1.0, 1, 0])) @ W1,
        "deconvnet": R.clamp(min=0) @ W1,
        "guided": (R.clamp(min=0) * torch.tensor([1.0, 1, 0])) @ W1,
    }
    for rule, e in expected.items():
        got = deconvnet.guided_backprop(model, x, 0, rule=rule)
        assert_close(got.flatten(), e, rtol=1e-6, what=rule)


@pytest.mark.exercise("07.3", weight=1)
def test_gradient_rule_is_the_gradient(shapes_model, shapes_images):
    from interp_lib.attacks import input_gradient

    assert_close(
        deconvnet.guided_backprop(shapes_model, shapes_images, 1, rule="gradient"),
        input_gradient(shapes_model, shapes_images, 1),
        rtol=1e-6,
    )


@pytest.mark.exercise("07.3", weight=1)
def test_guided_backprop_leaves_model_unchanged(shapes_model, shapes_images):
    before = snapshot(shapes_model)
    out = deconvnet.guided_backprop(shapes_model, shapes_images, torch.arange(6) % 4)
    assert out.shape == shapes_images.shape and out.grad_fn is None
    assert_unchanged(shapes_model, before)
    relu = shapes_model.relu2
    forward = relu.forward
    relu.forward = lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            deconvnet.guided_backprop(shapes_model, shapes_images, 0)
    finally:
        relu.forward = forward
        del relu.forward
    assert_unchanged(shapes_model, before)


@pytest.mark.exercise("07.3", weight=1)
def test_deconvnet_registered(shapes_model, shapes_images):
    table = attribution.methods()
    assert "deconvnet" in table and "guided_backprop" in table
    assert_close(
        attribution.attribute("deconvnet", shapes_model, shapes_images, 3),
        deconvnet.guided_backprop(shapes_model, shapes_images, 3, rule="deconvnet"),
        rtol=1e-6,
    )


@pytest.mark.reference
@pytest.mark.exercise("07.3", weight=2)
@pytest.mark.parametrize("name", ["digits", "shapes_texture", "shapes_cleverhans"])
def test_guided_and_deconvnet_equal_captum(name, digits_test, shapes_test):
    captum = pytest.importorskip("captum.attr")
    model = models.load_model(name)
    x = digits_test[0][:8] if name == "digits" else shapes_test.x[:8]
    target = models.load_model(name)(x).argmax(1)
    for rule, method in (("guided", captum.GuidedBackprop), ("deconvnet", captum.Deconvolution)):
        with pytest.warns(UserWarning):
            ref = method(model).attribute(x, target=target)
        assert_close(deconvnet.guided_backprop(model, x, target, rule=rule), ref, rtol=1e-6, what=rule)


@pytest.fixture(scope="module")
def vgg_converted():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return models.convert_relus(torchvision.models.vgg16(weights=None).eval())


@pytest.mark.reference
@pytest.mark.exercise("07.3", weight=1)
def test_guided_and_deconvnet_equal_captum_on_vgg16(vgg_converted):
    captum = pytest.importorskip("captum.attr")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for rule, method in (("guided", captum.GuidedBackprop), ("deconvnet", captum.Deconvolution)):
        with pytest.warns(UserWarning):
            ref = method(vgg_converted).attribute(x, target=7)
        assert_close(deconvnet.guided_backprop(vgg_converted, x, 7, rule=rule), ref, rtol=1e-6, what=rule)


def test_guided_backprop_refuses_unconverted_models(shapes_images):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 30 * 30, 2)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).flatten(1))

    reused = nn.ReLU()
    bad = [
        Functional(),
        nn.Sequential(
            nn.Conv2d(3, 4, 3), reused, nn.Conv2d(4, 4, 3), reused, nn.Flatten(), nn.Linear(4 * 28 * 28, 2)
        ),
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 30 * 30, 2)),
    ]
    for model in bad:
        with pytest.raises(ValueError, match="convert_relus"):
            deconvnet.guided_backprop(model, shapes_images, 0)
        converted = models.convert_relus(model)
        models.check_relus(converted)
        with torch.no_grad():
            assert torch.equal(converted(shapes_images), model(shapes_images))
    # another activation: no conversion helps, the layer is named (tests/test_architectures.py: more)
    relu6 = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6(), nn.Flatten(), nn.Linear(4 * 30 * 30, 2))
    for rule in ("guided", "deconvnet"):
        with pytest.raises(ValueError, match=r"`1` \(nn\.ReLU6\)"):
            deconvnet.guided_backprop(relu6, shapes_images, 0, rule=rule)


def test_guided_backprop_bad_input(shapes_model, shapes_images):
    with pytest.raises(ValueError, match="rule"):
        deconvnet.guided_backprop(shapes_model, shapes_images, 0, rule="lrp")
    with pytest.raises(ValueError, match="target"):
        deconvnet.guided_backprop(shapes_model, shapes_images, 4)


# --------------------------------------------------------------------------- converter


@pytest.mark.parametrize("arch", ["resnet18", "googlenet"])
def test_convert_relus_torchvision(arch):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    if arch == "resnet18":
        model = torchvision.models.resnet18(weights=None).eval()
    else:
        model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    params = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"interp_lib\.models\.convert_relus"):
        models.check_relus(model)
    converted = models.convert_relus(model)
    with torch.no_grad():
        assert torch.equal(converted(x), model(x))
    assert not converted.training
    # every ReLU a separate, non-in-place module, called once; no functional ReLU left
    graph = torch.fx.symbolic_trace(converted).graph
    calls = collections.Counter(
        n.target
        for n in graph.nodes
        if n.op == "call_module" and isinstance(converted.get_submodule(n.target), nn.ReLU)
    )
    assert calls and max(calls.values()) == 1
    relus = [m for m in converted.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == len(calls) == len({id(m) for m in relus})
    assert not any(m.inplace for m in relus)
    assert not any(n.op == "call_function" and "relu" in str(n.target) for n in graph.nodes)
    models.check_relus(converted)
    # the original is untouched
    assert all(torch.equal(v, params[k]) for k, v in model.state_dict().items())
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()) or arch == "googlenet"
    with pytest.raises(ValueError, match="convert_relus"):
        deconvnet.guided_backprop(model, x, 0)


# --------------------------------------------------------------------------- 07.4


@pytest.mark.exercise("07.4", weight=2)
def test_occlusion_by_hand():
    # a linear "model": the score is the sum of pixels; occluding a window with 0 drops it by
    # the window's sum, and each pixel gets the mean over the windows covering it
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1, bias=False))
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = occlusion.occlusion(model, x, 0, window=2, stride=2, baseline=0.0)
    expected = F.avg_pool2d(x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3) * 4
    assert_close(out, expected, rtol=1e-6)


@pytest.mark.exercise("07.4", weight=1)
def test_occlusion_leaves_model_unchanged(shapes_model, shapes_images):
    before = snapshot(shapes_model)
    out = occlusion.occlusion(shapes_model, shapes_images[:2], 1, window=8, stride=8)
    assert out.shape == shapes_images[:2].shape
    assert torch.equal(out[:, 0], out[:, 2])
    assert_unchanged(shapes_model, before)


@pytest.mark.reference
@pytest.mark.exercise("07.4", weight=2)
@pytest.mark.parametrize("window,stride,baseline", [(4, 2, 0.5), (5, 2, 0.0), ((3, 6), (3, 4), 0.3)])
def test_occlusion_equals_captum(shapes_model, shapes_test, window, stride, baseline):
    captum = pytest.importorskip("captum.attr")
    x = shapes_test.x[:3]
    target = torch.tensor([0, 1, 3])
    w = (window, window) if isinstance(window, int) else window
    s = (stride, stride) if isinstance(stride, int) else stride
    ref = captum.Occlusion(shapes_model).attribute(
        x, sliding_window_shapes=(3, *w), strides=(3, *s), baselines=baseline, target=target
    )
    ours = occlusion.occlusion(
        shapes_model, x, target, window=window, stride=stride, baseline=baseline, batch_size=100
    )
    assert_close(ours, ref, rtol=1e-5)


@pytest.mark.reference
@pytest.mark.exercise("07.4", weight=1)
def test_occlusion_equals_captum_digits_tensor_baseline(digits_model, digits_test):
    captum = pytest.importorskip("captum.attr")
    x = digits_test[0][:2]
    base = torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    ref = captum.Occlusion(digits_model).attribute(
        x, sliding_window_shapes=(1, 7, 7), strides=(1, 7, 7), baselines=base, target=3
    )
    assert_close(occlusion.occlusion(digits_model, x, 3, window=7, stride=7, baseline=base), ref, rtol=1e-5)


def test_occlusion_bad_input(shapes_model, shapes_images):
    with pytest.raises(ValueError, match="window"):
        occlusion.occlusion(shapes_model, shapes_images, 0, window=33)
    with pytest.raises(ValueError, match="stride"):
        occlusion.occlusion(shapes_model, shapes_images, 0, window=4, stride=5)
    with pytest.raises(TypeError, match="window"):
        occlusion.occlusion(shapes_model, shapes_images, 0, window=2.5)
    with pytest.raises(ValueError, match="baseline"):
        occlusion.occlusion(shapes_model, shapes_images, 0, baseline=torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="target"):
        occlusion.occlusion(shapes_model, shapes_images, 9)
