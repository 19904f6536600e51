"""Bad calls to the public functions get a clear TypeError/ValueError naming the argument
(issue 12, section 2), and the checks behind them let every valid call through.

The wrapper-level checks run before either body, so each bad call of the first part is
run twice: with the reference bodies and with the students' stubs (a stub would raise
NotImplementedError if a check let the call through). Checks that can only fire where
the body calls the model (a model returning a tuple, with an explicit target) are tested
on the reference bodies. None of these tests is an exercise test: they pass on stubs.
"""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest
import torch
from torch import nn

from interp_lib import attacks, basics, evaluation, exercises, featvis, gradients, occlusion
from interp_lib import integrated_gradients as ig
from interp_lib import lrp as L
from interp_lib.exercises import exercise

BODIES = {"solutions": "all", "stubs": "none"}


@pytest.fixture(params=sorted(BODIES))
def bodies(request, monkeypatch):
    """Run a test with the reference bodies, then with the stubs."""
    monkeypatch.setenv(exercises.ENV_VAR, BODIES[request.param])
    return request.param


@pytest.fixture
def solutions(monkeypatch):
    monkeypatch.setenv(exercises.ENV_VAR, "all")


class Tuple(nn.Module):
    """A classifier that returns ``(logits, features)``, as many real models do."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x), x


class Grey2RGB(nn.Module):
    """A custom forward that repeats a grey channel before a 3-channel network: the
    first registered layer does not see the model's input, so no channel check may fire."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x.expand(-1, 3, -1, -1))).flatten(1))


@pytest.fixture(scope="module")
def m(digits_model, shapes_model, digits_batch, shapes_batch):
    """The models and images the bad calls use."""
    return types.SimpleNamespace(
        digits=digits_model,
        shapes_model=shapes_model,
        x=digits_batch[0][:3].clone(),
        y=digits_batch[1][:3].clone(),
        xs=shapes_batch[0][:2].clone(),
        ys=shapes_batch[1][:2].clone(),
    )


# --------------------------------------------------------------------------- wrapper-level bad calls


