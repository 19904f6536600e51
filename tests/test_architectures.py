"""Attribution methods on real architectures: match the reference library or refuse.

A matrix over torchvision CNNs (random weights, random BatchNorm statistics, eval mode,
tiny inputs, reduced width where torchvision allows it) that between them have in-place
activations, ReLU6 / Hardswish / SiLU / GELU, concatenation blocks (DenseNet, GoogLeNet,
SqueezeNet, ShuffleNet), pre-activation BatchNorm (DenseNet), depthwise convolutions,
functional ops in ``forward`` (GoogLeNet's ``F.relu``, DenseNet's ``F.relu`` and
``F.adaptive_avg_pool2d``, ShuffleNet's channel shuffle and ``x.mean``), residual sums,
average/adaptive pooling, dropout and stochastic depth.

For every method and net the cell either compares with captum / zennit (``reference``
tests) or, where the method cannot handle the net, asserts a refusal that names the
layer. Cells the reference library cannot check (LRP through residual sums it has no
canonizer for) check relevance conservation instead. The library-free tests at the end
pin what the matrix relies on, on hand-built nets.

    method              matches (captum / zennit)                    refuses
    saliency, x-grad,   all 13 nets
    SmoothGrad, IG,
    occlusion, Grad-CAM
    guided backprop,    ResNet, VGG-BN, AlexNet, SqueezeNet, DenseNet,  MobileNet v2 / v3,
    deconvnet           GoogLeNet, ShuffleNet, MNASNet, RegNet          EfficientNet, ConvNeXt
                        (after models.convert_relus)                    (the activation)
    deconvnet walk      AlexNet's features                             any other net
    LRP (BN merged)     ResNet, VGG-BN, AlexNet, SqueezeNet, GoogLeNet, DenseNet (BN after a
                        ShuffleNet; MNASNet, RegNet: conservation       concatenation), the
                                                                        four above
"""

import collections
import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from helpers import assert_unchanged, reference_grad_cam, snapshot
from torch import nn

from interp_lib import deconvnet, gradients, lrp_graph, lrp_rules, models, occlusion
from interp_lib import integrated_gradients as ig
from interp_lib import lrp as L
from interp_lib.activations import check_activations
from interp_lib.attacks import class_scores
from interp_lib.utils import assert_close

Net = collections.namedtuple("Net", "model x target")

# name: (constructor options, input side, a Grad-CAM layer whose output an in-place op then
# changes, where the net has one: BatchNorm or conv followed by ReLU(inplace=True) & co)
NETS = {
    "resnet18": ({}, 32, "layer2.0.bn1"),
    "vgg11_bn": ({}, 32, "features.9"),
    "alexnet": ({}, 64, "features.3"),
    "squeezenet1_1": ({}, 32, "features.3.squeeze"),
    "mobilenet_v2": ({"width_mult": 0.25}, 32, "features.2.conv.0.1"),
    "mobilenet_v3_small": ({"width_mult": 0.25}, 32, "features.1.block.0.1"),
    "efficientnet_b0": ({}, 32, "features.1.0.block.0.1"),
    "densenet121": ({}, 32, "features.denseblock1.denselayer2.norm2"),
    "googlenet": ({"aux_logits": False, "init_weights": False}, 32, "inception3a.branch2.0.bn"),
    "shufflenet_v2_x0_5": ({}, 32, "stage2.0.branch2.1"),
    "mnasnet0_5": ({}, 32, "layers.1"),
    "regnet_x_400mf": ({}, 32, "stem.1"),
    "convnext_tiny": ({}, 32, "features.1.0.block.0"),  # (no in-place op in a ConvNeXt)
}
# Nets with a nonlinearity other than ReLU: (first such layer, its type). Guided backprop,
# the deconvnet and LRP refuse them.
OTHER_ACTIVATION = {
    "mobilenet_v2": ("features.0.2", "ReLU6"),
    "mobilenet_v3_small": ("features.0.2", "Hardswish"),
    "efficientnet_b0": ("features.0.2", "SiLU"),
    "convnext_tiny": ("features.1.0.block.4", "GELU"),
}
RELU_NETS = [name for name in NETS if name not in OTHER_ACTIVATION]
# LRP: compared with zennit (canonizer needed?), or checked for conservation (residual sums
# zennit has no canonizer for), or refused for a BatchNorm that cannot be merged.
LRP_ZENNIT = {
    "resnet18": "resnet",
    "vgg11_bn": None,
    "alexnet": None,
    "squeezenet1_1": None,
    "googlenet": None,
    "shufflenet_v2_x0_5": None,
}
LRP_CONSERVES = ["mnasnet0_5", "regnet_x_400mf"]
LRP_BATCHNORM = {"densenet121": ("features.denseblock1.denselayer1.norm1", "concatenation")}


