"""Lesson 04 - gradients as sensitivity: saliency, input x gradient, SmoothGrad, Grad-CAM."""

import pytest
import torch
from helpers import assert_unchanged, reference_grad_cam, snapshot

from interp_lib import gradients
from interp_lib.attacks import class_scores
from interp_lib.utils import assert_close

# --------------------------------------------------------------------------- helpers


def numeric_grad(model, x, target, idx, h=1e-3):
    """Central difference of the class score along one input element."""
    e = torch.zeros_like(x)
    e.view(-1)[idx] = h
    with torch.no_grad():
        up = class_scores(model(x + e), target)
        down = class_scores(model(x - e), target)
    return ((up - down) / (2 * h)).sum().item()


# --------------------------------------------------------------------------- 04.1 saliency


@pytest.mark.exercise("04.1", weight=2)
def test_saliency_is_channel_max_of_abs_gradient(shapes_model, shapes_batch):
    x, y = shapes_batch
    x0 = x.clone()
    m = gradients.saliency_map(shapes_model, x, y)
    assert m.shape == (len(x), 1, *x.shape[-2:])
    assert m.grad_fn is None and (m >= 0).all()
    assert torch.equal(x, x0)
    # against a direct autograd computation
    xr = x.clone().requires_grad_(True)
    g = torch.autograd.grad(class_scores(shapes_model(xr), y).sum(), xr)[0]
    assert_close(m, g.abs().amax(1, keepdim=True))


@pytest.mark.exercise("04.1", weight=1)
def test_saliency_matches_finite_differences(shapes_model, shapes_batch):
    # textured images: no max-pool ties, so the piecewise-linear score is smooth nearby
    import copy

    model = copy.deepcopy(shapes_model).double()
    x, y = shapes_batch[0][:1].double(), shapes_batch[1][:1]
    m = gradients.saliency_map(model, x, y)
    for i, j in ((5, 7), (16, 16), (30, 2)):
        fd = max(abs(numeric_grad(model, x, y, c * 1024 + i * 32 + j, 1e-6)) for c in range(3))
        assert abs(m[0, 0, i, j].item() - fd) < 1e-4 * max(1.0, fd)


@pytest.mark.reference
@pytest.mark.exercise("04.1", weight=1)
def test_saliency_matches_captum(
    digits_model, shapes_model, digits_batch, shapes_batch, resnet, resnet_batch
):
    captum = pytest.importorskip("captum.attr")
    for model, (x, y) in ((digits_model, digits_batch), (shapes_model, shapes_batch), (resnet, resnet_batch)):
        ours = gradients.saliency_map(model, x, y)
        ref = captum.Saliency(model).attribute(x.clone(), target=y, abs=True).amax(1, keepdim=True)
        assert_close(ours, ref, rtol=1e-5)


# --------------------------------------------------------------------------- 04.2 input x gradient


@pytest.mark.exercise("04.2", weight=1)
def test_input_x_gradient_is_complete_for_bias_free_linear():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3, bias=False)).eval()
    x = torch.rand(2, 3, 2, 2)
    a = gradients.input_x_gradient(model, x, torch.tensor([0, 2]))
    assert a.shape == x.shape and a.grad_fn is None
    with torch.no_grad():
        assert_close(a.flatten(1).sum(1), class_scores(model(x), torch.tensor([0, 2])))


@pytest.mark.reference
@pytest.mark.exercise("04.2", weight=1)
def test_input_x_gradient_matches_captum(
    digits_model, shapes_model, digits_batch, shapes_batch, resnet, resnet_batch
):
    captum = pytest.importorskip("captum.attr")
    for model, (x, y) in ((digits_model, digits_batch), (shapes_model, shapes_batch), (resnet, resnet_batch)):
        ours = gradients.input_x_gradient(model, x, y)
        ref = captum.InputXGradient(model).attribute(x.clone(), target=y)
        assert_close(ours, ref, rtol=1e-5)


# --------------------------------------------------------------------------- 04.3 smoothgrad


@pytest.mark.exercise("04.3", weight=2)
def test_smoothgrad_follows_the_documented_draw(shapes_model, shapes_batch):
    x, y = shapes_batch
    sg = gradients.smoothgrad(
        shapes_model, x, y, n_samples=4, sigma=0.1, generator=torch.Generator().manual_seed(3)
    )
    assert sg.shape == x.shape and sg.grad_fn is None
    eps = torch.randn((4, *x.shape), generator=torch.Generator().manual_seed(3)) * 0.1
    expected = torch.zeros_like(x)
    for s in range(4):
        xr = (x + eps[s]).requires_grad_(True)
        expected += torch.autograd.grad(class_scores(shapes_model(xr), y).sum(), xr)[0] / 4
    assert_close(sg, expected, rtol=1e-5)