def _wrapper_cases():
    """(id, call(m), error, match): every bad call whose check runs before either body."""
    return [
        # x in another dtype than the model's parameters
        (
            "x-float64-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x.double(), m.y),
            TypeError,
            r"`x` is float64 but the model's parameters are float32; use x\.float\(\)",
        ),
        (
            "x-float16-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x.half(), m.y),
            TypeError,
            r"`x` is float16 but the model's parameters are float32; use x\.float\(\)",
        ),
        ("x-float64-predict", lambda m: basics.predict(m.digits, m.x.double()), TypeError, r"`x` is float64"),
        (
            "x-float64-ig",
            lambda m: ig.integrated_gradients(m.digits, m.x.double(), m.y, steps=4),
            TypeError,
            r"`x` is float64",
        ),
        ("x-float64-fgsm", lambda m: attacks.fgsm(m.digits, m.x.double(), m.y), TypeError, r"`x` is float64"),
        ("x-float64-lrp", lambda m: L.lrp(m.digits, m.x.double(), m.y), TypeError, r"`x` is float64"),
        (
            "x-float16-occlusion",
            lambda m: occlusion.occlusion(m.digits, m.x.half(), m.y),
            TypeError,
            r"`x` is float16",
        ),
        (
            "x-long-fgsm",
            lambda m: attacks.fgsm(m.digits, (m.x * 255).long(), m.y),
            TypeError,
            r"`x` must be a floating-point tensor",
        ),
        # x on another device than the model's
        (
            "x-meta-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x.to("meta"), m.y),
            ValueError,
            r"`x` is on meta but the model's parameters are on cpu; use x\.to\('cpu'\)",
        ),
        ("x-meta-predict", lambda m: basics.predict(m.digits, m.x.to("meta")), ValueError, r"`x` is on meta"),
        ("x-meta-lrp", lambda m: L.lrp(m.digits, m.x.to("meta")), ValueError, r"`x` is on meta"),
        # x with the wrong number of channels / values for the first layer
        (
            "x-3-channels-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x.expand(-1, 3, -1, -1), m.y),
            ValueError,
            r"`x` images have 3 channels but the model's first layer `conv1` \(nn\.Conv2d\) takes 1",
        ),
        (
            "x-1-channel-shapes",
            lambda m: gradients.grad_cam(m.shapes_model, m.xs[:, :1], m.ys),
            ValueError,
            r"`x` images have 1 channel but .* takes 3",
        ),
        (
            "x-3-channels-predict",
            lambda m: basics.predict(m.digits, m.x.expand(-1, 3, -1, -1)),
            ValueError,
            r"`x` images have 3 channels",
        ),
        (
            "x-values-flatten-linear",
            lambda m: gradients.saliency_map(
                nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), torch.rand(2, 1, 3, 3), 0
            ),
            ValueError,
            r"`x` images have C\*H\*W = 1\*3\*3 = 9 values but .* `1` \(nn\.Linear\) takes 4",
        ),
        # an empty batch
        (
            "x-empty-predict",
            lambda m: basics.predict(m.digits, m.x[:0]),
            ValueError,
            r"`x` is an empty batch",
        ),
        # a model that returns a tuple: with target=None the wrapper's own forward meets it
        (
            "model-tuple-saliency-none",
            lambda m: gradients.saliency_map(Tuple(m.digits), m.x, None),
            TypeError,
            r"`model` must return a tensor of logits \(N, K\), but it returned a tuple",
        ),
        (
            "model-tuple-lrp-default",
            lambda m: L.lrp(Tuple(m.digits), m.x),
            TypeError,
            r"`model` must return a tensor",
        ),
        (
            "model-tuple-ig-none",
            lambda m: ig.integrated_gradients(Tuple(m.digits), m.x, None, steps=4),
            TypeError,
            r"`model` must return a tensor",
        ),
        # baselines in another dtype than x
        (
            "baseline-float64-ig",
            lambda m: ig.integrated_gradients(
                m.digits, m.x, m.y, baseline=torch.zeros_like(m.x, dtype=torch.float64)
            ),
            TypeError,
            r"`baseline` is float64 but `x` is float32; use baseline\.to\(x\.dtype\)",
        ),
        (
            "baseline-float64-path",
            lambda m: ig.interpolation_path(m.x, torch.zeros_like(m.x).double(), torch.linspace(0, 1, 3)),
            TypeError,
            r"`baseline` is float64",
        ),
        (
            "baseline-float64-occlusion",
            lambda m: occlusion.occlusion(m.digits, m.x, m.y, baseline=torch.zeros_like(m.x).double()),
            TypeError,
            r"`baseline` is float64",
        ),
        (
            "baseline-float64-gap",
            lambda m: ig.completeness_gap(
                m.digits, m.x, m.y, torch.zeros_like(m.x), baseline=torch.zeros_like(m.x).double()
            ),
            TypeError,
            r"`baseline` is float64",
        ),
        # activation_maximisation with a start (or shape) the model cannot take
        (
            "start-1-channel-am",
            lambda m: featvis.activation_maximisation(
                m.shapes_model, "conv1", 0, start=torch.rand(1, 1, 32, 32), steps=2
            ),
            ValueError,
            r"`start` images have 1 channel but the model's first layer `conv1` \(nn\.Conv2d\) takes 3",
        ),
        (
            "start-28px-am-channel",
            lambda m: featvis.activation_maximisation(
                m.shapes_model, "conv1", 0, start=torch.rand(1, 3, 28, 28), steps=2
            ),
            ValueError,
            r"`start` has images of shape \(3, 28, 28\), which the model cannot take",
        ),
        (
            "start-28px-am-deepdream",
            lambda m: featvis.activation_maximisation(
                m.shapes_model, "relu2", None, start=torch.rand(1, 3, 28, 28), steps=2
            ),
            ValueError,
            r"`start` has images of shape \(3, 28, 28\), which the model cannot take",
        ),
        (
            "shape-28px-am",
            lambda m: featvis.activation_maximisation(m.shapes_model, "fc2", 1, shape=(3, 28, 28), steps=2),
            ValueError,
            r"`shape` is \(3, 28, 28\), which the model cannot take",
        ),
        (
            "start-float64-am",
            lambda m: featvis.activation_maximisation(
                m.shapes_model, "conv1", 0, start=torch.rand(1, 3, 32, 32, dtype=torch.float64), steps=2
            ),
            TypeError,
            r"`start` is float64 but the model's parameters are float32; use start\.float\(\)",
        ),
        (
            "start-vs-shape-am",
            lambda m: featvis.activation_maximisation(
                m.shapes_model, "conv1", 0, start=torch.rand(1, 3, 32, 32), shape=(3, 16, 16), steps=2
            ),
            ValueError,
            r"`start` has images of shape \(3, 32, 32\) but `shape` is \(3, 16, 16\)",
        ),
        # lrp_layer / zb_rule with an input the layer cannot take
        (
            "a-features-lrp-layer",
            lambda m: L.lrp_layer(nn.Linear(10, 3), torch.rand(2, 5), torch.rand(2, 3)),
            ValueError,
            r"`a` has 5 features \(shape \(2, 5\)\) but the layer Linear\(.*\) takes 10",
        ),
        (
            "a-channels-lrp-layer",
            lambda m: L.lrp_layer(nn.Conv2d(3, 4, 3), torch.rand(1, 1, 8, 8), torch.rand(1, 4, 6, 6)),
            ValueError,
            r"`a` has 1 channel \(shape .* takes 3",
        ),
        (
            "a-features-zb-rule",
            lambda m: L.zb_rule(nn.Linear(10, 3), torch.rand(2, 5), torch.rand(2, 3), low=0.0, high=1.0),
            ValueError,
            r"`a` has 5 features",
        ),
        # sanity_check that would randomise nothing
        (
            "model-no-parameters-sanity",
            lambda m: evaluation.sanity_check(nn.Sequential(nn.Flatten()), m.x, 0, gradients.saliency_map),
            ValueError,
            r"`model` has no layer with parameters",
        ),
        (
            "layers-empty-sanity",
            lambda m: evaluation.sanity_check(m.digits, m.x, m.y, gradients.saliency_map, layers=[]),
            ValueError,
            r"`layers` is empty",
        ),
        # target=None where a predicted class means nothing
        (
            "target-none-targeted-fgsm",
            lambda m: attacks.fgsm(m.digits, m.x, None, targeted=True),
            ValueError,
            r"`target` is None .* `targeted=True` needs the classes",
        ),
        (
            "target-none-targeted-pgd",
            lambda m: attacks.pgd(m.digits, m.x, None, targeted=True, steps=1),
            ValueError,
            r"`target` is None",
        ),
        (
            "target-none-patch",
            lambda m: attacks.adversarial_patch(m.digits, m.x, None, steps=1),
            ValueError,
            r"`target` must be the class the patch should cause",
        ),
        (
            "target-tensor-patch",
            lambda m: attacks.adversarial_patch(m.digits, m.x, m.y, steps=1),
            TypeError,
            r"`target` must be one class",
        ),
        # targets that are not class indices (NumPy included)
        (
            "target-np-float",
            lambda m: gradients.saliency_map(m.digits, m.x, np.array([0.0, 1.0, 2.0])),
            TypeError,
            r"`target` must hold class indices .*float64",
        ),
        (
            "target-np-bool",
            lambda m: gradients.saliency_map(m.digits, m.x, np.bool_(True)),
            TypeError,
            r"`target` must hold class indices .* torch\.bool",
        ),
        (
            "target-bool",
            lambda m: gradients.saliency_map(m.digits, m.x, True),
            TypeError,
            r"`target` must be None \(the predicted class\), an int",
        ),
        (
            "target-np-out-of-range",
            lambda m: gradients.saliency_map(m.digits, m.x, np.int64(10)),
            ValueError,
            r"`target` index 10 is out of range",
        ),
        (
            "target-np-2d",
            lambda m: gradients.saliency_map(m.digits, m.x, np.zeros((3, 1), dtype=np.int64)),
            ValueError,
            r"`target` must be an int or a 1-D tensor",
        ),
        (
            "target-np-length",
            lambda m: gradients.saliency_map(m.digits, m.x, np.array([1, 2])),
            ValueError,
            r"`target` has 2 entries but `x` holds 3 images",
        ),
        (
            "target-list-str",
            lambda m: gradients.saliency_map(m.digits, m.x, ["3"]),
            TypeError,
            r"`target` must be None",
        ),
        # captum-style keywords
        (
            "kw-n_steps-ig",
            lambda m: ig.integrated_gradients(m.digits, m.x, m.y, n_steps=8),
            TypeError,
            r"integrated_gradients has no argument n_steps; the course calls it `steps`",
        ),
        (
            "kw-baselines-ig",
            lambda m: ig.integrated_gradients(m.digits, m.x, m.y, baselines=0.0),
            TypeError,
            r"integrated_gradients has no argument baselines; the course calls it `baseline`",
        ),
        (
            "kw-return_convergence_delta-ig",
            lambda m: ig.integrated_gradients(m.digits, m.x, m.y, return_convergence_delta=True),
            TypeError,
            r"integrated_gradients has no argument return_convergence_delta \(.*completeness_gap",
        ),
        (
            "kw-nt_samples-smoothgrad",
            lambda m: gradients.smoothgrad(m.digits, m.x, m.y, nt_samples=4),
            TypeError,
            r"smoothgrad has no argument nt_samples; the course calls it `n_samples`",
        ),
        (
            "kw-stdevs-smoothgrad",
            lambda m: gradients.smoothgrad(m.digits, m.x, m.y, stdevs=0.1),
            TypeError,
            r"smoothgrad has no argument stdevs; the course calls it `sigma`",
        ),
        (
            "kw-sliding_window_shapes-occlusion",
            lambda m: occlusion.occlusion(m.digits, m.x, m.y, sliding_window_shapes=(1, 4, 4)),
            TypeError,
            r"occlusion has no argument sliding_window_shapes; the course calls it `window`",
        ),
        (
            "kw-strides-occlusion",
            lambda m: occlusion.occlusion(m.digits, m.x, m.y, strides=(1, 2, 2)),
            TypeError,
            r"occlusion has no argument strides; the course calls it `stride`",
        ),
        (
            "kw-perturbations_per_eval-occlusion",
            lambda m: occlusion.occlusion(m.digits, m.x, m.y, perturbations_per_eval=8),
            TypeError,
            r"occlusion has no argument perturbations_per_eval; the course calls it `batch_size`",
        ),
        (
            "kw-additional_forward_args-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x, m.y, additional_forward_args=(1,)),
            TypeError,
            r"saliency_map has no argument additional_forward_args \(.*model\(x\) alone",
        ),
        (
            "kw-layer-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x, m.y, layer="conv2"),
            TypeError,
            r"saliency_map has no argument layer \(.*grad_cam",
        ),
        (
            "kw-abs-saliency",
            lambda m: gradients.saliency_map(m.digits, m.x, m.y, abs=False),
            TypeError,
            r"saliency_map has no argument abs",
        ),
        (
            "kw-epsilon-fgsm",
            lambda m: attacks.fgsm(m.digits, m.x, m.y, epsilon=0.1),
            TypeError,
            r"fgsm has no argument epsilon; the course calls it `eps`",
        ),
        (
            "kw-typo-ig",
            lambda m: ig.integrated_gradients(m.digits, m.x, m.y, step=8),
            TypeError,
            r"integrated_gradients has no argument step; did you mean `steps`\?; its arguments are ",
        ),
        (
            "missing-target",
            lambda m: gradients.saliency_map(m.digits, m.x),
            TypeError,
            r"saliency_map\(\) missing a required argument: 'target' \(target=None means the predicted",
        ),
    ]