def _randomise_batchnorm(model, x, g):
    """Random affine parameters, running statistics of a batch holding ``x``, then slightly
    perturbed (a fresh BatchNorm would merge into a zero bias and identity scale; larger
    perturbations compound over a hundred layers into overflowing logits); eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            m.momentum = None
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        model.train()
        model(torch.cat([x, torch.rand(3, *x.shape[1:], generator=g)]))
        for m in bns:
            m.running_var.mul_(0.8 + 0.45 * torch.rand(m.running_var.shape, generator=g))
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(m.running_mean.shape, generator=g))
    return model.eval()


def _build(name):
    options, side, _ = NETS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **options)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, side, side, generator=g)
    model = _randomise_batchnorm(model, x, g).requires_grad_(False)  # (no weight gradients for captum)
    with torch.no_grad():
        target = model(x).argmax(1)
    return Net(model, x, target)


@pytest.fixture(scope="module")
def zoo():
    """``zoo(name)``: the net (built once per module); ``zoo(name, "converted")``: with every
    ReLU its own module (models.convert_relus); ``zoo(name, "merged")``: BatchNorm merged."""
    cache = {}

    def get(name, kind="plain"):
        if (name, kind) not in cache:
            net = get(name) if kind != "plain" else _build(name)
            if kind == "converted":
                net = net._replace(model=models.convert_relus(net.model))
            elif kind == "merged":
                net = net._replace(model=models.merge_batchnorm(net.model))
            cache[name, kind] = net
        return cache[name, kind]

    yield get
    cache.clear()


def _captum():
    return pytest.importorskip("captum.attr")


# --------------------------------------------------------------------------- gradient methods: every net


@pytest.mark.reference
@pytest.mark.exercise("04.1", weight=0.25)
@pytest.mark.parametrize("name", NETS)
def test_saliency(zoo, name):
    captum = _captum()
    model, x, y = zoo(name)
    ref = captum.Saliency(model).attribute(x.clone(), target=y, abs=True).amax(1, keepdim=True)
    assert_close(gradients.saliency_map(model, x, y), ref, rtol=1e-5, what=name)


@pytest.mark.reference
@pytest.mark.exercise("04.2", weight=0.25)
@pytest.mark.parametrize("name", NETS)
def test_input_x_gradient(zoo, name):
    captum = _captum()
    model, x, y = zoo(name)
    ref = captum.InputXGradient(model).attribute(x.clone(), target=y)
    assert_close(gradients.input_x_gradient(model, x, y), ref, rtol=1e-5, what=name)


@pytest.mark.reference
@pytest.mark.exercise("04.3", weight=0.25)
@pytest.mark.parametrize("name", NETS)
def test_smoothgrad(zoo, name, monkeypatch):
    captum = _captum()
    from captum.attr._core.noise_tunnel import NoiseTunnel

    model, x, y = zoo(name)
    n, sigma = 2, 0.15
    ours = gradients.smoothgrad(
        model, x, y, n_samples=n, sigma=sigma, generator=torch.Generator().manual_seed(0)
    )
    eps = torch.randn((n, *x.shape), generator=torch.Generator().manual_seed(0)) * sigma
    # captum repeats each image n times in a row and draws its own noise: give it ours
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
    assert_close(ours, ref, rtol=1e-5, what=name)


@pytest.mark.reference
@pytest.mark.exercise("04.4", weight=0.25)
@pytest.mark.parametrize("name", NETS)
def test_grad_cam_at_a_layer_an_inplace_op_follows(zoo, name):
    captum = _captum()
    model, x, y = zoo(name)
    layer = NETS[name][2]
    ours = gradients.grad_cam(model, x, y, layer=layer)
    lay = captum.LayerGradCam(model, model.get_submodule(layer)).attribute(
        x.clone(), target=y, relu_attributions=True
    )
    ref = captum.LayerAttribution.interpolate(lay, x.shape[-2:], "bilinear")
    assert ref.abs().max() > 0, "a degenerate layer: pick one with a non-zero map"
    assert_close(ours, ref, rtol=1e-5, what=f"{name} {layer}")


@pytest.mark.reference
@pytest.mark.exercise("05.2", weight=0.25)
@pytest.mark.parametrize("name", NETS)
def test_integrated_gradients(zoo, name):
    captum = _captum()
    model, x, y = zoo(name)
    ours = ig.integrated_gradients(model, x, y, steps=4, method="gausslegendre")
    ref = captum.IntegratedGradients(model).attribute(x.clone(), target=y, n_steps=4, method="gausslegendre")
    assert_close(ours, ref, rtol=1e-5, what=name)


@pytest.mark.reference
@pytest.mark.exercise("07.4", weight=0.25)
@pytest.mark.parametrize("name", NETS)
def test_occlusion(zoo, name):
    captum = _captum()
    model, x, y = zoo(name)
    w = x.shape[-1] // 2
    ours = occlusion.occlusion(model, x, y, window=w, stride=w, baseline=0.5)
    ref = captum.Occlusion(model).attribute(
        x.clone(), sliding_window_shapes=(3, w, w), strides=(3, w, w), baselines=0.5, target=y
    )
    assert_close(ours, ref, rtol=1e-3, what=name)  # (differences of large scores: more rounding)


# --------------------------------------------------------------------------- guided backprop, deconvnet


@pytest.mark.reference
@pytest.mark.exercise("07.3", weight=0.25)
@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
@pytest.mark.parametrize("name", RELU_NETS)
def test_guided_backprop_and_deconvnet(zoo, name, rule):
    captum = _captum()
    model, x, y = zoo(name, "converted")
    method = captum.GuidedBackprop if rule == "guided" else captum.Deconvolution
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # captum: "Setting backward hooks on ReLU activations"
        ref = method(model).attribute(x.clone(), target=y)
    assert_close(deconvnet.guided_backprop(model, x, y, rule=rule), ref, rtol=1e-5, what=f"{name} {rule}")


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
@pytest.mark.parametrize("name", OTHER_ACTIVATION)
def test_guided_backprop_and_deconvnet_refuse_other_activations(zoo, name, rule):
    layer, kind = OTHER_ACTIVATION[name]
    for model in (zoo(name).model, zoo(name, "converted").model):  # converting ReLUs does not help
        before = snapshot(model)
        with pytest.raises(ValueError, match=rf"`{layer}` \(nn\.{kind}\)"):
            deconvnet.guided_backprop(model, zoo(name).x, 0, rule=rule)
        assert_unchanged(model, before)
    with pytest.raises(ValueError, match=kind):
        deconvnet.deconvnet(zoo(name).model, zoo(name).x, 0)


@pytest.mark.parametrize("name", RELU_NETS)
def test_guided_backprop_refuses_unconverted_relus(zoo, name):
    with pytest.raises(ValueError, match="convert_relus"):
        deconvnet.guided_backprop(zoo(name).model, zoo(name).x, 0)


@pytest.mark.reference
@pytest.mark.exercise("07.2", weight=1)
def test_deconvnet_walk_on_alexnet_features(zoo):
    """The explicit walk through AlexNet's features (in-place ReLUs, overlapping max-pools)
    from the channel sums of the last layer equals captum's Deconvolution."""
    captum = _captum()
    features, x = zoo("alexnet").model.features, zoo("alexnet").x
    last = str(len(features) - 1)
    clean = copy.deepcopy(features)
    for m in clean.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False  # (captum's backward hooks need out-of-place ReLUs)

    class ChannelSums(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = clean  # (a sub-module: captum hooks the ReLUs it finds in it)

        def forward(self, x):
            return self.features(x).sum((2, 3))

    for rule, method in (("deconvnet", captum.Deconvolution), ("guided", captum.GuidedBackprop)):
        before = snapshot(features)
        ours = deconvnet.deconvnet_reconstruction(features, x, last, channel=5, rule=rule, start="ones")
        assert_unchanged(features, before)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ref = method(ChannelSums()).attribute(x.clone(), target=5)
        assert ref.abs().max() > 0
        assert_close(ours, ref, rtol=1e-5, what=rule)


@pytest.mark.parametrize(
    "name,where",
    [
        ("vgg11_bn", "'1'.*BatchNorm2d"),
        ("squeezenet1_1", "'3'.*Fire"),
        ("mobilenet_v2", "'0.1'.*BatchNorm2d"),
        ("resnet18", "nn.Sequential"),
    ],
)
def test_deconvnet_walk_refuses_other_layers(zoo, name, where):
    model = zoo(name).model
    features = getattr(model, "features", model)
    with pytest.raises(TypeError, match=where):
        deconvnet.deconvnet_reconstruction(features, zoo(name).x, "0")


# --------------------------------------------------------------------------- LRP


def _zennit_epsilon_plus(model, x, target, canonizer):
    pytest.importorskip("zennit")
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlus
    from zennit.torchvision import ResNetCanonizer

    model = copy.deepcopy(model)
    composite = EpsilonPlus(canonizers=[ResNetCanonizer()] if canonizer == "resnet" else [])
    with Gradient(model, composite) as attributor:
        out = model(x)
        _, relevance = attributor(x.clone(), F.one_hot(target, out.shape[1]).float() * out)
    return relevance


@pytest.mark.reference
@pytest.mark.exercise("08.3", weight=0.25)
@pytest.mark.parametrize("name", LRP_ZENNIT)
def test_lrp_matches_zennit(zoo, name):
    model, x, y = zoo(name, "merged")
    ours = L.lrp(model, x, y, composite=lrp_rules.EpsilonPlus())
    # zennit sees only ReLU modules (not GoogLeNet's F.relu): give it the converted graph,
    # except for ResNet, whose canonizer needs torchvision's own blocks
    theirs = model if LRP_ZENNIT[name] == "resnet" else models.convert_relus(model)
    assert_close(ours, _zennit_epsilon_plus(theirs, x, y, LRP_ZENNIT[name]), rtol=1e-5, what=name)


@pytest.mark.exercise("08.3", weight=0.25)
@pytest.mark.parametrize("name", LRP_CONSERVES + ["resnet18", "shufflenet_v2_x0_5"])
def test_lrp_conserves_on_bias_free_copies(zoo, name):
    """Residual sums (MNASNet, RegNet) that zennit has no canonizer for: under LRP-0 (which
    conserves: z+ loses the relevance of outputs with only negative contributions, as after
    a linear bottleneck) and without biases the input relevance sums to the target logit."""
    model, x, y = zoo(name, "merged")
    clean = models.bias_free_copy(model)
    with torch.no_grad():
        logit = class_scores(clean(x), y)
    R = L.lrp(clean, x, y, composite=lrp_rules.Uniform(lrp_rules.Zero()))
    assert R.shape == x.shape and R.grad_fn is None
    assert_close(R.flatten(1).sum(1), logit, rtol=1e-3, what=name)


@pytest.mark.exercise("08.3", weight=0.25)
@pytest.mark.parametrize("name", LRP_BATCHNORM)
def test_lrp_names_the_batchnorm_it_cannot_merge(zoo, name):
    layer, cause = LRP_BATCHNORM[name]
    model, x, y = zoo(name, "merged")
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"'{layer}'.*{cause}") as err:
        L.lrp(model, x, y)
    assert "merge_batchnorm(model)` first" not in str(err.value)
    assert_unchanged(model, before)


