"""assert_close's diagnoses of common mistakes (interp_lib.utils.diagnose)."""

import pytest
import torch

from interp_lib.utils import assert_close, diagnose

G = torch.Generator().manual_seed(0)
B = torch.randn(4, 3, 5, 5, generator=G)
X = torch.rand(4, 3, 5, 5, generator=G)
BASE = torch.full_like(X, 0.3)


def failure(actual, expected=B, **options) -> str:
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, **options)
    return str(info.value)


@pytest.mark.parametrize(
    "actual, words",
    [
        (B * 64, "about 64x too large"),
        (B / 8, "about 8x too small"),
        (-B, "the sign is flipped"),
        (torch.zeros_like(B), "every element is 0"),
        (torch.full_like(B, 0.5), "every element is 0.5: a constant"),
        (B + 0.7, "off by a constant 0.7"),
        (B.transpose(-1, -2), "transposed: the last two axes are swapped"),
        (B.sum(1), "axis 1 (size 3) is missing"),
        (B[None].expand(2, *B.shape), "an extra axis 0 of size 2"),
        (B.flatten(1), "reshaped or flattened differently"),
        (B.unsqueeze(0), "an axis of size 1 too many"),
        (B.permute(1, 0, 2, 3), "the same axes in another order"),
    ],
)
def test_diagnoses(actual, words):
    message = failure(actual)
    assert words in message, message


def test_the_exact_tolerance_message_comes_first():
    message = failure(B * 64, rtol=1e-5)
    assert message.startswith("result: relative error ||a-b||/||b|| = 63 > 1e-05; ")
    assert failure(B.sum(1), what="IG").startswith("IG: shape (4, 5, 5), expected (4, 3, 5, 5); ")
    assert "\n" not in message  # check shows a failure's first line


def test_nan_and_inf_are_located():
    a = B.clone()
    a[1, 2, 3, 4] = float("nan")
    message = failure(a)
    assert "contains NaN or infinite values" in message
    assert "1 of 300 elements are not finite (NaN, first at index (1, 2, 3, 4))" in message
    a[1, 2, 3, 4] = float("inf")
    assert "(inf," in failure(a)


def test_a_named_factor_missing_or_applied_twice():
    factor = {"(x - baseline)": X - BASE}
    assert "the factor (x - baseline) is missing" in failure(B / (X - BASE), factors=factor)
    assert "the factor (x - baseline) is applied twice" in failure(B * (X - BASE), factors=factor)
    # a factor that does not broadcast is simply not this mistake
    assert diagnose(B + 1, B, factors={"w": torch.ones(7)}) == [
        "off by a constant 1 everywhere (a missing baseline or offset?)"
    ]


def test_hint_and_no_false_diagnosis():
    noise = torch.randn(B.shape, generator=G)
    message = failure(B + noise, hint="did you average over the batch?")
    assert message.endswith("; did you average over the batch?")
    assert diagnose(B + noise, B) == []  # an unrelated error is not given a made-up cause
    assert_close(B * (1 + 1e-7), B)  # within tolerance: no error
    assert diagnose(torch.zeros(3), torch.zeros(3)) == []


def test_an_ig_without_the_input_difference_is_diagnosed(shapes_model):
    from interp_lib.attacks import class_scores

    model = shapes_model
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    base = torch.full_like(x, 0.3)
    y = torch.tensor([0, 1])
    grads = torch.zeros_like(x)
    for a in (0.25, 0.75):
        p = (base + a * (x - base)).requires_grad_(True)
        grads += 0.5 * torch.autograd.grad(class_scores(model(p), y).sum(), p)[0]
    message = failure(grads, (x - base) * grads, factors={"(x - baseline)": x - base})
    assert "the factor (x - baseline) is missing" in message