@pytest.mark.parametrize("case", _wrapper_cases(), ids=lambda c: c[0])
def test_bad_call_is_refused_before_either_body(case, m, bodies):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call(m)


# --------------------------------------------------------------------------- where the body calls the model


@pytest.mark.parametrize(
    "name, call",
    [
        ("predict", lambda m, net: basics.predict(net, m.x)),
        ("saliency_map", lambda m, net: gradients.saliency_map(net, m.x, m.y)),
        ("lrp", lambda m, net: L.lrp(net, m.x, m.y)),
        ("input_gradient", lambda m, net: attacks.input_gradient(net, m.x, m.y)),
        ("fgsm", lambda m, net: attacks.fgsm(net, m.x, m.y)),
        ("integrated_gradients", lambda m, net: ig.integrated_gradients(net, m.x, m.y, steps=4)),
        ("smoothgrad", lambda m, net: gradients.smoothgrad(net, m.x, m.y, n_samples=2)),
        ("grad_cam", lambda m, net: gradients.grad_cam(net, m.x, m.y)),
        ("occlusion", lambda m, net: occlusion.occlusion(net, m.x, m.y, window=14, stride=14)),
        (
            "deletion_curve",
            lambda m, net: evaluation.deletion_curve(net, m.x, m.y, torch.rand_like(m.x), region=7),
        ),
    ],
)
def test_model_returning_a_tuple_is_one_clear_error(name, call, m, solutions):
    net = Tuple(m.digits)
    with pytest.raises(
        TypeError,
        match=r"`model` must return a tensor of logits \(N, K\), but it returned "
        r"a tuple of Tensor, Tensor",
    ):
        call(m, net)
    assert not net._forward_hooks, "the wrapper's output hook must be removed, also on an error"