@pytest.mark.parametrize("name", OTHER_ACTIVATION)
def test_lrp_refuses_other_activations(zoo, name):
    layer, kind = OTHER_ACTIVATION[name]
    for model in (zoo(name).model, zoo(name, "merged").model):
        before = snapshot(model)
        with pytest.raises(ValueError, match=rf"`{layer}` \(nn\.{kind}\)"):
            L.lrp(model, zoo(name).x, 0)
        assert_unchanged(model, before)
    with pytest.raises(ValueError, match=kind):
        lrp_graph.lrp_graph(zoo(name, "merged").model, zoo(name).x, 0)


@pytest.mark.parametrize("name", [n for n in RELU_NETS if n not in ("alexnet", "squeezenet1_1")])  # (no BN)
def test_lrp_asks_to_merge_a_mergeable_batchnorm(zoo, name):
    with pytest.raises(ValueError, match=r"BatchNorm.*merge_batchnorm\(model\)` first"):
        L.lrp(zoo(name).model, zoo(name).x, 0)


# --------------------------------------------------------------------------- library-free, hand-built nets


def _tiny(activation):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), activation, nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    ).eval()


def _x(n=2):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))


class _Functional(nn.Module):
    """Conv, then a nonlinearity called in forward (invisible to module hooks)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.fn(self.conv(x)).flatten(1))


class Swish(nn.Module):
    """A custom activation module: the check must look inside it."""

    def forward(self, x):
        return x * torch.sigmoid(x)


OTHER_TINY = {
    "ReLU6": lambda: _tiny(nn.ReLU6()),
    "Hardtanh": lambda: _tiny(nn.Hardtanh()),
    "LeakyReLU": lambda: _tiny(nn.LeakyReLU(0.1)),
    "ELU": lambda: _tiny(nn.ELU()),
    "SiLU": lambda: _tiny(nn.SiLU()),
    "Hardswish": lambda: _tiny(nn.Hardswish()),
    "GELU": lambda: _tiny(nn.GELU()),
    "Softplus": lambda: _tiny(nn.Softplus()),
    "relu6()": lambda: _Functional(F.relu6),
    "silu()": lambda: _Functional(F.silu),
    "tensor.clamp()": lambda: _Functional(lambda t: t.clamp(0, 6)),
    "sigmoid()": lambda: _Functional(Swish()),
}


def _guided_by_hand(model, x, target):
    """Guided backprop on a conv-ReLU-pool-linear net, written out: at the ReLU keep the
    signal where both it and the ReLU's input are positive."""
    conv, pool, fc = model[0], model[2], model[4]
    with torch.enable_grad():
        xr = x.clone().requires_grad_(True)
        a = conv(xr)
        h = torch.relu(a).detach().requires_grad_(True)
        out = fc(pool(h).flatten(1))
        (R,) = torch.autograd.grad(class_scores(out, target).sum(), h)
        R = R.clamp(min=0) * (a > 0)
        (g,) = torch.autograd.grad(a, xr, R)
    return g


