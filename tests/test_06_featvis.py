"""Lesson 06: total_variation, random_transform, activation_maximisation (+ infrastructure)."""

import collections
import copy
import math

import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import exercises, featvis, featvis_param, featvis_units
from interp_lib.utils import assert_close

# --------------------------------------------------------------------------- helpers


def unguarded_body(name):
    """The body the switch selects, *without* the wrapper's guard (tests its own cleanup)."""
    ex = exercises.get(name)
    return ex.solution() if exercises.solutions_selected(ex) else ex.stub


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class BoomError(Exception):
    pass


class Boom(nn.Module):
    """Raises on its ``after``-th call."""

    def __init__(self, after):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, x):
        self.calls += 1
        if self.calls >= self.after:
            raise BoomError("boom")
        return x


def tiny_model(boom_after=None):
    layers = [("conv1", nn.Conv2d(3, 4, 3, padding=1)), ("relu1", nn.ReLU())]
    if boom_after is not None:
        layers.append(("boom", Boom(boom_after)))
    layers += [("flatten", nn.Flatten()), ("fc", nn.Linear(4 * 8 * 8, 2))]
    torch.manual_seed(0)
    return nn.Sequential(collections.OrderedDict(layers))


@pytest.fixture(scope="module")
def conv3_max(shapes_model, shapes_test):
    return featvis_units.dataset_maximum(shapes_model, "conv3", shapes_test.x)


# --------------------------------------------------------------------------- 06.1 total_variation


@pytest.mark.exercise("06.1", weight=2)
def test_total_variation_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])  # dh = 1, dv = 2
    assert_close(featvis.total_variation(x), torch.tensor([5.0]))
    assert_close(featvis.total_variation(x, beta=1.0), torch.tensor([math.sqrt(5.0)]))
    assert_close(featvis.total_variation(x, beta=1.0, eps=4.0), torch.tensor([3.0]))
    const = torch.full((2, 3, 5, 4), 0.3)
    assert_close(featvis.total_variation(const), torch.zeros(2), atol_scale=0)


@pytest.mark.exercise("06.1", weight=2)
def test_total_variation_matches_formula_loop():
    x = torch.rand(3, 2, 4, 5, generator=gen(1), dtype=torch.float64)
    for beta in (2.0, 1.0, 3.0):
        expected = torch.zeros(3, dtype=torch.float64)
        for n in range(3):
            for c in range(2):
                for i in range(3):
                    for j in range(4):
                        dh = x[n, c, i, j + 1] - x[n, c, i, j]
                        dv = x[n, c, i + 1, j] - x[n, c, i, j]
                        expected[n] += (dh**2 + dv**2) ** (beta / 2)
        got = featvis.total_variation(x, beta=beta)
        assert got.shape == (3,)
        assert_close(got, expected, rtol=1e-10)


@pytest.mark.exercise("06.1")
def test_total_variation_gradient():
    x = torch.rand(2, 3, 6, 6, generator=gen(2)).requires_grad_(True)
    featvis.total_variation(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_total_variation_bad_input():
    with pytest.raises(ValueError, match="beta"):
        featvis.total_variation(torch.rand(1, 1, 4, 4), beta=0)
    with pytest.raises(ValueError, match="x"):
        featvis.total_variation(torch.rand(4, 4))


# --------------------------------------------------------------------------- 06.2 random_transform


@pytest.mark.exercise("06.2")
def test_random_transform_shape_and_gradient():
    x = torch.rand(4, 3, 32, 32, generator=gen(3)).requires_grad_(True)
    out = featvis.random_transform(x, gen(0))
    assert out.shape == x.shape
    (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.exercise("06.2", weight=2)
def test_random_transform_exact_integer_shift():
    x = torch.rand(8, 2, 16, 20, generator=gen(4))
    g = gen(5)
    dx, dy, _, _ = featvis_param.transform_parameters(
        copy.deepcopy(g), 8, jitter=3, scale=(1.0, 1.0), degrees=0.0
    )
    assert (dx != 0).any() and (dy != 0).any()
    out = featvis.random_transform(x, g, jitter=3, scale=(1.0, 1.0), degrees=0.0)
    for n in range(8):
        a, b = int(dx[n]), int(dy[n])
        # interior: output[r, c] = input[r - dy, c - dx]
        got = out[n, :, 3:-3, 3:-3]
        want = x[n, :, 3 - b : 16 - 3 - b, 3 - a : 20 - 3 - a]
        assert_close(got, want, rtol=1e-5, what=f"image {n} shifted by ({a}, {b})")


def blob(h, w, col, row, sigma=1.2):
    r = torch.arange(h, dtype=torch.float64)[:, None]
    c = torch.arange(w, dtype=torch.float64)[None, :]
    return torch.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma**2))


