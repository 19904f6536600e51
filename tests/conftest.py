"""Shared fixtures. The course's pytest options (--solutions, --stub-check,
--results-json) and markers live in interp_lib/course/pytest_plugin.py, registered as a pytest
entry point.
"""
from __future__ import annotations

import pytest
import torch

# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def digits_test():
    from interp_lib.data import load_digits
    return load_digits("test")


@pytest.fixture(scope="session")
def shapes_test():
    from interp_lib.data import load_shapes
    return load_shapes("test")


@pytest.fixture(scope="session")
def digits_model():
    from interp_lib.models import load_model
    return load_model("digits")


@pytest.fixture(scope="session")
def shapes_model():
    from interp_lib.models import load_model
    return load_model("shapes_texture")


@pytest.fixture(scope="session")
def resnet():
    """A randomly initialised torchvision ResNet-18 in eval mode (no weights are downloaded)."""
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return tv.models.resnet18(weights=None).eval()


@pytest.fixture(scope="session")
def resnet_batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 224, 224, generator=g), torch.tensor([7])


@pytest.fixture(scope="session")
def digits_batch(digits_test):
    """Six test digits and their labels (cloned: tests may not share mutations)."""
    x, y = digits_test
    return x[:6].clone(), y[:6].clone()


@pytest.fixture(scope="session")
def shapes_batch(shapes_test):
    """Six test shapes (texture matches shape) and their labels."""
    return shapes_test.x[:6].clone(), shapes_test.y[:6].clone()


@pytest.fixture(scope="session")
def digits_images(digits_batch):
    return digits_batch[0]


@pytest.fixture(scope="session")
def shapes_images(shapes_batch):
    return shapes_batch[0]
