"""Lesson 09, tests added for plausible student bugs (python -m interp_lib mutants): the edge
case of a neuron whose search direction is orthogonal to its weights (no root along it)."""

import pytest
import torch

from interp_lib import dtd


@pytest.mark.exercise("09.1", weight=1)
def test_root_point_when_the_direction_cannot_reach_the_zero_set():
    # z+ direction v = a * w^+: neuron 0 has no positive weight, so v = 0 and w.v = 0.
    # Inactive (b < 0) or active (b > 0), there is no root along v: the root is the input
    # itself (t = 0), never 0/0 or x/0.
    w = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -1.0, -1.0], [1.0, -1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([-0.5, 4.0, -0.2], dtype=torch.float64)
    a = torch.tensor([[0.2, 0.4, 0.1], [1.0, 0.5, 0.3]], dtype=torch.float64)
    root = dtd.dtd_root_point(w, b, a, "zplus")
    assert torch.isfinite(root).all()
    assert torch.equal(root[:, :2], a[:, None, :].expand(2, 2, 3))
    z = a @ w.T + b
    assert (z[:, 1] > 0).all()  # neuron 1 active, yet no root along v
    # neuron 2 (mixed weights) behaves as usual: inactive for image 0, on the zero set for image 1
    assert z[0, 2] < 0 < z[1, 2]
    assert torch.equal(root[0, 2], a[0])
    assert abs(float(root[1, 2] @ w[2] + b[2])) < 1e-12
