"""Lesson 05 - integrated gradients: path, quadrature, completeness, patch Shapley."""

import pytest
import torch
from helpers import assert_unchanged, snapshot

from interp_lib import integrated_gradients as ig
from interp_lib.attacks import class_scores
from interp_lib.utils import assert_close, rel_error

CAPTUM_METHODS = ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"]


def score_change(model, x, y, baseline):
    with torch.no_grad():
        return class_scores(model(x), y) - class_scores(model(baseline.expand_as(x)), y)


def ig_by_formula(model, x, y, baseline, alphas, weights):
    """IG with explicit nodes/weights, one node at a time (the independent reference)."""
    total = torch.zeros_like(x)
    for a, w in zip(alphas.tolist(), weights.tolist()):
        p = (baseline + a * (x - baseline)).requires_grad_(True)
        total += w * torch.autograd.grad(class_scores(model(p), y).sum(), p)[0]
    return (x - baseline) * total


# --------------------------------------------------------------------------- quadrature (infrastructure)


def test_quadrature_rules_integrate_polynomials():
    for method in ig.METHODS:
        a, w = ig.quadrature(method, 9)
        assert a.shape == w.shape == (9,) and abs(w.sum().item() - 1) < 1e-12
        if method not in ("riemann_left", "riemann_right"):
            assert abs((w * a).sum().item() - 0.5) < 1e-12  # exact for linear integrands
    a, w = ig.quadrature("riemann_trapezoid", 5)
    assert torch.allclose(a, torch.tensor([0, 0.25, 0.5, 0.75, 1], dtype=torch.float64))
    assert torch.allclose(w, torch.tensor([1 / 8, 1 / 4, 1 / 4, 1 / 4, 1 / 8], dtype=torch.float64))
    a, w = ig.quadrature("gausslegendre", 4)
    assert abs((w * a**7).sum().item() - 1 / 8) < 1e-12  # exact up to degree 2n - 1


# --------------------------------------------------------------------------- 05.1 path


@pytest.mark.exercise("05.1", weight=2)
def test_interpolation_path_endpoints_and_shape(shapes_batch):
    x, _ = shapes_batch
    base = torch.full((1, 3, 32, 32), 0.5)
    alphas = torch.tensor([0.0, 0.25, 1.0])
    p = ig.interpolation_path(x, base, alphas)
    assert p.shape == (3, *x.shape) and p.dtype == x.dtype
    assert torch.equal(p[0], base.expand_as(x))
    assert_close(p[2], x, rtol=1e-7)
    assert_close(p[1], base + 0.25 * (x - base), rtol=1e-7)
    p64 = ig.interpolation_path(x, torch.zeros_like(x), torch.linspace(0, 1, 5, dtype=torch.float64))
    assert p64.dtype == x.dtype and p64.shape == (5, *x.shape)


# --------------------------------------------------------------------------- 05.2 integrated gradients


@pytest.mark.exercise("05.2", weight=2)
def test_ig_matches_the_formula_for_every_rule(shapes_model, shapes_batch):
    x, y = shapes_batch
    base = torch.full_like(x, 0.3)
    for method in ig.METHODS:
        a, w = ig.quadrature(method, 6)
        ours = ig.integrated_gradients(shapes_model, x, y, baseline=base, steps=6, method=method)
        assert ours.shape == x.shape and ours.grad_fn is None
        expected = ig_by_formula(shapes_model, x, y, base, a, w)
        assert_close(ours, expected, rtol=1e-5, what=method, factors={"(x - baseline)": x - base})


