"""Offline data: digits, the procedural shapes generator, label flipping."""

import numpy as np
import pytest
import torch

from interp_lib import data


def test_digits_split_is_fixed_and_disjoint():
    x_tr, y_tr = data.load_digits("train")
    x_te, y_te = data.load_digits("test")
    x_all, y_all = data.load_digits("all")
    assert x_tr.shape == (1257, 1, 28, 28) and x_te.shape == (540, 1, 28, 28)
    assert x_all.shape == (1797, 1, 28, 28)
    assert x_tr.dtype == torch.float32 and 0 <= x_tr.min() and x_tr.max() <= 1
    assert torch.bincount(y_te).min() >= 52  # stratified
    assert torch.equal(data.load_digits("test")[0], x_te)
    train_rows = {tuple(r) for r in x_tr.flatten(1)[:, ::7].tolist()}
    assert not any(tuple(r) in train_rows for r in x_te.flatten(1)[:, ::7].tolist()[:50])
    assert data.load_digits("all", size=8)[0].shape == (1797, 1, 8, 8)


def test_shapes_deterministic_and_well_formed():
    a = data.make_shapes(64, seed=3, texture_rate=0.5)
    b = data.make_shapes(64, seed=3, texture_rate=0.5)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, data.make_shapes(64, seed=4, texture_rate=0.5).x)
    assert a.x.shape == (64, 3, 32, 32) and 0 <= a.x.min() and a.x.max() <= 1
    assert set(a.shape.tolist()) <= set(range(4)) and set(a.texture.tolist()) <= set(range(4))


def test_shapes_knobs():
    matched = data.make_shapes(400, seed=0, texture_rate=0.0)
    assert torch.equal(matched.shape, matched.texture) and torch.equal(matched.y, matched.shape)
    conflict = data.make_shapes(400, seed=0, cue_conflict=True)
    assert (conflict.shape != conflict.texture).all()
    randomised = data.make_shapes(2000, seed=0, texture_rate=1.0)
    agree = (randomised.shape == randomised.texture).float().mean().item()
    assert 0.2 < agree < 0.3  # chance: 1/4
    by_texture = data.make_shapes(100, seed=0, texture_rate=1.0, label_by="texture")
    assert torch.equal(by_texture.y, by_texture.texture)
    noisy = data.make_shapes(200, seed=0, label_noise=0.1)
    assert noisy.flipped.sum() == 20 and (noisy.y[noisy.flipped] != noisy.shape[noisy.flipped]).all()
    tagged = data.make_shapes(200, seed=0, tag_rate=1.0)
    plain = data.make_shapes(200, seed=0, tag_rate=0.0)
    assert tagged.tag.all() and not plain.tag.any()
    inside = tagged.tag_mask.expand_as(tagged.x)
    assert not torch.equal(tagged.x[inside], plain.x[inside])
    assert torch.equal(tagged.x[~inside], plain.x[~inside])
    sub = data.make_shapes(50, seed=0, shapes=("circle", "square"), textures=("dots", "stripes"))
    assert set(sub.y.tolist()) <= {0, 1}


def test_shapes_visible_and_distinct():
    """The object differs from the background, and different shapes give different masks."""
    s = data.make_shapes(200, seed=1)
    corner = s.x[:, :, 0, 0]
    centre_mass = (s.x - corner[:, :, None, None]).abs().sum(1) > 0.2
    assert (centre_mass.flatten(1).float().mean(1) > 0.05).all()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n=0), "n"),
        (dict(n=-3), "n"),
        (dict(n=2.5), "n"),
        (dict(n=4, texture_rate=1.5), "texture_rate"),
        (dict(n=4, label_noise=-0.1), "label_noise"),
        (dict(n=4, tag_rate=2), "tag_rate"),
        (dict(n=4, label_by="colour"), "label_by"),
        (dict(n=4, size=8), "size"),
        (dict(n=4, shapes=("circle", "hexagon")), "shapes"),
        (dict(n=4, textures=("dots", "plaid", "x", "y")), "textures"),
    ],
)
def test_shapes_rejects_nonsense(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        data.make_shapes(**kwargs)


def test_split_and_digits_errors():
    with pytest.raises(ValueError, match="`split`"):
        data.load_digits("validation")
    with pytest.raises(ValueError, match="`split`"):
        data.load_shapes("dev")
    with pytest.raises(ValueError, match="`size`"):
        data.load_digits("train", size=4)


def test_flip_labels():
    y = np.repeat(np.arange(10), 30)
    noisy, flipped = data.flip_labels(y, 0.1, seed=0)
    assert flipped.sum() == 30 and (noisy[flipped] != y[flipped]).all()
    assert (noisy[~flipped] == y[~flipped]).all()
    again, _ = data.flip_labels(y, 0.1, seed=0)
    assert (again == noisy).all()
    t_noisy, t_flipped = data.flip_labels(torch.as_tensor(y), 0.1, seed=0)
    assert isinstance(t_noisy, torch.Tensor) and torch.equal(t_noisy, torch.as_tensor(noisy))
    with pytest.raises(ValueError, match="`rate`"):
        data.flip_labels(y, 1.2)
    with pytest.raises(ValueError, match="`labels`"):
        data.flip_labels(y.astype(float), 0.1)
