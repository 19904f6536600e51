"""Shared fixtures. The course's pytest options (--solutions, --stub-check,
--results-json) and markers live in interp_lib/course/pytest_plugin.py, registered as a pytest
entry point.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import torch

# --------------------------------------------------------------------------- nothing outlives the suite

_MARK = "INTERP_TEST_SESSION"


def pytest_configure(config):
    # The outermost pytest (the xdist controller, or a run without xdist) marks everything
    # the suite starts; a pytest that a test starts inherits the mark and does not sweep.
    if not hasattr(config, "workerinput") and _MARK not in os.environ:
        os.environ[_MARK] = f"{os.getpid()}-{uuid.uuid4().hex}"


def _marked_processes(mark: str) -> list[tuple[int, str]]:
    found = []
    needle = f"{_MARK}={mark}".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                found.append((int(entry.name), fh.read().replace(b"\0", b" ").decode(errors="replace")[:200]))
        except OSError:
            continue
    return found


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a process the suite started (a server, a kernel, a sandbox) is
    still alive at its end; the leftovers are named and killed."""
    mark = os.environ.get(_MARK, "")
    if (
        hasattr(session.config, "workerinput")
        or not os.path.isdir("/proc")
        or mark.split("-")[0] != str(os.getpid())
    ):
        return
    deadline = time.monotonic() + 15  # xdist workers and their kernels are still exiting
    left = _marked_processes(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _marked_processes(mark)
    if left:
        import signal

        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for pid, cmd in left:
            if reporter is not None:
                reporter.write_line(f"left running by the test suite: pid {pid}: {cmd}", red=True)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        session.exitstatus = 1


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
def shape_model():
    """The shape-biased shapes CNN (labels by shape, textures random: lesson 03's control)."""
    from interp_lib.models import load_model

    return load_model("shapes_shape")


@pytest.fixture(scope="session")
def cleverhans():
    """Lesson 10's Clever Hans CNN (a class tag in the corner on 80 % of its training images)."""
    from interp_lib.models import load_model

    return load_model("shapes_cleverhans")


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