@pytest.mark.exercise("07.3", weight=0.25)
@pytest.mark.parametrize("kind", OTHER_TINY)
def test_guided_backprop_explains_relu_and_refuses_the_rest(kind):
    x, y = _x(), torch.tensor([0, 2])
    relu_net = _tiny(nn.ReLU())
    assert_close(deconvnet.guided_backprop(relu_net, x, y), _guided_by_hand(relu_net, x, y), rtol=1e-6)
    model = OTHER_TINY[kind]()
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"guided backprop cannot.*{kind.split('(')[0]}") as err:
        deconvnet.guided_backprop(model, x, y)
    assert err.match("`1`" if isinstance(model, nn.Sequential) else "`<top>`|`fn`")  # where
    assert_unchanged(model, before)


@pytest.mark.exercise("08.3", weight=0.25)
@pytest.mark.parametrize("kind", OTHER_TINY)
def test_lrp_explains_relu_and_refuses_the_rest(kind):
    x, y = _x(), torch.tensor([0, 2])
    relu_net = _tiny(nn.ReLU())
    R = L.lrp(models.bias_free_copy(relu_net), x, y, composite=lrp_rules.Uniform(lrp_rules.Zero()))
    with torch.no_grad():
        assert_close(R.flatten(1).sum(1), class_scores(models.bias_free_copy(relu_net)(x), y), rtol=1e-4)
    model = OTHER_TINY[kind]()
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"lrp cannot explain.*{kind.split('(')[0]}"):
        L.lrp(model, x, y)
    assert_unchanged(model, before)