@pytest.mark.exercise("06.2", weight=3)
def test_random_transform_follows_the_generator():
    n, h, w = 12, 32, 32
    p = torch.tensor([19.0, 12.0], dtype=torch.float64)  # (column, row)
    x = blob(h, w, *p).expand(n, 1, h, w).contiguous()
    g = gen(7)
    twin = copy.deepcopy(g)
    out = featvis.random_transform(x, g, jitter=3, scale=(0.8, 1.2), degrees=30.0)
    dx, dy, s, angle = featvis_param.transform_parameters(twin, n, jitter=3, scale=(0.8, 1.2), degrees=30.0)
    # the generator must be consumed exactly as documented
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=twin))
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
    rows = torch.arange(h, dtype=torch.float64)[:, None]
    cols = torch.arange(w, dtype=torch.float64)[None, :]
    for i in range(n):
        a = math.radians(float(angle[i]))
        rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        want = (
            centre
            + float(s[i]) * rot @ (p - centre)
            + torch.tensor([float(dx[i]), float(dy[i])], dtype=torch.float64)
        )
        img = out[i, 0].double()
        got = torch.stack([(img * cols).sum() / img.sum(), (img * rows).sum() / img.sum()])
        assert (got - want).abs().max() < 0.25, f"image {i}: blob at {got.tolist()}, expected {want.tolist()}"
        assert img.sum() / x[i, 0].sum() == pytest.approx(float(s[i]) ** 2, rel=0.05)


@pytest.mark.exercise("06.2", weight=1)
def test_random_transform_reflects_at_the_border():
    # reflection padding: a constant image stays constant under any shift, scale and rotation
    # (zero padding would darken the corners that come from outside the frame)
    x = torch.full((6, 2, 16, 16), 0.7)
    out = featvis.random_transform(x, gen(8), jitter=4, scale=(0.7, 1.0), degrees=40.0)
    assert_close(out, x, rtol=1e-5)


def test_random_transform_bad_input():
    with pytest.raises(TypeError, match="generator"):
        featvis.random_transform(torch.rand(1, 3, 8, 8), None)
    with pytest.raises(ValueError, match="scale"):
        featvis.random_transform(torch.rand(1, 3, 8, 8), gen(), scale=(1.2, 0.8))


# --------------------------------------------------------------------------- 06.3 activation_maximisation


@pytest.mark.exercise("06.3", weight=3)
def test_activation_maximisation_beats_dataset_maximum(shapes_model, conv3_max):
    channels = [int(c) for c in conv3_max.topk(3).indices]
    before = snapshot(shapes_model)
    res = featvis.activation_maximisation(shapes_model, "conv3", channels, steps=48, generator=gen(0))
    assert_unchanged(shapes_model, before)
    assert res.image.shape == (3, 3, 32, 32) and res.image.min() >= 0 and res.image.max() <= 1
    assert res.history.shape == (48, 3)
    assert res.history.grad_fn is None and res.activation.grad_fn is None, "detach what you keep"
    assert (res.activation > conv3_max[channels]).all(), (res.activation, conv3_max[channels])
    # the reported activation is the channel mean of the final image
    acts = featvis_units.channel_activations(shapes_model, "conv3", res.image)
    assert_close(res.activation, acts[torch.arange(3), channels], rtol=1e-4)


@pytest.mark.exercise("06.3")
def test_activation_maximisation_logit_neuron_and_start(shapes_model, shapes_test):
    res = featvis.activation_maximisation(shapes_model, "fc2", 2, steps=16, generator=gen(1), param="fourier")
    assert res.image.shape == (1, 3, 32, 32)
    with torch.no_grad():
        logit = shapes_model(res.image)[0, 2]
    assert float(res.activation[0]) == pytest.approx(float(logit), rel=1e-4, abs=1e-4)
    assert res.history[-1, 0] > res.history[0, 0]
    start = shapes_test.x[:2]
    res = featvis.activation_maximisation(
        shapes_model, "conv2", 5, neuron=(3, 4), steps=8, start=start, lr=0.01
    )
    assert res.image.shape == start.shape
    assert (res.image - start).abs().max() <= 8 * 0.015, "a pixel start image is the starting point"
    with torch.no_grad():
        acts = featvis_units.channel_activations(shapes_model, "conv2", res.image, neuron=(3, 4))[:, 5]
    assert_close(res.activation, acts, rtol=1e-4)


