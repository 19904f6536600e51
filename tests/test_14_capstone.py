"""Lesson 14: the audit tool (intervention_effect) and the submission's format."""

import collections

import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import capstone
from interp_lib.utils import assert_close


def _linear_toy():
    """logit 0 = sum(w * x), logit 1 = -logit 0, on 1x2x2 images; w = [[1, 2], [3, 4]]."""
    model = nn.Sequential(collections.OrderedDict([("flatten", nn.Flatten()), ("fc", nn.Linear(4, 2))]))
    with torch.no_grad():
        w = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
        model.fc.weight.copy_(torch.cat([w, -w]))
        model.fc.bias.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def toy():
    return _linear_toy()


@pytest.fixture(scope="module")
def tagged():
    from interp_lib.data import load_shapes

    return load_shapes("test", n=12, texture_rate=1.0, tag_rate=1.0)


# --------------------------------------------------------------------------- 14.1


@pytest.mark.exercise("14.1", weight=2)
def test_intervention_effect_by_hand_logits(toy):
    x = torch.ones(2, 1, 2, 2)
    x[1] = 2.0
    region = capstone.box((1, 2), (0, 2), size=2)  # the bottom row: weights 3 and 4
    effect = capstone.intervention_effect(toy, x, 0, region, fill=0.5, probability=False)
    # image 0: 3*(1-0.5) + 4*(1-0.5) = 3.5; image 1: 3*1.5 + 4*1.5 = 10.5
    assert effect.shape == (2,)
    assert_close(effect, torch.tensor([3.5, 10.5]), rtol=1e-6)
    # the other class's logit is the negative: its effect too
    assert_close(
        capstone.intervention_effect(toy, x, torch.tensor([1, 1]), region, fill=0.5, probability=False),
        torch.tensor([-3.5, -10.5]),
        rtol=1e-6,
    )


@pytest.mark.exercise("14.1", weight=2)
def test_intervention_effect_by_hand_probabilities(toy):
    x = torch.full((1, 1, 2, 2), 0.1)
    region = capstone.box((0, 1), (0, 1), size=2)  # the top-left pixel, weight 1
    effect = capstone.intervention_effect(toy, x, 0, region, fill=0.0)
    # logits (1, -1) -> (0.9, -0.9): p0 = sigmoid(2) - sigmoid(1.8)
    expected = torch.sigmoid(torch.tensor(2.0)) - torch.sigmoid(torch.tensor(1.8))
    assert_close(effect, expected.view(1), rtol=1e-4)
    assert effect.item() > 0
    # the other class loses what class 0 gains
    assert_close(capstone.intervention_effect(toy, x, 1, region, fill=0.0), -expected.view(1), rtol=1e-4)


@pytest.mark.exercise("14.1", weight=2)
def test_intervention_effect_transplants_a_donor_per_image(toy):
    x = torch.zeros(2, 1, 2, 2)
    donors = torch.arange(8, dtype=torch.float32).view(2, 1, 2, 2)
    regions = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    regions[0, 0, 0, 1] = True  # image 0 gets donor pixel (0, 1) = 1, weight 2
    regions[1, 0, 1, 1] = True  # image 1 gets donor pixel (1, 1) = 7, weight 4
    effect = capstone.intervention_effect(toy, x, 0, regions, fill=donors, probability=False)
    assert_close(effect, torch.tensor([-2.0, -28.0]), rtol=1e-6)  # the transplant adds evidence


def _naive(model, x, target, region, fill, probability):
    out = []
    for n in range(len(x)):
        changed = x[n].clone()
        m = region[min(n, len(region) - 1), 0]
        f = torch.as_tensor(fill, dtype=x.dtype).expand_as(x)[n]
        changed[:, m] = f[:, m]
        with torch.no_grad():
            a, b = model(x[n : n + 1]), model(changed[None])
        if probability:
            a, b = a.softmax(1), b.softmax(1)
        out.append(a[0, target[n]] - b[0, target[n]])
    return torch.stack(out)