# --------------------------------------------------------------------------- valid calls still pass


def _pred(m, x=None):
    with torch.no_grad():
        return m.digits(m.x if x is None else x).argmax(1)


# method(model, x, target) with small options; every exercise taking model, x and target
TARGET_METHODS = {
    "input_gradient": {},
    "fgsm": {},
    "pgd": {"steps": 2, "random_start": False},
    "fooling_image": {"max_steps": 2},
    "saliency_map": {},
    "input_x_gradient": {},
    "smoothgrad": {"n_samples": 2, "generator": "seeded"},
    "grad_cam": {},
    "integrated_gradients": {"steps": 4},
    "completeness_gap": {"attributions": "zeros"},
    "patch_shapley": {"grid": 2},
    "guided_backprop": {},
    "occlusion": {"window": 14, "stride": 14},
    "lrp": {},
    "deletion_curve": {"attributions": "rand", "region": 7},
    "sanity_check": {"method": "saliency", "layers": ["fc2", "fc1"], "generator": "seeded"},
    "tcav_score": {"layer": "fc1", "cavs": "cavs"},
    "intervention_effect": {"region": "corner"},
}
REFUSE_NONE = {"adversarial_patch"}
# needs a ViT: its target=None test is in tests/test_13_transformer.py
VIT_ONLY = {"patch_integrated_gradients"}