@pytest.mark.exercise("06.3")
def test_activation_maximisation_is_reproducible(shapes_model):
    kw = dict(steps=12, transforms=True, param="fourier", decorrelate=True, tv=1.0, l2=1.0, blur_every=4)
    a = featvis.activation_maximisation(shapes_model, "relu2", 1, generator=gen(3), **kw)
    b = featvis.activation_maximisation(shapes_model, "relu2", 1, generator=gen(3), **kw)
    assert torch.equal(a.image, b.image)
    c = featvis.activation_maximisation(shapes_model, "relu2", 1, generator=gen(4), **kw)
    assert not torch.equal(a.image, c.image)


@pytest.mark.exercise("06.3", weight=2)
@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_activation_maximisation_follows_the_documented_loop(shapes_model, param):
    """The docstring's loop written out: loss with both priors (signs and the C*H*W
    normalisation of TV), transforms, the blur schedule after steps 2, 4, 6 and the draws."""
    channels, steps, lr, l2, tv = [1, 3], 6, 0.05, 3.0, 20.0
    options = dict(jitter=1, scale=(0.95, 1.05), degrees=5.0)
    res = featvis.activation_maximisation(
        shapes_model,
        "conv2",
        channels,
        steps=steps,
        lr=lr,
        generator=gen(2),
        l2=l2,
        tv=tv,
        blur_every=2,
        blur_sigma=0.7,
        transforms=options,
        param=param,
    )
    model = copy.deepcopy(shapes_model).eval().requires_grad_(False)
    g = gen(2)
    c, h, w = featvis_units.default_input_shape(model)
    img_param = featvis_param.image_parameterisation(param, (2, c, h, w), g, None, False)
    optimiser = torch.optim.Adam(img_param.parameters(), lr=lr)
    acts = {}
    model.conv2.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    history = []
    for step in range(steps):
        img = img_param()
        model(featvis.random_transform(img, g, **options))
        objective = featvis_units.unit_objective(acts["a"], channels)
        loss = -objective.sum()
        loss = loss + l2 * ((img - 0.5) ** 2).mean(dim=(1, 2, 3)).sum()
        loss = loss + tv * featvis.total_variation(img).sum() / (c * h * w)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        img_param.after_step()
        if (step + 1) % 2 == 0:
            img_param.blur(0.7)
        history.append(objective.detach())
    with torch.no_grad():
        image = img_param()
        model(image)
        final = featvis_units.unit_objective(acts["a"], channels)
    assert_close(res.image, image, rtol=1e-5, what="final image")
    assert_close(res.history, torch.stack(history), rtol=1e-5, what="history")
    assert_close(res.activation, final, rtol=1e-5, what="activation")


@pytest.mark.exercise("06.3", weight=1)
def test_activation_maximisation_default_generator_is_seeded_with_0(shapes_model):
    # generator=None means a new generator seeded with 0, not torch's global one
    a = featvis.activation_maximisation(shapes_model, "conv1", 2, steps=2)
    torch.rand(7)  # move the global generator on
    b = featvis.activation_maximisation(shapes_model, "conv1", 2, steps=2)
    c = featvis.activation_maximisation(shapes_model, "conv1", 2, steps=2, generator=gen(0))
    assert torch.equal(a.image, b.image) and torch.equal(a.image, c.image)


@pytest.mark.exercise("06.3", weight=2)
def test_activation_maximisation_removes_its_hook_also_on_error():
    body = unguarded_body("activation_maximisation")
    model = tiny_model().eval()
    body(model, "relu1", 1, steps=3, shape=(3, 8, 8))
    assert all(len(m._forward_hooks) == 0 for m in model.modules()), "hook left behind"
    model = tiny_model(boom_after=3).eval()
    with pytest.raises(BoomError):
        body(model, "conv1", 0, steps=10, shape=(3, 8, 8))
    assert all(len(m._forward_hooks) == 0 for m in model.modules()), "hook left behind after an error"


@pytest.mark.exercise("06.3")
def test_activation_maximisation_model_unchanged_on_error():
    model = tiny_model(boom_after=2)
    model.train()
    model.fc.weight.requires_grad_(False)
    before = snapshot(model)
    with pytest.raises(BoomError):
        featvis.activation_maximisation(model, "conv1", 0, steps=5, shape=(3, 8, 8))
    assert_unchanged(model, before)
    model = tiny_model()
    model.train()
    before = snapshot(model)
    featvis.activation_maximisation(model, "conv1", 0, steps=2, shape=(3, 8, 8))
    assert_unchanged(model, before)


