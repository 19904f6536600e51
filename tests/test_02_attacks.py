"""Lesson 02: fgsm, pgd, fooling_image, adversarial_patch (input_gradient: 02.1)."""

import pytest
import torch
from helpers import assert_unchanged, snapshot

from interp_lib import attacks, models
from interp_lib.models import load_model
from interp_lib.utils import accuracy, assert_close


@pytest.fixture(scope="module")
def digits_batch64(digits_test):
    x, y = digits_test
    return x[:64], y[:64]


@pytest.fixture(scope="module")
def shapes_batch48(shapes_test):
    return shapes_test.x[:48], shapes_test.y[:48]


# --------------------------------------------------------------------------- 02.1 input_gradient


@pytest.mark.exercise("02.1", weight=2)
def test_input_gradient_of_a_linear_model_is_its_weight_row():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 5, 4))
    x = torch.rand(3, 2, 5, 5)
    target = torch.tensor([2, 0, 3])
    g = attacks.input_gradient(model, x, target)
    assert g.shape == x.shape and g.grad_fn is None
    assert_close(g.flatten(1), model[1].weight[target].detach(), rtol=1e-6, what="input gradient")


@pytest.mark.exercise("02.1", weight=1)
@pytest.mark.reference
def test_input_gradient_matches_captum_saliency(digits_model, digits_batch64):
    captum_attr = pytest.importorskip("captum.attr")
    x, y = digits_batch64
    ours = attacks.input_gradient(digits_model, x[:8], y[:8])
    ref = captum_attr.Saliency(digits_model).attribute(
        x[:8].clone().requires_grad_(True), target=y[:8], abs=False
    )
    assert_close(ours, ref, rtol=1e-6, what="input gradient vs captum Saliency")


@pytest.mark.exercise("02.1", weight=1)
def test_input_gradient_int_target_and_model_unchanged(digits_model, digits_batch64):
    x, _ = digits_batch64
    before = snapshot(digits_model)
    g_int = attacks.input_gradient(digits_model, x[:4], 3)
    g_vec = attacks.input_gradient(digits_model, x[:4], torch.full((4,), 3))
    assert torch.equal(g_int, g_vec)
    assert_unchanged(digits_model, before)


def _attack_case(which, digits_model, shapes_model, digits_batch64, shapes_batch48):
    """Model, images, labels, and the targeted mode's label map (the next class)."""
    model, (x, y) = (digits_model, digits_batch64) if which == "digits" else (shapes_model, shapes_batch48)
    k = 10 if which == "digits" else 4
    return model, x, y, lambda images, labels: (labels + 1) % k


# --------------------------------------------------------------------------- 02.2 fgsm


@pytest.mark.exercise("02.2", weight=2)
@pytest.mark.reference
@pytest.mark.parametrize("which", ["digits", "shapes"])
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_torchattacks(
    which, targeted, digits_model, shapes_model, digits_batch64, shapes_batch48
):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, shift = _attack_case(which, digits_model, shapes_model, digits_batch64, shapes_batch48)
    ours = attacks.fgsm(model, x, shift(x, y) if targeted else y, eps=0.08, targeted=targeted)
    ref = torchattacks.FGSM(model, eps=0.08)
    if targeted:
        ref.set_mode_targeted_by_function(shift)
    assert_close(ours, ref(x, y), rtol=1e-6, what="fgsm vs torchattacks")


@pytest.mark.exercise("02.2", weight=1)
def test_fgsm_properties(digits_model, digits_batch64):
    x, y = digits_batch64
    before = snapshot(digits_model)
    x_in = x.clone()
    adv = attacks.fgsm(digits_model, x, y, eps=0.1)
    assert torch.equal(x, x_in), "fgsm modified its input"
    assert adv.shape == x.shape and adv.grad_fn is None
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert accuracy(digits_model, adv, y) < accuracy(digits_model, x, y) - 0.3
    assert torch.equal(attacks.fgsm(digits_model, x, y, eps=0.0), x)
    assert_unchanged(digits_model, before)


