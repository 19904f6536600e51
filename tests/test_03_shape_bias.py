"""Lesson 03: cue_conflict, shape_bias, linear_probe."""

import math

import pytest
import torch

from interp_lib import data
from interp_lib import shape_bias as sb
from interp_lib.models import load_model


@pytest.fixture(scope="module")
def conflict_val():
    return data.load_shapes("val", cue_conflict=True, texture_rate=1.0)


@pytest.fixture(scope="module")
def parts():
    return sb.shape_parts(64, seed=3)


@pytest.fixture(scope="module")
def probe_data():
    return (
        data.load_shapes("train", n=400, texture_rate=1.0),
        data.load_shapes("test", n=300, texture_rate=1.0),
    )


def hook_counts(model):
    return [
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    ]


# --------------------------------------------------------------------------- 03.1 cue_conflict


@pytest.mark.exercise("03.1", weight=2)
def test_cue_conflict_composes_and_draws_as_specified(parts):
    images, texture = sb.cue_conflict(
        parts.masks, parts.shape, parts.textures, parts.background, torch.Generator().manual_seed(5)
    )
    n, k = parts.textures.shape[:2]
    offset = torch.randint(1, k, (n,), generator=torch.Generator().manual_seed(5))
    expected_tex = (parts.shape + offset) % k
    assert texture.dtype == torch.int64 and torch.equal(texture, expected_tex)
    assert (texture != parts.shape).all()
    fills = parts.textures[torch.arange(n), expected_tex]
    expected = parts.masks * fills + (1 - parts.masks) * parts.background
    assert images.shape == (n, 3, 32, 32)
    torch.testing.assert_close(images, expected)


@pytest.mark.exercise("03.1", weight=1)
def test_cue_conflict_images_fool_the_texture_model():
    p = sb.shape_parts(400, seed=4)
    images, texture = sb.cue_conflict(
        p.masks, p.shape, p.textures, p.background, torch.Generator().manual_seed(0)
    )
    counts = sb.decision_counts(load_model("shapes_texture"), images, p.shape, texture)
    assert counts["texture"] > counts["shape"], counts


# --------------------------------------------------------------------------- 03.2 shape_bias


@pytest.mark.exercise("03.2", weight=2)
def test_shape_bias_of_shipped_models(conflict_val):
    texture_model, shape_model = load_model("shapes_texture"), load_model("shapes_shape")
    low = sb.shape_bias(texture_model, conflict_val.x, conflict_val.shape, conflict_val.texture)
    high = sb.shape_bias(shape_model, conflict_val.x, conflict_val.shape, conflict_val.texture)
    assert isinstance(low, float) and isinstance(high, float)
    assert low < 0.3, low
    assert high > 0.5, high


@pytest.mark.exercise("03.2", weight=1)
def test_shape_bias_counts_only_shape_and_texture_decisions():
    # a fixed "model" that always answers class 0
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 4))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    x = torch.rand(6, 3, 4, 4)
    shape = torch.tensor([0, 0, 1, 2, 3, 1])
    texture = torch.tensor([1, 2, 0, 0, 2, 3])
    # shape hits: 2 (rows 0, 1); texture hits: 2 (rows 2, 3); neither: 2
    assert sb.shape_bias(model, x, shape, texture) == pytest.approx(0.5)
    assert math.isnan(sb.shape_bias(model, x[4:], shape[4:], texture[4:]))
    before = hook_counts(model)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert hook_counts(model) == before


# --------------------------------------------------------------------------- 03.3 linear_probe


@pytest.mark.exercise("03.3", weight=2)
def test_linear_probe_reads_shape_late_in_the_shape_model(probe_data):
    train, test = probe_data
    model = load_model("shapes_shape")
    before = hook_counts(model)
    late = sb.linear_probe(model, "relu4", train.x, train.shape, test.x, test.shape)
    texture_late = sb.linear_probe(model, "relu4", train.x, train.texture, test.x, test.texture)
    assert late > 0.8, late
    assert late > texture_late + 0.3
    assert hook_counts(model) == before, "a forward hook was left behind"


@pytest.mark.exercise("03.3", weight=1)
def test_linear_probe_reads_texture_in_the_texture_model(probe_data):
    train, test = probe_data
    model = load_model("shapes_texture")
    acc = sb.linear_probe(model, "relu4", train.x, train.texture, test.x, test.texture)
    assert acc > 0.6, acc