def _options(m, opts):
    out = {}
    for k, v in opts.items():
        if v == "seeded":
            v = torch.Generator().manual_seed(0)
        elif v == "zeros":
            v = torch.zeros_like(m.x)
        elif v == "rand":
            v = torch.rand(m.x.shape, generator=torch.Generator().manual_seed(1))
        elif v == "saliency":
            v = gradients.saliency_map
        elif v == "cavs":  # three directions in the digits CNN's 64-unit fc1 layer
            v = torch.randn(3, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        elif v == "corner":  # a 7 x 7 region in the top left corner of every digit
            v = torch.zeros(1, 1, *m.x.shape[-2:], dtype=torch.bool)
            v[..., :7, :7] = True
        out[k] = v
    return out


def _same(a, b):
    if isinstance(a, evaluation.SanityCheck):
        return torch.equal(a.maps, b.maps) and a.layers == b.layers
    if isinstance(a, tuple):
        return all(_same(u, v) for u, v in zip(a, b))
    return torch.equal(a, b)


def test_target_methods_table_is_complete():
    """Every exercise taking model, x and target is covered by the target=None tests."""
    import inspect

    with_target = {
        ex.name
        for ex in exercises.load_all().values()
        if {"model", "x", "target"} <= set(inspect.signature(ex.stub).parameters)
    }
    assert with_target == set(TARGET_METHODS) | REFUSE_NONE | VIT_ONLY


@pytest.mark.parametrize("name", sorted(TARGET_METHODS))
def test_target_none_is_the_predicted_class(name, m, solutions):
    fn = exercises.get(name).wrapper
    x = m.x.clone()
    pred = _pred(m)
    got = fn(m.digits, x, None, **_options(m, TARGET_METHODS[name]))
    want = fn(m.digits, x, pred, **_options(m, TARGET_METHODS[name]))
    assert _same(got, want), f"{name}(target=None) must equal {name}(target=model(x).argmax(1))"


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(lambda y: np.int64(3), id="np.int64"),
        pytest.param(lambda y: np.int32(3), id="np.int32"),
        pytest.param(lambda y: y.numpy(), id="np-array-int64"),
        pytest.param(lambda y: y.numpy().astype(np.int32), id="np-array-int32"),
        pytest.param(lambda y: y.tolist(), id="list"),
        pytest.param(lambda y: y.int(), id="int32-tensor"),
        pytest.param(lambda y: np.uint8(3), id="np.uint8"),
    ],
)
@pytest.mark.parametrize("name", ["saliency_map", "fgsm", "integrated_gradients", "lrp", "occlusion"])
def test_numpy_and_list_targets_are_accepted(name, target, m, solutions):
    fn = exercises.get(name).wrapper
    opts = _options(m, TARGET_METHODS[name])
    t = target(m.y)
    want = 3 if np.ndim(t) == 0 else m.y
    assert _same(fn(m.digits, m.x, t, **opts), fn(m.digits, m.x, want, **opts))