@pytest.mark.exercise("04.3", weight=1)
def test_smoothgrad_sigma_zero_is_the_gradient_and_reproducible(digits_model, digits_batch):
    x, y = digits_batch
    sg = gradients.smoothgrad(
        digits_model, x, 3, n_samples=2, sigma=0.0, generator=torch.Generator().manual_seed(0)
    )
    xr = x.clone().requires_grad_(True)
    g = torch.autograd.grad(class_scores(digits_model(xr), 3).sum(), xr)[0]
    assert_close(sg, g)
    a = gradients.smoothgrad(digits_model, x, y, n_samples=3, generator=torch.Generator().manual_seed(5))
    b = gradients.smoothgrad(digits_model, x, y, n_samples=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.reference
@pytest.mark.exercise("04.3", weight=1)
def test_smoothgrad_matches_captum_noise_tunnel_with_identical_noise(
    monkeypatch, digits_model, shapes_model, digits_batch, shapes_batch, resnet, resnet_batch
):
    captum = pytest.importorskip("captum.attr")
    from captum.attr._core.noise_tunnel import NoiseTunnel

    for model, (x, y), n, sigma in (
        (digits_model, digits_batch, 5, 0.2),
        (shapes_model, shapes_batch, 4, 0.1),
        (resnet, resnet_batch, 2, 0.15),
    ):
        ours = gradients.smoothgrad(
            model, x, y, n_samples=n, sigma=sigma, generator=torch.Generator().manual_seed(0)
        )
        eps = torch.randn((n, *x.shape), generator=torch.Generator().manual_seed(0)) * sigma
        # captum repeats each image n times in a row (repeat_interleave) and adds torch.normal
        # noise: feed it our noise in its layout instead.
        monkeypatch.setattr(
            NoiseTunnel,
            "_add_noise_to_input",
            staticmethod(
                lambda inp, stdev, k, eps=eps: (
                    inp.repeat_interleave(k, 0) + eps.transpose(0, 1).reshape(-1, *inp.shape[1:])
                )
            ),
        )
        ref = NoiseTunnel(captum.Saliency(model)).attribute(
            x.clone(), nt_type="smoothgrad", nt_samples=n, stdevs=sigma, target=y, abs=False
        )
        assert_close(ours, ref, rtol=1e-5)


# --------------------------------------------------------------------------- 04.4 grad-cam


@pytest.mark.exercise("04.4", weight=2)
def test_grad_cam_formula_and_default_layer(shapes_model, shapes_batch):
    x, y = shapes_batch
    before = snapshot(shapes_model)
    cam = gradients.grad_cam(shapes_model, x, y, layer="relu3")
    assert cam.shape == (len(x), 1, 32, 32) and cam.grad_fn is None and (cam >= 0).all()
    assert_close(cam, reference_grad_cam(shapes_model, x, y, "relu3"))
    default = gradients.grad_cam(shapes_model, x, y)
    assert_close(default, reference_grad_cam(shapes_model, x, y, "conv3"))
    assert_unchanged(shapes_model, before)


@pytest.mark.exercise("04.4", weight=1)
def test_grad_cam_removes_its_hook_when_the_layer_is_not_a_feature_map(digits_model, digits_batch):
    x, y = digits_batch
    before = snapshot(digits_model)
    with pytest.raises(ValueError, match="feature map"):
        gradients.grad_cam(digits_model, x, y, layer="fc1")
    assert_unchanged(digits_model, before)
    assert all(not m._forward_hooks for m in digits_model.modules())
    cam = gradients.grad_cam(digits_model, x, y, layer="conv2")
    assert cam.shape == (len(x), 1, 28, 28)


@pytest.mark.reference
@pytest.mark.exercise("04.4", weight=1)
def test_grad_cam_matches_captum_upsampled(
    digits_model, shapes_model, digits_batch, shapes_batch, resnet, resnet_batch
):
    captum = pytest.importorskip("captum.attr")
    # resnet18 "bn1", "layer3.0.bn2": outputs that an in-place ReLU / `out += identity` then changes
    for model, (x, y), layer in (
        (digits_model, digits_batch, "relu2"),
        (shapes_model, shapes_batch, "conv3"),
        (resnet, resnet_batch, "layer4"),
        (resnet, resnet_batch, "bn1"),
        (resnet, resnet_batch, "layer3.0.bn2"),
    ):
        ours = gradients.grad_cam(model, x, y, layer=layer)
        lay = captum.LayerGradCam(model, model.get_submodule(layer)).attribute(
            x.clone(), target=y, relu_attributions=True
        )
        ref = captum.LayerAttribution.interpolate(lay, x.shape[-2:], "bilinear")
        assert_close(ours, ref, rtol=1e-5)


# --------------------------------------------------------------------------- model untouched, bad input


@pytest.mark.parametrize("name", ["saliency_map", "input_x_gradient", "smoothgrad", "grad_cam"])
def test_model_left_as_it_was(name, shapes_model, shapes_batch):
    x, y = shapes_batch
    shapes_model.train()
    shapes_model.fc1.weight.requires_grad_(False)
    try:
        before = snapshot(shapes_model)
        try:
            getattr(gradients, name)(shapes_model, x, y)
        except NotImplementedError:
            pass
        assert_unchanged(shapes_model, before)
        with pytest.raises((ValueError, TypeError)):
            getattr(gradients, name)(shapes_model, x, 99)
        assert_unchanged(shapes_model, before)
    finally:
        shapes_model.fc1.weight.requires_grad_(True)
        shapes_model.eval()


def test_bad_input(shapes_model, shapes_batch):
    x, y = shapes_batch
    with pytest.raises(ValueError, match="target"):
        gradients.saliency_map(shapes_model, x, 4)
    with pytest.raises(ValueError, match="x"):
        gradients.input_x_gradient(shapes_model, x[0], y[0])
    with pytest.raises(ValueError, match="sigma"):
        gradients.smoothgrad(shapes_model, x, y, sigma=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        gradients.smoothgrad(shapes_model, x, y, n_samples=0)
    with pytest.raises(TypeError, match="generator"):
        gradients.smoothgrad(shapes_model, x, y, generator=0)
    with pytest.raises(ValueError, match="layer.*conv1") as err:
        gradients.grad_cam(shapes_model, x, y, layer="conv9")
    assert "relu3" in str(err.value)
    with pytest.raises(TypeError, match="layer"):
        gradients.grad_cam(shapes_model, x, y, layer=3)


def test_registered_as_attribution_methods():
    from interp_lib.attribution import methods

    assert {"saliency_map", "input_x_gradient", "smoothgrad", "grad_cam"} <= set(methods())
