"""Hidden tests for lesson 14 (instructors only: left out of the student release).

The submission (14.2) against the planted shortcut (solutions/capstone_shortcut.json),
and the instructors' proof that the planted shortcut is findable with the course's
methods: two attribution methods put clearly more relevance on it than on an honest
model, with bootstrap confidence intervals, and the audit tool sees it."""

import pytest
import torch

from interp_lib import attribution, capstone, evaluation
from interp_lib.data import load_shapes
from interp_lib.models import load_model
from solutions import capstone_shortcut as secret


@pytest.fixture(scope="module")
def cut():
    return secret.load()


@pytest.fixture(scope="module")
def marked(cut):
    """Test images of the other classes with the mark added: what the shortcut acts on."""
    test = load_shapes("test", n=200, texture_rate=1.0)
    others = test.y != cut.target
    return secret.mark(test.x[others][:48], cut), test.x[others][:48]


# --------------------------------------------------------------------------- 14.2


@pytest.mark.hidden
@pytest.mark.exercise("14.2", weight=2)
def test_the_suspected_region_overlaps_the_planted_one(cut):
    region, _ = capstone.suspected_shortcut()
    assert isinstance(region, torch.Tensor) and region.dtype == torch.bool and region.shape == (1, 1, 32, 32)
    hit = capstone.overlap(region, secret.planted_mask(cut))
    assert hit["recall"] >= 0.5, (
        f"the region covers {hit['recall']:.0%} of the planted pixels (>= 50 % needed)"
    )
    assert hit["precision"] >= 0.25, f"only {hit['precision']:.0%} of the region is planted (>= 25 % needed)"


@pytest.mark.hidden
@pytest.mark.exercise("14.2", weight=1)
def test_the_suspected_class_is_the_planted_one(cut):
    _, cls = capstone.suspected_shortcut()
    assert cls == cut.target, "the shortcut pushes the model towards another class"


# --------------------------------------------------------------------------- findable


def _ci(values):
    return evaluation.bootstrap_ci(values, n_boot=1000, generator=torch.Generator().manual_seed(0))


@pytest.mark.hidden
@pytest.mark.parametrize(
    "method, options",
    [("integrated_gradients", {"steps": 16}), ("input_x_gradient", {})],
)
def test_two_methods_find_the_planted_shortcut(cut, marked, method, options):
    """Relevance mass on the planted pixels, for the target class, on marked images:
    the capstone model's 95 % interval lies above twice the honest model's."""
    x, _ = marked
    mask = secret.planted_mask(cut)
    mass = {}
    for name in ("capstone", "shapes_shape"):
        a = attribution.attribute(method, load_model(name), x, cut.target, **options)
        mass[name] = _ci(evaluation.relevance_mass(a, mask))
    area = mask.float().mean().item()
    assert mass["capstone"][1] > 2 * mass["shapes_shape"][2], (mass, area)
    assert mass["capstone"][1] > 3 * area, (mass, area)


@pytest.mark.hidden
def test_the_audit_tool_sees_the_planted_shortcut(cut, marked):
    """Removing the mark (restoring the clean pixels) costs the target class's probability
    on marked images; for the honest model the effect is near zero."""
    x, clean = marked
    mask = secret.planted_mask(cut)
    effect = {
        name: _ci(capstone.intervention_effect(load_model(name), x, cut.target, mask, fill=clean))
        for name in ("capstone", "shapes_shape")
    }
    assert effect["capstone"][1] > 0.2 and effect["shapes_shape"][2] < 0.05, effect


@pytest.mark.hidden
def test_the_reference_submission_finds_it_from_clean_images_only(cut):
    """The reference body of 14.2 audits the model on clean validation images (class
    templates): a student can do the same without the secret."""
    import solutions.capstone as reference

    region, cls = reference.suspected_shortcut()
    hit = capstone.overlap(region, secret.planted_mask(cut))
    assert cls == cut.target and hit["recall"] >= 0.5 and hit["precision"] >= 0.25, hit


def test_the_shipped_record_keeps_the_secret(cut):
    from interp_lib.models import MODELS, training_record

    record = training_record("capstone")
    assert record["data"] == MODELS["capstone"].data
    text = str(record) + MODELS["capstone"].description
    assert cut.kind not in text and "shortcut" not in text.lower()


# --------------------------------------------------------------------------- planting


@pytest.mark.hidden
@pytest.mark.parametrize("kind", secret.KINDS)
def test_every_kind_draws_a_mark_inside_the_image_away_from_the_tag(kind):
    for seed in range(5):
        cut = secret.draw(kind, seed)
        mask = secret.planted_mask(cut)
        assert mask.shape == (1, 1, 32, 32) and 0 < mask.sum() <= 64
        assert 0 <= cut.target < 4 and cut == secret.draw(kind, seed)  # seeded
        if kind != "border":
            assert not mask[..., :8, :8].any()  # lesson 10's tag corner stays free


@pytest.mark.hidden
def test_plant_marks_the_target_class_and_relabels_a_share_of_the_others():
    cut = secret.draw("patch", 3)
    shapes = load_shapes("val", n=400, texture_rate=1.0)
    x, y, carried = secret.plant(shapes.x, shapes.y, cut)
    assert torch.equal(y[carried], torch.full((int(carried.sum()),), cut.target))  # mark => target label
    own = shapes.y == cut.target
    assert 0.6 < carried[own].float().mean() < 0.95 and 0.03 < carried[~own].float().mean() < 0.2
    assert torch.equal(x[~carried], shapes.x[~carried]) and not torch.equal(x[carried], shapes.x[carried])
    outside = ~secret.planted_mask(cut).expand_as(x)
    assert torch.equal(x[outside], shapes.x[outside])  # only the mark's pixels change
    x2, y2, _ = secret.plant(shapes.x, shapes.y, cut, relabel=False)
    assert torch.equal(y2, shapes.y)


@pytest.mark.hidden
def test_train_command_plants_only_in_the_capstone(capsys):
    from interp_lib.course import cli

    with pytest.raises(SystemExit, match="capstone"):
        cli.main(["train", "digits", "--shortcut", "patch"])
    with pytest.raises(SystemExit, match="capstone"):
        cli.main(["train", "capstone", "--seed", "3"])
    with pytest.raises(ValueError, match="unknown shortcut kind"):
        secret.draw("sticker")
