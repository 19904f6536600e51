"""Lesson 04, tests added for plausible student bugs (python -m interp_lib mutants): a
``target`` that is not the predicted class, checked by hand (no reference library)."""

import pytest
import torch
from helpers import reference_grad_cam

from interp_lib import gradients
from interp_lib.attacks import class_scores
from interp_lib.utils import assert_close


def _other_class(model, x):
    """For each image a class the model does not predict (the explanation of a non-winner)."""
    with torch.no_grad():
        logits = model(x)
    return (logits.argmax(1) + 1) % logits.shape[1]


def _score_gradient(model, x, target):
    xr = x.clone().requires_grad_(True)
    return torch.autograd.grad(class_scores(model(xr), target).sum(), xr)[0]


@pytest.mark.exercise("04.1", weight=1)
def test_saliency_of_a_class_that_is_not_predicted(shapes_model, shapes_batch):
    x = shapes_batch[0]
    other = _other_class(shapes_model, x)
    g = _score_gradient(shapes_model, x, other)
    assert_close(gradients.saliency_map(shapes_model, x, other), g.abs().amax(1, keepdim=True), rtol=1e-6)


@pytest.mark.exercise("04.2", weight=1)
def test_input_x_gradient_of_a_class_that_is_not_predicted(shapes_model, shapes_batch):
    x = shapes_batch[0]
    other = _other_class(shapes_model, x)
    assert_close(
        gradients.input_x_gradient(shapes_model, x, other),
        x * _score_gradient(shapes_model, x, other),
        rtol=1e-6,
    )


@pytest.mark.exercise("04.4", weight=1)
def test_grad_cam_of_a_class_that_is_not_predicted(shapes_model, shapes_batch):
    x = shapes_batch[0]
    other = _other_class(shapes_model, x)
    expected = reference_grad_cam(shapes_model, x, other, "conv3")
    got = gradients.grad_cam(shapes_model, x, other, layer="conv3")
    assert_close(got, expected, rtol=1e-6)
    # a class the model does not predict must not give the prediction's map
    with torch.no_grad():
        predicted = shapes_model(x).argmax(1)
    assert not torch.allclose(got, gradients.grad_cam(shapes_model, x, predicted, layer="conv3"))


@pytest.mark.exercise("04.2", weight=1)
def test_input_x_gradient_is_detached_when_the_input_requires_grad(shapes_model, shapes_batch):
    x, y = shapes_batch[0].clone().requires_grad_(True), shapes_batch[1]
    a = gradients.input_x_gradient(shapes_model, x, y)
    assert a.grad_fn is None and not a.requires_grad, "multiply by x.detach(): return no graph"
    assert_close(a, x.detach() * _score_gradient(shapes_model, x.detach(), y), rtol=1e-6)