@pytest.mark.exercise("03.3", weight=2)
def test_linear_probe_matches_closed_form(probe_data):
    train, test = probe_data
    model = load_model("shapes_mixed")
    a_tr = sb.layer_activations(model, "pool3", train.x[:200]).double()
    a_te = sb.layer_activations(model, "pool3", test.x[:100]).double()
    mu, sd = a_tr.mean(0), a_tr.std(0, unbiased=False).clamp_min(1e-6)
    z_tr, z_te = (a_tr - mu) / sd, (a_te - mu) / sd
    y = torch.nn.functional.one_hot(train.shape[:200], 4).double()
    ridge = 5.0
    w = torch.linalg.solve(
        z_tr.T @ z_tr + ridge * torch.eye(z_tr.shape[1], dtype=torch.float64), z_tr.T @ (y - y.mean(0))
    )  # the primal form
    expected = ((z_te @ w + y.mean(0)).argmax(1) == test.shape[:100]).double().mean().item()
    got = sb.linear_probe(
        model, "pool3", train.x[:200], train.shape[:200], test.x[:100], test.shape[:100], ridge=ridge
    )
    assert got == pytest.approx(expected, abs=0.011)
    again = sb.linear_probe(
        model, "pool3", train.x[:200], train.shape[:200], test.x[:100], test.shape[:100], ridge=ridge
    )
    assert again == got


def _feature_model():
    """A "network" whose layer ``flat`` outputs the two pixels of a 1x1x2 image: the
    activations are whatever the test writes into the images."""
    import collections

    return torch.nn.Sequential(
        collections.OrderedDict([("flat", torch.nn.Flatten()), ("fc", torch.nn.Linear(2, 2))])
    )


def _images(features):
    return torch.tensor(features, dtype=torch.float32).view(-1, 1, 1, 2)


@pytest.mark.exercise("03.3", weight=2)
def test_linear_probe_worked_cases():
    model = _feature_model()
    # (a) standardise the test set with the *training* statistics: every test image sits at
    # the class-1 training point, so the probe says 1; the test set's own statistics
    # would move it to the centre, where the balanced intercept ties (argmax -> class 0)
    train = _images([[-1, 0.5], [-1, -0.5], [-1, 0.5], [-1, -0.5], [1, 0.5], [1, -0.5], [1, 0.5], [1, -0.5]])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    test = _images([[1, 0.5]] * 4)
    assert sb.linear_probe(model, "flat", train, y, test, torch.ones(4, dtype=torch.int64), ridge=1.0) == 1.0
    # (b) the intercept b = mean(Y) and the ridge: 6 of 8 training images are class 1 and the
    # feature separates the classes; test images look like class 0. A huge ridge leaves
    # W ~ 0, so the prediction is the majority class from b; a small ridge follows the feature
    train = _images([[1, 0]] * 6 + [[-1, 0]] * 2)
    y = torch.tensor([1] * 6 + [0] * 2)
    test, y_test = _images([[-1, 0]] * 2), torch.ones(2, dtype=torch.int64)
    assert sb.linear_probe(model, "flat", train, y, test, y_test, ridge=1e6) == 1.0
    assert sb.linear_probe(model, "flat", train, y, test, y_test, ridge=1e-3) == 0.0


def test_linear_probe_removes_its_hook_when_it_raises(probe_data):
    train, test = probe_data
    model = load_model("shapes_shape")
    before = hook_counts(model)
    with pytest.raises(RuntimeError):
        sb.layer_activations(model, "relu4", torch.rand(2, 1, 32, 32))  # wrong channels
    assert hook_counts(model) == before


# --------------------------------------------------------------------------- bad input


def test_bad_inputs(conflict_val, parts, probe_data):
    model = load_model("shapes_texture")
    v = conflict_val
    with pytest.raises(ValueError, match="texture"):
        sb.shape_bias(model, v.x, v.shape, v.shape)  # no conflict
    with pytest.raises(ValueError, match="x"):
        sb.shape_bias(model, v.x * 3, v.shape, v.texture)
    with pytest.raises(ValueError, match="shape"):
        sb.shape_bias(model, v.x, v.shape[:5], v.texture)
    with pytest.raises(TypeError, match="texture"):
        sb.shape_bias(model, v.x, v.shape, v.texture.float())
    with pytest.raises(ValueError, match="masks"):
        sb.cue_conflict(parts.masks[:, 0], parts.shape, parts.textures, parts.background)
    with pytest.raises(ValueError, match="textures"):
        sb.cue_conflict(parts.masks, parts.shape, parts.textures[:5], parts.background)
    with pytest.raises(ValueError, match="background"):
        sb.cue_conflict(parts.masks, parts.shape, parts.textures, parts.background[:, :, :5])
    train, test = probe_data
    with pytest.raises(ValueError, match="layer"):
        sb.linear_probe(model, "conv9", train.x, train.shape, test.x, test.shape)
    with pytest.raises(ValueError, match="ridge"):
        sb.linear_probe(model, "pool2", train.x, train.shape, test.x, test.shape, ridge=-1.0)
    with pytest.raises(ValueError, match="y_test"):
        sb.linear_probe(model, "pool2", train.x, train.shape, test.x, test.shape[:3])