@pytest.mark.exercise("06.3", weight=2)
def test_priors_lower_the_high_frequency_power(shapes_model):
    channels = [0, 1, 4, 6, 8, 9]
    naive = featvis.activation_maximisation(shapes_model, "conv3", channels, steps=96, generator=gen(0))
    prior = featvis.activation_maximisation(
        shapes_model,
        "conv3",
        channels,
        steps=96,
        generator=gen(0),
        param="fourier",
        decorrelate=True,
        transforms=True,
    )
    hf_naive = featvis_param.high_frequency_fraction(naive.image).mean()
    hf_prior = featvis_param.high_frequency_fraction(prior.image).mean()
    assert hf_prior < hf_naive - 0.15, (hf_naive, hf_prior)


def test_activation_maximisation_bad_input(shapes_model):
    with pytest.raises(ValueError, match=r"layer.*conv1, relu1"):
        featvis.activation_maximisation(shapes_model, "conv9", 0)
    with pytest.raises(ValueError, match=r"channel.*0\.\.31"):
        featvis.activation_maximisation(shapes_model, "conv3", 32)
    with pytest.raises(ValueError, match=r"channel.*0\.\.3"):
        featvis.activation_maximisation(shapes_model, "fc2", [0, 4])
    with pytest.raises(ValueError, match="steps"):
        featvis.activation_maximisation(shapes_model, "conv3", 0, steps=0)
    with pytest.raises(ValueError, match="neuron"):
        featvis.activation_maximisation(shapes_model, "conv3", 0, neuron=(8, 0))
    with pytest.raises(ValueError, match="param"):
        featvis.activation_maximisation(shapes_model, "conv3", 0, param="wavelet")
    with pytest.raises(TypeError, match="generator"):
        featvis.activation_maximisation(shapes_model, "conv3", 0, generator=0)
    before = snapshot(shapes_model)
    with pytest.raises(ValueError):
        featvis.activation_maximisation(shapes_model, "conv3", 40)
    assert_unchanged(shapes_model, before)


# --------------------------------------------------------------------------- infrastructure


def test_fourier_image_has_a_one_over_f_spectrum():
    h = w = 32
    fim = featvis_param.FourierImage((256, 1, h, w), gen(0), sd=0.01, decorrelate=False)
    with torch.no_grad():
        pre = torch.logit(fim.image())  # the image before the sigmoid
    power = torch.fft.rfft2(pre, norm="ortho").abs().pow(2).mean(dim=(0, 1))
    f = featvis_param.frequency_radius(h, w)
    keep = (f > 2 / w) & (f < 0.45)
    slope = torch.linalg.lstsq(
        torch.stack([f[keep].log(), torch.ones(int(keep.sum()))], 1), power[keep].log()[:, None]
    ).solution[0, 0]
    assert slope == pytest.approx(-2.0, abs=0.15), "power must fall like 1/f^2 (amplitude like 1/f)"


def test_colour_decorrelation_is_invertible():
    x = torch.randn(2, 3, 5, 5, generator=gen(1), dtype=torch.float64)
    assert_close(featvis_param.decorrelate_colours(featvis_param.correlate_colours(x)), x, rtol=1e-10)
    assert_close(featvis_param.correlate_colours(featvis_param.decorrelate_colours(x)), x, rtol=1e-10)
    assert not torch.allclose(featvis_param.correlate_colours(x), x)


def test_fourier_start_image_round_trip(shapes_test):
    img = shapes_test.x[:3].clamp(0.01, 0.99)
    for dec in (False, True):
        fim = featvis_param.FourierImage(start=img, decorrelate=dec)
        assert_close(fim.image().detach(), img, rtol=1e-4)


def test_high_frequency_fraction_and_blur():
    noise = torch.rand(64, 3, 32, 32, generator=gen(2))
    hf = featvis_param.high_frequency_fraction(noise)
    assert hf.mean() == pytest.approx(1 - math.pi / 16, abs=0.02)
    smooth = featvis_param.gaussian_blur(noise, 1.5)
    assert smooth.shape == noise.shape
    assert featvis_param.high_frequency_fraction(smooth).mean() < 0.1
    assert featvis_param.high_frequency_fraction(torch.full((1, 3, 8, 8), 0.4)).item() == 0.0
    assert_close(
        featvis_param.gaussian_blur(torch.full((1, 2, 9, 9), 0.7), 1.0), torch.full((1, 2, 9, 9), 0.7)
    )


