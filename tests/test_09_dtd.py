"""Lesson 09: deep Taylor decomposition: root points, and the rules they give."""

import pytest
import torch
from torch import nn

from interp_lib import dtd, lrp_rules
from interp_lib import lrp as L
from interp_lib.utils import assert_close


@pytest.fixture
def layer_data():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 7, generator=g, dtype=torch.float64)
    b = -torch.rand(5, generator=g, dtype=torch.float64)
    a = torch.rand(4, 7, generator=g, dtype=torch.float64)
    layer = nn.Linear(7, 5).double()
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    return w, b, a, layer


@pytest.mark.exercise("09.1", weight=2)
@pytest.mark.parametrize("direction", ["w", "zplus", "box"])
def test_root_point_is_on_zero_set_along_direction(layer_data, direction):
    w, b, a, _ = layer_data
    root = dtd.dtd_root_point(w, b, a, direction, low=0.0, high=1.0)
    assert root.shape == (4, 5, 7)
    z = a @ w.T + b
    z_root = torch.einsum("nkd,kd->nk", root, w) + b
    active = z > 0
    assert active.any() and (~active).any()
    assert z_root[active].abs().max() < 1e-10  # on the zero set
    assert torch.equal(root[~active], a[:, None, :].expand_as(root)[~active])  # inactive: the input
    # along the search direction: a - root is parallel to v
    v = dtd.search_direction(w, a, direction, 0.0, 1.0)
    step = a[:, None, :] - root
    t = (step * v).sum(-1) / (v * v).sum(-1)
    assert_close(step, t[..., None] * v, rtol=1e-10)


@pytest.mark.exercise("09.1", weight=1)
def test_root_points_stay_in_domain(layer_data):
    w, b, a, _ = layer_data
    assert dtd.dtd_root_point(w, b, a, "zplus").min() >= -1e-12  # inputs >= 0
    box = dtd.dtd_root_point(w, b, a, "box", low=0.0, high=1.0)
    assert box.min() >= -1e-12 and box.max() <= 1 + 1e-12  # inside the box


@pytest.mark.exercise("09.1", weight=1)
def test_root_point_one_neuron_by_hand():
    w = torch.tensor([[1.0, 2.0]])
    b = torch.tensor([-1.0])
    a = torch.tensor([[1.0, 1.0]])  # z = 2
    root = dtd.dtd_root_point(w, b, a, "w")  # t = 2 / 5
    assert_close(root[0, 0], torch.tensor([1 - 0.4, 1 - 0.8]), rtol=1e-6)


@pytest.mark.exercise("09.2", weight=3)
def test_dtd_relevance_equals_rules(layer_data):
    w, b, a, layer = layer_data
    R = torch.relu(a @ w.T + b)
    cases = {
        "w": L.lrp_layer(layer, a, R, "wsquare", zero_bias=True, stabilizer=1e-12),
        "zplus": L.lrp_layer(layer, a, R, "zplus", stabilizer=1e-12),
        "box": L.zb_rule(layer, a, R, 0.0, 1.0, stabilizer=1e-12),
    }
    for direction, rule in cases.items():
        got = dtd.dtd_relevance(w, b, a, direction, low=0.0, high=1.0)
        assert_close(got, rule, rtol=1e-6, what=direction)


@pytest.mark.exercise("09.2", weight=1)
def test_dtd_relevance_conserves(layer_data):
    w, b, a, _ = layer_data
    R = torch.relu(a @ w.T + b)
    for direction in ("w", "zplus", "box"):
        got = dtd.dtd_relevance(w, b, a, direction, low=0.0, high=1.0)
        assert got.shape == a.shape
        assert_close(got.sum(1), R.sum(1), rtol=1e-10, what=direction)