def test_body_receives_class_indices_computed_in_eval_mode(monkeypatch):
    """The toy exercise's stub is its body: it sees an int64 tensor, never None; the
    prediction is taken in eval mode (dropout off) and costs the only extra forward."""
    monkeypatch.setenv(exercises.ENV_VAR, "none")
    seen = {}

    @exercise("98.2", points=1)
    def toy_method(model, x, target):
        seen["target"] = target
        return model(x)

    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Dropout(0.9))
        model.train()
        x = torch.rand(4, 3, 2, 2)
        forwards = []
        model.register_forward_hook(lambda *a: forwards.append(1))
        toy_method(model, x, None)
        with torch.no_grad():
            expected = model.eval()(x).argmax(1)
        model.train()
        assert seen["target"].dtype == torch.int64 and torch.equal(seen["target"], expected)
        assert len(forwards) == 3  # the wrapper's prediction, the body's call, the check above
        forwards.clear()
        toy_method(model, x, np.int64(2))
        assert seen["target"] == 2 and type(seen["target"]) is int and len(forwards) == 1
        toy_method(model, x, np.array([1, 2, 3, 4], dtype=np.int16))
        assert seen["target"].dtype == torch.int64 and seen["target"].tolist() == [1, 2, 3, 4]
        assert model.training and len(model._forward_hooks) == 1
    finally:
        exercises._REGISTRY.pop("98.2", None)