def test_top_activating(shapes_model, shapes_test):
    idx, values = featvis_units.top_activating(shapes_model, "relu3", 4, shapes_test.x, k=9)
    acts = featvis_units.channel_activations(shapes_model, "relu3", shapes_test.x)[:, 4]
    assert len(idx) == 9 and values[0] == acts.max()
    assert (values[:-1] >= values[1:]).all()


def test_explorer_runs_silently(shapes_model, shapes_test, capsys):
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from interp_lib.widgets.featvis import explorer

    box = explorer(shapes_model, shapes_test.x[:200])
    left, right = box.children[0].children
    layer, channel, steps = left.children[:3]
    layer.value = "conv3"
    assert channel.max == 31
    steps.value = 16
    left.children[4].value = "fourier"
    left.children[5].value = True
    right.children[4].click()
    assert right.children[5].value.startswith("final objective")
    assert "final objective" not in capsys.readouterr().out


# --------------------------------------------------------------------------- lesson 06b claims


def _pure_channels(model, shapes, layer="conv3", k=9):
    """(texture, shape): how many channels' top-k images all share one texture / one shape."""
    top = featvis_units.channel_activations(model, layer, shapes.x).topk(k, dim=0).indices
    return tuple(
        int((labels[top] == labels[top[:1]]).all(0).sum()) for labels in (shapes.texture, shapes.shape)
    )


def test_texture_purity_of_dataset_maxima_is_specific_to_the_texture_biased_model(shapes_model):
    """06b: on texture-randomised images the texture-biased model's conv3 favourites share a
    texture far more often than a shape; the shape-biased control's do not."""
    from interp_lib import data, models

    randomised = data.load_shapes("test", texture_rate=1.0)
    assert not torch.equal(randomised.texture, randomised.shape)  # the cues are independent
    tex = _pure_channels(shapes_model, randomised)
    control = _pure_channels(models.load_model("shapes_shape"), randomised)
    assert tex == (11, 2), tex
    assert control == (4, 4), control
    assert tex[0] > 3 * tex[1] and control[0] <= control[1] and tex[0] > 2 * control[0]


def test_pure_channels_by_hand():
    """The count of the lesson on a layer whose channels copy the input's colour channels."""
    from interp_lib.data import Shapes

    x = torch.zeros(6, 3, 4, 4)
    x[[0, 1], 0] = 1.0  # channel 0 fires on images 0 and 1
    x[[2, 3], 1] = 1.0  # channel 1 on images 2 and 3
    x[[4, 5], 2] = 1.0
    texture = torch.tensor([0, 0, 1, 2, 3, 3])
    shape = torch.tensor([1, 2, 0, 0, 3, 3])
    shapes = Shapes(
        x, shape, shape, texture, torch.zeros(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool), None
    )
    model = nn.Sequential(collections.OrderedDict([("conv", nn.Identity())]))
    assert _pure_channels(model, shapes, "conv", k=2) == (2, 2)  # textures: ch 0, 2; shapes: ch 1, 2


@pytest.mark.exercise("06.3", weight=1)
def test_robust_class_visualisations_are_smoother_not_more_recognisable():
    """06b: from the mean digit, 64 steps at lr 0.01: the robust model's class visualisations
    have lower total variation than the standard model's; held-out judges name every class
    in both sets."""
    from interp_lib import data, models

    digits_x, digits_y = data.load_digits("train")
    start = digits_x.mean(0, keepdim=True).expand(10, -1, -1, -1).contiguous()
    nets = {"standard": models.load_model("digits"), "robust": models.load_model("digits_robust")}
    images = {
        n: featvis.activation_maximisation(m, "fc2", list(range(10)), start=start, steps=64, lr=0.01).image
        for n, m in nets.items()
    }
    tv = {n: featvis.total_variation(im).mean().item() / im[0].numel() for n, im in images.items()}
    assert tv["robust"] < 0.8 * tv["standard"], tv
    assert 0.06 < tv["robust"] < 0.09 and 0.10 < tv["standard"] < 0.13, tv
    with torch.no_grad():
        assert torch.equal(nets["standard"](images["robust"]).argmax(1), torch.arange(10))
        assert torch.equal(nets["robust"](images["standard"]).argmax(1), torch.arange(10))
    centroids = torch.stack([digits_x[digits_y == k].mean(0) for k in range(10)]).flatten(1)
    for im in images.values():
        assert torch.equal(torch.cdist(im.flatten(1), centroids).argmin(1), torch.arange(10))