# --------------------------------------------------------------------------- 02.3 pgd


@pytest.mark.exercise("02.3", weight=3)
@pytest.mark.reference
@pytest.mark.parametrize("which", ["digits", "shapes"])
@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_matches_torchattacks(
    which, targeted, digits_model, shapes_model, digits_batch64, shapes_batch48
):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, shift = _attack_case(which, digits_model, shapes_model, digits_batch64, shapes_batch48)
    eps, alpha, steps = 0.1, 0.02, 8
    ours = attacks.pgd(
        model,
        x,
        shift(x, y) if targeted else y,
        eps=eps,
        alpha=alpha,
        steps=steps,
        generator=torch.Generator().manual_seed(11),
        targeted=targeted,
    )
    ref = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    if targeted:
        ref.set_mode_targeted_by_function(shift)
    torch.manual_seed(11)  # torchattacks draws its start from the global generator
    assert_close(ours, ref(x, y), rtol=1e-6, what="pgd vs torchattacks")


@pytest.mark.exercise("02.3", weight=1)
@pytest.mark.reference
def test_pgd_without_random_start_matches_torchattacks(digits_model, digits_batch64):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits_batch64
    ours = attacks.pgd(digits_model, x, y, eps=0.1, alpha=0.02, steps=5, random_start=False)
    ref = torchattacks.PGD(digits_model, eps=0.1, alpha=0.02, steps=5, random_start=False)(x, y)
    assert_close(ours, ref, rtol=1e-6, what="pgd (no random start) vs torchattacks")