@pytest.mark.exercise("05.2", weight=1)
def test_trapezoid_uses_the_unbiased_weights():
    # F(x) = sum x^2 has dF/dx = 2x: along the path from 0, IG_i = x_i^2 exactly with
    # the correct trapezoid (linear integrand); captum's weights would give (1 - 1/n) x_i^2.
    class Square(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(1, 2)

        def forward(self, x):
            s = (x**2).flatten(1).sum(1, keepdim=True)
            return torch.cat([s, -s], 1)

    x = torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    a = ig.integrated_gradients(Square(), x, 0, steps=4, method="riemann_trapezoid")
    assert_close(a, x**2, rtol=1e-6)


@pytest.mark.exercise("05.2", weight=2)
def test_completeness_within_one_percent_at_64_steps(digits_model, shapes_model, digits_test, shapes_test):
    # The median over 16 images: ReLU networks make the integrand piecewise constant, and
    # single images whose score barely changes along the path can exceed 1 % (lesson 05).
    for model, x, y in (
        (digits_model, digits_test[0][:16], digits_test[1][:16]),
        (shapes_model, shapes_test.x[:16], shapes_test.y[:16]),
    ):
        a = ig.integrated_gradients(model, x, y, steps=64, method="gausslegendre")
        change = score_change(model, x, y, torch.zeros_like(x))
        rel = ((a.flatten(1).sum(1) - change).abs() / change.abs()).median().item()
        assert rel < 0.01, rel


@pytest.mark.exercise("05.2", weight=1)
def test_internal_batch_size_changes_memory_not_results(digits_model, digits_batch):
    x, y = digits_batch
    full = ig.integrated_gradients(digits_model, x, y, steps=16)
    for ibs in (1, 4, 9, 1000):
        assert (
            rel_error(ig.integrated_gradients(digits_model, x, y, steps=16, internal_batch_size=ibs), full)
            < 1e-6
        )


@pytest.mark.exercise("05.2", weight=1)
def test_ig_counts_forward_images(digits_model, digits_batch):
    x, y = digits_batch
    sizes = []
    h = digits_model.conv1.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    try:
        ig.integrated_gradients(digits_model, x, y, steps=10, internal_batch_size=12)
    finally:
        h.remove()
    assert sum(sizes) == 10 * len(x) and max(sizes) <= 12


@pytest.mark.reference
@pytest.mark.exercise("05.2", weight=2)
@pytest.mark.parametrize("method", CAPTUM_METHODS)
def test_ig_matches_captum(
    method, digits_model, shapes_model, digits_batch, shapes_batch, resnet, resnet_batch
):
    captum = pytest.importorskip("captum.attr")
    cases = [
        (digits_model, digits_batch, None, 32),
        (shapes_model, shapes_batch, torch.full((1, 3, 32, 32), 0.5), 32),
        (resnet, resnet_batch, None, 8),
    ]
    for model, (x, y), base, steps in cases:
        ours = ig.integrated_gradients(model, x, y, baseline=base, steps=steps, method=method)
        ref = captum.IntegratedGradients(model).attribute(
            x.clone(),
            baselines=None if base is None else base.expand_as(x),
            target=y,
            n_steps=steps,
            method=method,
        )
        assert_close(ours, ref, rtol=1e-5)


# --------------------------------------------------------------------------- 05.3 completeness gap


@pytest.mark.exercise("05.3", weight=2)
def test_completeness_gap(shapes_model, shapes_batch):
    x, y = shapes_batch[0][:3], shapes_batch[1][:3]
    base = torch.full((1, 3, 32, 32), 0.2)
    change = score_change(shapes_model, x, y, base)
    attr = torch.zeros_like(x)
    attr[:, 0, 0, 0] = change + torch.tensor([0.5, -1.0, 0.0])
    gap = ig.completeness_gap(shapes_model, x, y, attr, baseline=base)
    assert gap.shape == (3,) and gap.grad_fn is None
    assert_close(gap, torch.tensor([0.5, -1.0, 0.0]), rtol=1e-5, atol_scale=1e-5)
    gap0 = ig.completeness_gap(shapes_model, x, 1, torch.zeros_like(x))
    assert_close(gap0, -score_change(shapes_model, x, 1, torch.zeros_like(x)))


@pytest.mark.exercise("05.3", weight=1)
def test_completeness_gap_is_detached(shapes_model, shapes_batch):
    x, y = shapes_batch[0][:2], shapes_batch[1][:2]
    attr = torch.full_like(x, 0.01).requires_grad_(True)  # e.g. attributions with a graph
    gap = ig.completeness_gap(shapes_model, x, y, attr)
    assert gap.grad_fn is None and not gap.requires_grad
    assert_close(
        gap,
        attr.detach().flatten(1).sum(1) - score_change(shapes_model, x, y, torch.zeros_like(x)),
        rtol=1e-5,
    )


# --------------------------------------------------------------------------- 05.4 patch shapley (stretch)


@pytest.mark.exercise("05.4", weight=1)
def test_patch_shapley_on_an_additive_model():
    # For a model additive over patches the Shapley value of a patch is its own term.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 3)).eval()
    x = torch.rand(2, 2, 6, 6)
    phi = ig.patch_shapley(model, x, torch.tensor([0, 2]), grid=3)
    assert phi.shape == x.shape
    masks = ig.patch_masks(6, 6, 3)
    w = model[1].weight.detach().view(3, 2, 6, 6)
    for n, c in ((0, 0), (1, 2)):
        for m in masks:
            expected = (w[c] * x[n])[:, m].sum()
            assert abs(phi[n][:, m].sum().item() - expected.item()) < 1e-5


@pytest.mark.exercise("05.4", weight=1)
def test_patch_shapley_efficiency(digits_model, digits_batch):
    x, y = digits_batch
    base = torch.full((1, 1, 28, 28), 0.1)
    phi = ig.patch_shapley(digits_model, x[:2], y[:2], baseline=base, grid=2)
    change = score_change(digits_model, x[:2], y[:2], base)
    assert_close(phi.flatten(1).sum(1), change, rtol=1e-5)


# --------------------------------------------------------------------------- model untouched, bad input


@pytest.mark.parametrize("name", ["integrated_gradients", "patch_shapley"])
def test_model_left_as_it_was(name, digits_model, digits_batch):
    x, y = digits_batch
    digits_model.train()
    digits_model.conv1.bias.requires_grad_(False)
    try:
        before = snapshot(digits_model)
        try:
            getattr(ig, name)(digits_model, x[:1], y[:1])
        except NotImplementedError:
            pass
        assert_unchanged(digits_model, before)
        with pytest.raises(ValueError):
            getattr(ig, name)(digits_model, x, y, baseline=torch.zeros(1, 1, 14, 14))
        assert_unchanged(digits_model, before)
    finally:
        digits_model.conv1.bias.requires_grad_(True)
        digits_model.eval()


def test_bad_input(digits_model, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="baseline"):
        ig.integrated_gradients(digits_model, x, y, baseline=torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="steps"):
        ig.integrated_gradients(digits_model, x, y, steps=0)
    with pytest.raises(ValueError, match="steps"):
        ig.integrated_gradients(digits_model, x, y, steps=1, method="riemann_trapezoid")
    with pytest.raises(TypeError, match="steps"):
        ig.integrated_gradients(digits_model, x, y, steps=2.5)
    with pytest.raises(ValueError, match="method"):
        ig.integrated_gradients(digits_model, x, y, method="simpson")
    with pytest.raises(ValueError, match="target"):
        ig.integrated_gradients(digits_model, x, 10)
    with pytest.raises(ValueError, match="internal_batch_size"):
        ig.integrated_gradients(digits_model, x, y, internal_batch_size=0)
    with pytest.raises(ValueError, match="attributions"):
        ig.completeness_gap(digits_model, x, y, torch.zeros(4, 1, 14, 14))
    with pytest.raises(TypeError, match="alphas"):
        ig.interpolation_path(x, torch.zeros_like(x), [0.0, 1.0])
    with pytest.raises(ValueError, match="grid"):
        ig.patch_shapley(digits_model, x, y, grid=5)
    with pytest.raises(ValueError, match="method"):
        ig.quadrature("simpson", 4)