class _Gate(nn.Module):
    """A squeeze-and-excitation-style gate with a ReLU only: x * relu(pool(x))."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        h = self.relu(self.conv(x))
        return self.fc((h * h.mean((2, 3), keepdim=True)).flatten(1))


class _LayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.relu(F.layer_norm(self.conv(x), (4, 8, 8))).flatten(1))


def test_lrp_refuses_gates_and_functional_layers():
    for model, what in ((_Gate(), "product of two activations"), (_LayerNorm(), r"layer_norm\(\)")):
        with pytest.raises(ValueError, match=what):
            L.lrp(model, _x(), 0)
        check_activations(model, "guided backprop")  # (gradients through them are right for hooks)


class _DenseBlock(nn.Module):
    """DenseNet in miniature: BatchNorm of a concatenation, then ReLU and conv."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 2, 1)
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x):
        h = self.norm(torch.cat([self.conv0(x), self.conv1(x)], 1))
        return self.fc(self.conv2(self.relu(h)).flatten(1))


@pytest.mark.exercise("08.3", weight=1)
def test_lrp_names_the_real_cause_of_an_unmergeable_batchnorm():
    x = _x()
    dense = _DenseBlock().eval()
    # conv0/conv1 can be merged? No: the BatchNorm sees their concatenation
    merged = models.merge_batchnorm(dense)
    with pytest.raises(ValueError, match=r"'norm'.*concatenation") as err:
        L.lrp(merged, x, 0)
    assert "first" not in str(err.value)
    # pre-activation BatchNorm in a Sequential: it follows a ReLU
    torch.manual_seed(0)
    pre = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 2, 1),
        nn.Flatten(),
        nn.Linear(2 * 8 * 8, 3),
    ).eval()
    with pytest.raises(ValueError, match=r"'2'.*follows '1' \(ReLU\).*cannot be merged"):
        L.lrp(models.merge_batchnorm(pre), x, 0)
    # the mergeable case still says what to do, and after merging it works
    post = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).eval()
    with pytest.raises(ValueError, match=r"'1'.*Conv2d '0'.*merge_batchnorm\(model\)` first"):
        L.lrp(post, x, 0)
    assert L.lrp(models.merge_batchnorm(post), x, 0).shape == x.shape


