"""Lesson 07, tests added for plausible student bugs (python -m interp_lib mutants): a
strided convolution whose transpose needs output padding, and occlusion written out as a
plain loop over windows (non-square windows and strides, a grey baseline, one target per
image), all without a reference library."""

import pytest
import torch
from torch import nn

from interp_lib import deconvnet, occlusion
from interp_lib.attacks import class_scores
from interp_lib.occlusion import window_positions
from interp_lib.utils import assert_close


def _strided_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5, 3),
    ).eval()


@pytest.mark.exercise("07.2", weight=1)
@pytest.mark.parametrize("rule", deconvnet.RULES)
def test_walk_through_strided_convolutions_on_even_sizes(rule):
    # 12 -> 6 (stride 2, padding 1) -> 3 (pool) -> 1 (stride 2): the transposed conv of a 6x6 map gives
    # 11x11 unless output_padding restores the 12th row and column
    model = _strided_net()
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    ours = deconvnet.deconvnet_reconstruction(model, x, "6", 1, rule=rule, start="ones")
    assert ours.shape == x.shape
    assert_close(ours, deconvnet.guided_backprop(model, x, 1, rule=rule), rtol=1e-5, what=rule)


def _occlusion_by_loop(model, x, target, window, stride, baseline):
    n, c, H, W = x.shape
    (h, w), (sh, sw) = window, stride
    base = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x)
    heat, count = torch.zeros(n, H, W), torch.zeros(H, W)
    with torch.no_grad():
        clean = class_scores(model(x), target)
        for i in window_positions(H, h, sh):
            for j in window_positions(W, w, sw):
                occluded = x.clone()
                occluded[:, :, i : i + h, j : j + w] = base[:, :, i : i + h, j : j + w]
                drop = clean - class_scores(model(occluded), target)
                heat[:, i : i + h, j : j + w] += drop[:, None, None]
                count[i : i + h, j : j + w] += 1
    return (heat / count)[:, None].expand(n, c, H, W)


@pytest.mark.exercise("07.4", weight=2)
def test_occlusion_equals_the_plain_loop(shapes_model, shapes_test):
    x = shapes_test.x[:3]
    target = torch.tensor([0, 1, 3])  # one per image, not all predicted
    # (8 x 8 windows: 16 positions, so one chunk of batch_size images holds all three images)
    for window, stride, baseline, batch in (
        ((3, 6), (3, 4), 0.3, 100),
        ((5, 5), (2, 2), 0.5, 256),
        ((8, 8), (8, 8), 0.5, 256),
    ):
        ours = occlusion.occlusion(
            shapes_model, x, target, window=window, stride=stride, baseline=baseline, batch_size=batch
        )
        want = _occlusion_by_loop(shapes_model, x, target, window, stride, baseline)
        assert_close(ours, want, rtol=1e-5, what=f"window {window} stride {stride} baseline {baseline}")


@pytest.mark.exercise("07.4", weight=1)
def test_occlusion_default_baseline_is_grey():
    # the score is the sum of pixels: hiding a window behind 0.5 changes it by sum(x - 0.5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.ones(16), -torch.ones(16)]))
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    out = occlusion.occlusion(model, x, 0, window=2, stride=2)
    expected = torch.nn.functional.avg_pool2d(x - 0.5, 2).repeat_interleave(2, 2).repeat_interleave(2, 3) * 4
    assert_close(out, expected, rtol=1e-6)
    assert_close(occlusion.occlusion(model, x, 1, window=2, stride=2), -expected, rtol=1e-6)


@pytest.mark.exercise("07.2", weight=1)
@pytest.mark.parametrize("rule", deconvnet.RULES)
def test_walk_through_padded_and_ceil_mode_pooling(rule):
    # the switches must come from the layer's own pooling: padding 1, ceil_mode, overlapping windows
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 3),
    ).eval()
    x = torch.rand(2, 3, 11, 11, generator=torch.Generator().manual_seed(2))
    ours = deconvnet.deconvnet_reconstruction(model, x, "7", 2, rule=rule, start="ones")
    assert_close(ours, deconvnet.guided_backprop(model, x, 2, rule=rule), rtol=1e-5, what=rule)