@pytest.mark.exercise("02.3", weight=2)
def test_pgd_properties(digits_model, digits_batch64):
    x, y = digits_batch64
    before = snapshot(digits_model)
    x_in = x.clone()
    adv = attacks.pgd(
        digits_model, x, y, eps=0.1, alpha=0.02, steps=10, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(x, x_in)
    assert adv.shape == x.shape and adv.grad_fn is None
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    again = attacks.pgd(
        digits_model, x, y, eps=0.1, alpha=0.02, steps=10, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(adv, again), "same generator seed, different result"
    # PGD at least as strong as FGSM at the same budget on a fixed batch
    fgsm_acc = accuracy(digits_model, attacks.fgsm(digits_model, x, y, eps=0.1), y)
    assert accuracy(digits_model, adv, y) <= fgsm_acc
    assert_unchanged(digits_model, before)


@pytest.mark.exercise("02.3", weight=1)
def test_pgd_targeted_reaches_target(digits_model, digits_batch64):
    x, y = digits_batch64
    wanted = (y + 1) % 10
    adv = attacks.pgd(
        digits_model,
        x,
        wanted,
        eps=0.3,
        alpha=0.03,
        steps=20,
        generator=torch.Generator().manual_seed(0),
        targeted=True,
    )
    assert accuracy(digits_model, adv, wanted) > 0.9


@pytest.mark.exercise("02.3", weight=2)
def test_robust_model_resists_pgd(digits_test):
    x, y = digits_test
    x, y = x[:200], y[:200]
    result = {}
    for name in ("digits", "digits_robust"):
        model = load_model(name)
        adv = attacks.pgd(
            model, x, y, eps=0.1, alpha=0.025, steps=10, generator=torch.Generator().manual_seed(0)
        )
        result[name] = accuracy(model, adv, y)
    assert result["digits_robust"] > result["digits"] + 0.25, result
    assert result["digits_robust"] > 0.5, result


def test_pgd_model_unchanged_when_it_raises(digits_model, digits_batch64):
    x, y = digits_batch64
    before = snapshot(digits_model)
    with pytest.raises(ValueError, match="target"):
        attacks.pgd(digits_model, x, torch.full((len(x),), 10))
    assert_unchanged(digits_model, before)


# --------------------------------------------------------------------------- 02.4 fooling_image


@pytest.mark.exercise("02.4", weight=3)
@pytest.mark.parametrize("name", ["digits", "shapes_shape"])
def test_fooling_images_reach_confidence(name):
    model = load_model(name)
    shape = (10, 1, 28, 28) if name == "digits" else (4, 3, 32, 32)
    before = snapshot(model)
    noise = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    fooled = attacks.fooling_image(model, noise, torch.arange(shape[0]), max_steps=200)
    assert fooled.shape == noise.shape and fooled.min() >= 0 and fooled.max() <= 1
    with torch.no_grad():
        conf = model(fooled).softmax(1).diagonal()
    assert (conf >= 0.99).all(), conf
    assert_unchanged(model, before)


@pytest.mark.exercise("02.4", weight=1)
def test_fooling_image_stops_when_confident(digits_model, digits_batch64):
    x, y = digits_batch64
    with torch.no_grad():
        sure = digits_model(x).softmax(1).gather(1, y[:, None]).squeeze(1) >= 0.99
    out = attacks.fooling_image(digits_model, x[sure][:5], y[sure][:5])
    assert torch.equal(out, x[sure][:5]), "images already at the confidence must not move"


# --------------------------------------------------------------------------- 02.5 adversarial_patch


@pytest.mark.exercise("02.5", weight=2)
def test_adversarial_patch_works_on_shapes():
    from interp_lib.data import load_shapes

    model = load_model("shapes_shape")
    before = snapshot(model)
    train = load_shapes("train", n=800, texture_rate=1.0)
    held = load_shapes("val", n=300, texture_rate=1.0)
    patch = attacks.adversarial_patch(
        model, train.x, 3, size=10, steps=120, lr=0.1, generator=torch.Generator().manual_seed(0)
    )
    assert patch.shape == (3, 10, 10) and patch.min() >= 0 and patch.max() <= 1
    rate = attacks.patch_success_rate(model, held.x, patch, 3, torch.Generator().manual_seed(1))
    assert rate > 0.5, rate
    assert_unchanged(model, before)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs(digits_model, digits_batch64):
    x, y = digits_batch64
    with pytest.raises(ValueError, match="eps"):
        attacks.fgsm(digits_model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="eps"):
        attacks.pgd(digits_model, x, y, eps=-1.0)
    with pytest.raises(ValueError, match="x"):
        attacks.pgd(digits_model, x * 2, y)
    with pytest.raises(ValueError, match="x"):
        attacks.fgsm(digits_model, x[0], y)
    with pytest.raises(ValueError, match="target"):
        attacks.fgsm(digits_model, x, 10)
    with pytest.raises(ValueError, match="target"):
        attacks.pgd(digits_model, x, y[:3])
    with pytest.raises(ValueError, match="steps"):
        attacks.pgd(digits_model, x, y, steps=0)
    with pytest.raises(TypeError, match="generator"):
        attacks.pgd(digits_model, x, y, generator=0)
    with pytest.raises(ValueError, match="confidence"):
        attacks.fooling_image(digits_model, x, 1, confidence=1.5)
    with pytest.raises(TypeError, match="size"):
        attacks.adversarial_patch(digits_model, x, 1, size=2.5)


def test_apply_patch_places_the_patch():
    x = torch.zeros(2, 3, 12, 12)
    patch = torch.arange(3 * 4 * 4, dtype=torch.float32).view(3, 4, 4)
    out = attacks.apply_patch(x, patch, torch.tensor([0, 5]), torch.tensor([2, 8]))
    assert torch.equal(out[0, :, 0:4, 2:6], patch) and torch.equal(out[1, :, 5:9, 8:12], patch)
    assert out.sum() == 2 * patch.sum()


# --------------------------------------------------------------------------- the documented procedures, by hand
# Library-free versions of what the torchattacks cross-checks pin: each attack written out
# from its docstring, step by step, and compared on a small batch.


def _ce_gradient(model, x, labels):
    xr = x.clone().requires_grad_(True)
    return torch.autograd.grad(torch.nn.functional.cross_entropy(model(xr), labels), xr)[0]


@pytest.mark.exercise("02.1", weight=1)
def test_input_gradient_leaves_the_input_alone(digits_model, digits_batch64):
    x = digits_batch64[0][:4].clone()
    attacks.input_gradient(digits_model, x, 3)
    assert not x.requires_grad and x.grad is None, "work on a detached copy of x, not on x itself"


@pytest.mark.exercise("02.2", weight=1)
def test_fgsm_by_hand_both_modes(digits_model, digits_batch64):
    x, y = digits_batch64[0][:16], digits_batch64[1][:16]
    wanted = (y + 3) % 10
    for targeted, labels, sign in ((False, y, 1.0), (True, wanted, -1.0)):
        expected = (x + sign * 0.05 * _ce_gradient(digits_model, x, labels).sign()).clamp(0, 1)
        got = attacks.fgsm(digits_model, x, labels, eps=0.05, targeted=targeted)
        assert_close(got, expected, rtol=1e-6, what=f"fgsm targeted={targeted}")


def _pgd_by_hand(model, x, labels, eps, alpha, steps, seed, random_start, targeted):
    adv = x.clone()
    if random_start:
        delta = torch.empty_like(x).uniform_(-eps, eps, generator=torch.Generator().manual_seed(seed))
        adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        g = _ce_gradient(model, adv, labels)
        step = adv + alpha * (-g if targeted else g).sign()
        adv = (x + (step - x).clamp(-eps, eps)).clamp(0, 1)
    return adv


@pytest.mark.exercise("02.3", weight=2)
@pytest.mark.parametrize("random_start", [True, False])
@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_by_hand(digits_model, digits_batch64, random_start, targeted):
    x, y = digits_batch64[0][:16], digits_batch64[1][:16]
    labels = (y + 1) % 10 if targeted else y
    eps, alpha, steps = 0.1, 0.04, 3  # 3 * 0.04 > 0.1: the projection matters
    expected = _pgd_by_hand(digits_model, x, labels, eps, alpha, steps, 7, random_start, targeted)
    got = attacks.pgd(
        digits_model,
        x,
        labels,
        eps=eps,
        alpha=alpha,
        steps=steps,
        random_start=random_start,
        generator=torch.Generator().manual_seed(7),
        targeted=targeted,
    )
    assert_close(got, expected, rtol=1e-6, what=f"pgd random_start={random_start} targeted={targeted}")


@pytest.mark.exercise("02.4", weight=1)
def test_fooling_image_steps_by_hand(digits_model, digits_batch64):
    x, y = digits_batch64
    with torch.no_grad():
        p = digits_model(x).softmax(1).gather(1, y[:, None]).squeeze(1)
    sure = p >= 0.99
    noise = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    start = torch.cat([x[sure][:2], noise])  # two already confident, three not
    target = torch.cat([y[sure][:2], torch.tensor([3, 5, 7])])
    expected = start.clone()
    for _ in range(2):
        xr = expected.clone().requires_grad_(True)
        log_p = torch.log_softmax(digits_model(xr), 1).gather(1, target[:, None]).squeeze(1)
        g = torch.autograd.grad(log_p.sum(), xr)[0]
        active = (log_p.detach().exp() < 0.99).view(-1, 1, 1, 1)
        norm = g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        expected = torch.where(active, (expected + 0.5 * g / norm).clamp(0, 1), expected)
    got = attacks.fooling_image(digits_model, start, target, lr=0.5, max_steps=2)
    assert torch.equal(got[:2], start[:2]), "images at the confidence must not move"
    assert_close(got, expected, rtol=1e-5, what="two normalised steps")


@pytest.mark.exercise("02.5", weight=1)
def test_adversarial_patch_follows_the_documented_loop():
    from interp_lib.data import load_shapes

    model = load_model("shapes_shape")
    x = load_shapes("train", n=40, texture_rate=1.0).x
    got = attacks.adversarial_patch(
        model, x, 2, size=6, steps=4, lr=0.1, batch_size=8, generator=torch.Generator().manual_seed(4)
    )
    g = torch.Generator().manual_seed(4)
    patch = torch.rand(3, 6, 6, generator=g).requires_grad_(True)
    optimiser = torch.optim.Adam([patch], lr=0.1)
    frozen = [p.requires_grad_(False) for p in model.parameters()]
    try:
        for _ in range(4):
            idx = torch.randint(len(x), (8,), generator=g)
            rows, cols = attacks.random_positions(8, x.shape[-2:], 6, g)
            logits = model(attacks.apply_patch(x[idx], patch, rows, cols))
            loss = torch.nn.functional.cross_entropy(logits, torch.full((8,), 2))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                patch.clamp_(0, 1)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    assert got.shape == (3, 6, 6) and got.grad_fn is None
    assert_close(got, patch.detach(), rtol=1e-5, what="patch after 4 documented steps")


# --------------------------------------------------------------------------- catastrophic overfitting


def test_fgsm_training_is_one_step_pgd(digits_model, digits_batch64):
    """The FGSM-trained models are trained with `pgd(steps=1)`: without a random start and
    with alpha = eps that is FGSM exactly; with one it is Wong et al.'s FGSM-RS."""
    from interp_lib.course.train import _adversarial

    x, y = digits_batch64
    spec = models.MODELS["digits_fgsm"].adversarial
    assert spec["steps"] == 1 and spec["random_start"] is False and spec["alpha"] == spec["eps"]
    got = _adversarial(digits_model, x, y, spec, torch.Generator().manual_seed(0))
    assert torch.equal(got, attacks.fgsm(digits_model, x, y, eps=spec["eps"]))
    rs = models.MODELS["digits_fgsm_rs"].adversarial
    assert rs["random_start"] is True and rs["alpha"] == 1.25 * rs["eps"]
    got = _adversarial(digits_model, x, y, rs, torch.Generator().manual_seed(0))
    u = torch.empty_like(x).uniform_(-rs["eps"], rs["eps"], generator=torch.Generator().manual_seed(0))
    start = torch.clamp(x + u, 0, 1)
    xr = start.clone().requires_grad_(True)
    grad = torch.autograd.grad(torch.nn.functional.cross_entropy(digits_model(xr), y, reduction="sum"), xr)[0]
    want = torch.clamp(x + torch.clamp(start + rs["alpha"] * grad.sign() - x, -rs["eps"], rs["eps"]), 0, 1)
    assert (got - want).abs().max() < 1e-6


@pytest.mark.exercise("02.3", weight=1)
def test_fgsm_training_overfits_catastrophically(digits_test):
    """Lesson 02: at eps 0.2 the FGSM-trained model keeps about half the test digits under
    FGSM and almost none under PGD-10; the random start keeps several times more."""
    x, y = digits_test
    result = {}
    for name in ("digits_fgsm", "digits_fgsm_rs", "digits_robust"):
        model = load_model(name)
        fgsm_acc = accuracy(model, attacks.fgsm(model, x, y, eps=0.2), y)
        adv = attacks.pgd(
            model, x, y, eps=0.2, alpha=0.05, steps=10, generator=torch.Generator().manual_seed(0)
        )
        result[name] = (fgsm_acc, accuracy(model, adv, y))
    fgsm_acc, pgd_acc = result["digits_fgsm"]
    assert 0.45 <= fgsm_acc <= 0.65 and pgd_acc <= 0.08, result  # measured: 0.537 and 0.031
    assert result["digits_fgsm_rs"][1] >= 0.12, result  # measured: 0.194
    assert result["digits_fgsm_rs"][1] > 3 * pgd_acc, result
    assert result["digits_robust"][1] > pgd_acc + 0.15, result  # measured: 0.254