class _InplaceAfterBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.relu(self.bn(self.conv(x))).flatten(1))


@pytest.mark.exercise("04.4", weight=1)
def test_grad_cam_at_a_layer_an_inplace_relu_overwrites():
    """Grad-CAM at the BatchNorm is that of the BatchNorm's output (before the in-place
    ReLU), computed by hand with a cloning hook; not that of the ReLU's output."""
    torch.manual_seed(0)
    model = _InplaceAfterBN().eval()
    with torch.no_grad():
        model.bn.running_mean.normal_()
        model.bn.bias.normal_()
    x, y = _x(), torch.tensor([1, 2])
    with torch.no_grad():
        assert (model.bn(model.conv(x)) < 0).any(), "the ReLU must change something here"
    expected = reference_grad_cam(model, x, y, "bn")
    before = snapshot(model)
    got = gradients.grad_cam(model, x, y, layer="bn")
    assert_close(got, expected, rtol=1e-6)
    assert_unchanged(model, before)
    relu_cam = gradients.grad_cam(model, x, y, layer="relu")  # the ReLU's output: different
    assert not torch.allclose(got, relu_cam, rtol=1e-3)


def test_check_activations_finds_what_hooks_cannot_see():
    check_activations(_tiny(nn.ReLU()), "m")  # nothing to refuse
    check_activations(_Functional(F.relu), "m", rules=True)  # LRP handles F.relu
    with pytest.raises(ValueError, match="convert_relus"):
        check_activations(_Functional(F.relu), "m")  # hooks do not
    with pytest.raises(ValueError, match=r"functional sigmoid\(\) call in `fn`"):
        check_activations(_Functional(Swish()), "m", rules=True)

    class Untraceable(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean((2, 3))) if x.sum() > 0 else self.fc(x.amax((2, 3)))

    with pytest.raises(TypeError, match="torch.fx cannot trace"):
        check_activations(Untraceable(), "m")
