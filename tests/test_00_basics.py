"""Lesson 00: predict."""

import pytest
import torch
from torch import nn

from interp_lib.basics import predict


@pytest.mark.exercise("00.1", weight=2)
def test_predict_matches_softmax_and_argmax(digits_model, digits_test):
    x, _ = digits_test
    classes, probs = predict(digits_model, x[:300], batch_size=64)
    with torch.no_grad():
        logits = digits_model(x[:300])
    assert classes.dtype == torch.int64 and classes.shape == (300,)
    assert probs.shape == (300, 10)
    assert torch.equal(classes, logits.argmax(1))
    torch.testing.assert_close(probs, torch.softmax(logits, 1), rtol=1e-5, atol=1e-6)
    assert probs.grad_fn is None, "no gradients are needed: use torch.no_grad()"


@pytest.mark.exercise("00.1", weight=1)
def test_predict_batches_cover_everything():
    calls = []

    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            calls.append(len(x))
            return self.fc(x.flatten(1))

    x = torch.rand(10, 1, 2, 2)
    classes, probs = predict(Counter(), x, batch_size=4)
    assert calls == [4, 4, 2], f"expected batches of 4, 4, 2; the model saw {calls}"
    assert classes.shape == (10,) and probs.shape == (10, 3)


@pytest.mark.exercise("00.1", weight=1)
def test_predict_accuracy_of_shipped_model(digits_model, digits_test):
    x, y = digits_test
    classes, _ = predict(digits_model, x)
    assert (classes == y).float().mean() >= 0.97


def test_predict_rejects_bad_input(digits_model):
    with pytest.raises(ValueError, match="`x`"):
        predict(digits_model, torch.rand(28, 28))
    with pytest.raises(ValueError, match="`batch_size`"):
        predict(digits_model, torch.rand(2, 1, 28, 28), batch_size=0)


@pytest.mark.exercise("00.1", weight=1)
def test_predict_builds_no_graph_for_an_input_that_requires_grad(digits_model, digits_batch):
    # the wrapper freezes the model, so only an input that requires grad shows a missing no_grad
    x = digits_batch[0].clone().requires_grad_(True)
    classes, probs = predict(digits_model, x, batch_size=4)
    assert probs.grad_fn is None and not probs.requires_grad, "run the model under torch.no_grad()"
    with torch.no_grad():
        torch.testing.assert_close(probs, torch.softmax(digits_model(x), 1), rtol=1e-5, atol=1e-6)