def test_dtd_bad_input(layer_data):
    w, b, a, _ = layer_data
    with pytest.raises(ValueError, match="low"):
        dtd.dtd_root_point(w, b, a, "box", high=1.0)
    with pytest.raises(ValueError, match="high"):
        dtd.dtd_relevance(w, b, a, "box", low=0.0)
    with pytest.raises(ValueError, match="direction"):
        dtd.dtd_root_point(w, b, a, "gradient")
    with pytest.raises(ValueError, match="a"):
        dtd.dtd_root_point(w, b, a - 1, "zplus")
    with pytest.raises(ValueError, match="bias"):
        dtd.dtd_root_point(w, b[:2], a)
    with pytest.raises(ValueError, match="weight"):
        dtd.dtd_root_point(w[0], b, a)


# --------------------------------------------------------------------------- two layers (lesson 09)


def _two_layer_net(seed=1):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 1)
    ).double()
    with torch.no_grad():
        for lin in (net[1], net[3]):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g, dtype=torch.float64) / 4.0)
            lin.bias.copy_(-0.1 * torch.rand(lin.bias.shape, generator=g, dtype=torch.float64))
        net[5].weight.fill_(1.0)  # sum-pooling output
        net[5].bias.zero_()
    x = torch.rand(16, 1, 4, 4, generator=g, dtype=torch.float64)
    return net, x


def _dtd_two_layers(net, x):
    """DTD layer by layer: R_k = a2_k, z+ direction (exact), then the relevance model
    R_j = c_j a1_j (c_j frozen) as a neuron with scaled weights, box direction."""
    W1, b1, W2, b2 = (p.detach() for p in (net[1].weight, net[1].bias, net[3].weight, net[3].bias))
    flat = x.flatten(1)
    a1 = torch.relu(flat @ W1.T + b1)
    R1 = dtd.dtd_relevance(W2, b2, a1, "zplus")
    c = torch.where(a1 > 0, R1 / a1.clamp_min(1e-300), 0.0)
    R0 = torch.stack(
        [
            dtd.dtd_relevance(W1 * c[n, :, None], b1 * c[n], flat[n : n + 1], "box", 0.0, 1.0)[0]
            for n in range(len(x))
        ]
    )
    return R1, R0


@pytest.mark.exercise("09.2")
def test_dtd_through_two_layers_is_the_zb_zplus_composite():
    net, x = _two_layer_net()
    R1, R0 = _dtd_two_layers(net, x)
    y = net(x).detach()[:, 0]
    assert (y > 0).sum() >= 8  # most images have something to explain
    assert_close(R1.sum(1), y, rtol=1e-10)  # conservation, middle layer
    assert_close(R0.sum(1), y, rtol=1e-10)  # and at the pixels
    # by hand: z+ for the middle layer, z^B (l = 0, h = 1) for the pixels
    W1, b1, W2 = net[1].weight.detach(), net[1].bias.detach(), net[3].weight.detach()
    flat = x.flatten(1)
    a1 = torch.relu(flat @ W1.T + b1)
    a2 = torch.relu(a1 @ W2.T + net[3].bias.detach())
    zp = a1[:, :, None] * W2.clamp(min=0).T[None]  # (N, J, K)
    R1_hand = (zp / zp.sum(1, keepdim=True).clamp_min(1e-300) * a2[:, None, :]).sum(2)
    assert_close(R1, R1_hand, rtol=1e-10)
    zb = flat[:, :, None] * W1.T[None] - W1.clamp(min=0).T[None] * 0.0 - W1.clamp(max=0).T[None] * 1.0
    den = zb.sum(1, keepdim=True)
    R0_hand = (zb / torch.where(den == 0, 1.0, den) * R1_hand[:, None, :]).sum(2)
    assert_close(R0, R0_hand, rtol=1e-9)
    # and the course's lrp under that composite
    composite = lrp_rules.Composite(
        [(nn.Linear, lrp_rules.ZPlus(stabilizer=1e-12))],
        first_map=[(nn.Linear, lrp_rules.ZBox(0.0, 1.0, stabilizer=1e-12))],
    )
    assert_close(L.lrp(net, x, 0, composite).flatten(1), R0, rtol=1e-9)
