"""Shared fixtures. The course's pytest options (--solutions, --stub-check,
--results-json) and markers live in interp_lib/pytest_plugin.py, registered as a pytest
entry point.
"""
from __future__ import annotations

import pytest

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