def test_explicit_target_costs_no_extra_forward(m, solutions):
    calls = []
    handle = m.digits.register_forward_hook(lambda *a: calls.append(1))
    try:
        gradients.saliency_map(m.digits, m.x, m.y)
        assert len(calls) == 1
        calls.clear()
        gradients.saliency_map(m.digits, m.x, None)
        assert len(calls) == 2
    finally:
        handle.remove()


def test_valid_dtypes_devices_and_shapes_pass(m, solutions):
    # a float64 model takes float64 images
    net = copy.deepcopy(m.digits).double()
    assert gradients.saliency_map(net, m.x.double(), m.y).dtype == torch.float64
    # a model without parameters: nothing to compare x with
    assert basics.predict(nn.Sequential(nn.Flatten()), m.x[:, :, :2, :2])[0].shape == (3,)
    # a custom forward that adapts the channels: no channel check
    grey = Grey2RGB()
    assert gradients.saliency_map(grey, torch.rand(2, 1, 8, 8), 1).shape == (2, 1, 8, 8)
    # Flatten then Linear with the right number of values
    lin = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    assert gradients.saliency_map(lin, torch.rand(2, 1, 2, 2), 0).shape == (2, 1, 2, 2)
    # ... and after a pooling layer, whose output size the check does not work out
    pooled = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(196, 3))
    assert gradients.saliency_map(pooled, m.x, 0).shape == (3, 1, 28, 28)
    # baselines: a number, or a tensor in x's dtype
    ig.integrated_gradients(m.digits, m.x, m.y, baseline=torch.zeros(1, 1, 28, 28), steps=2)
    occlusion.occlusion(m.digits, m.x, m.y, baseline=0.5, window=14, stride=14)
    # activation_maximisation with a start the model takes, with and without a channel
    for channel in (0, None):
        featvis.activation_maximisation(
            m.shapes_model, "conv1", channel, start=torch.rand(1, 3, 32, 32), shape=(3, 32, 32), steps=1
        )
    # lrp_layer with a conv input of the right channels
    L.lrp_layer(nn.Conv2d(3, 4, 3), torch.rand(1, 3, 8, 8), torch.rand(1, 4, 6, 6))
    # sanity_check with a tuple of layer names
    evaluation.sanity_check(m.digits, m.x, m.y, gradients.saliency_map, layers=("fc2",))
    # course keywords still bind; a keyword that exists is not taken for an alias
    gradients.smoothgrad(m.digits, m.x, m.y, n_samples=2, sigma=0.1)
    gradients.grad_cam(m.digits, m.x, m.y, layer="conv2")


def test_torchvision_first_layer(solutions):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = tv.models.resnet18(weights=None, num_classes=4).eval()
    x = torch.rand(1, 3, 32, 32)
    assert gradients.saliency_map(net, x, 1).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match=r"`x` images have 1 channel but the model's first layer `conv1`"):
        gradients.saliency_map(net, x[:, :1], 1)


def test_output_hook_is_removed_and_not_doubled(m, solutions):
    """Nested exercise calls (IG calls input_gradient) add the output hook once; every
    call removes it again, also when a check refuses the call."""
    net = copy.deepcopy(m.digits)
    seen = []
    handle = net.register_forward_hook(lambda mod, i, o: seen.append(len(mod._forward_hooks)))
    try:
        ig.integrated_gradients(net, m.x, m.y, steps=2)
        assert seen and set(seen) == {2}, "during the call: the recorder and one output hook"
        with pytest.raises(ValueError, match="`target`"):
            gradients.saliency_map(net, m.x, 99)
        with pytest.raises(TypeError, match="`x`"):
            gradients.saliency_map(net, m.x.double(), 1)
        assert list(net._forward_hooks.values()) == [handle.hooks_dict_ref()[handle.id]]
    finally:
        handle.remove()
    assert not net._forward_hooks