@pytest.mark.exercise("14.1", weight=3)
@pytest.mark.parametrize("probability", [True, False])
def test_intervention_effect_matches_a_loop_on_a_cnn(cleverhans, tagged, probability):
    x, y = tagged.x, tagged.y
    blurred = nn.functional.avg_pool2d(nn.functional.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    for fill in (0.05, blurred):
        effect = capstone.intervention_effect(
            cleverhans, x, y, tagged.tag_mask, fill=fill, probability=probability
        )
        expected = _naive(cleverhans, x, y, tagged.tag_mask, fill, probability)
        assert_close(effect, expected, rtol=1e-4 if probability else 1e-5)
        assert effect.grad_fn is None and not effect.requires_grad


@pytest.mark.exercise("14.1", weight=1)
def test_removing_the_clever_hans_tag_costs_the_tag_model_most(cleverhans, tagged):
    from interp_lib.models import load_model

    honest = load_model("shapes_shape")
    drop = {
        name: capstone.intervention_effect(m, tagged.x, tagged.y, tagged.tag_mask, fill=0.05).mean().item()
        for name, m in (("clever", cleverhans), ("honest", honest))
    }
    assert drop["clever"] > 0.2 and drop["clever"] > drop["honest"] + 0.2, drop


@pytest.mark.exercise("14.1", weight=1)
def test_intervention_effect_leaves_model_and_input_unchanged(cleverhans, tagged):
    before, x_before = snapshot(cleverhans), tagged.x.clone()
    capstone.intervention_effect(cleverhans, tagged.x, tagged.y, tagged.tag_mask, fill=0.0)
    assert_unchanged(cleverhans, before)
    assert torch.equal(tagged.x, x_before)


def test_intervention_effect_refuses_bad_regions(toy):
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(TypeError, match="region"):
        capstone.intervention_effect(toy, x, 0, torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match="region"):
        capstone.intervention_effect(toy, x, 0, torch.ones(1, 1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="region.*empty"):
        capstone.intervention_effect(toy, x, 0, torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match="fill"):
        capstone.intervention_effect(toy, x, 0, capstone.box((0, 1), (0, 1), size=2), fill="grey")


# --------------------------------------------------------------------------- 14.2


@pytest.mark.exercise("14.2", weight=1)
def test_suspected_shortcut_has_the_submission_format():
    from interp_lib.data import SHAPES

    region, cls = capstone.suspected_shortcut()
    assert isinstance(region, torch.Tensor) and region.dtype == torch.bool, "region: a boolean tensor"
    assert region.shape == (1, 1, 32, 32), f"region must be (1, 1, 32, 32), got {tuple(region.shape)}"
    assert region.any(), "the region is empty"
    assert isinstance(cls, int) and not isinstance(cls, bool) and 0 <= cls < len(SHAPES), cls


# --------------------------------------------------------------------------- helpers


def test_box_and_overlap():
    a, b = capstone.box((0, 2), (0, 2), size=4), capstone.box((1, 3), (1, 3), size=4)
    assert a.sum() == 4 and a[0, 0, :2, :2].all()
    assert capstone.overlap(a, b) == {"recall": 0.25, "precision": 0.25, "iou": 1 / 7}
    assert capstone.overlap(a, a)["iou"] == 1.0
    with pytest.raises(ValueError, match="rows"):
        capstone.box((2, 2), (0, 1), size=4)
    with pytest.raises(TypeError, match="region"):
        capstone.overlap(a.float(), b)


def test_class_templates_of_a_linear_model_are_its_weights(toy):
    x = torch.rand(5, 1, 2, 2)
    t = capstone.class_templates(toy, x)
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.shape == (2, 1, 2, 2)
    assert_close(t[0, 0], w, rtol=1e-6)
    assert_close(t[1, 0], -w, rtol=1e-6)
