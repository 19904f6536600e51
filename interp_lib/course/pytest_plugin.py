"""The course's pytest plugin (registered as an entry point, so it is active for every
pytest run in an environment where interp-course is installed, notebooks included).

Options:
  --solutions=VALUE   set INTERP_LIB_SOLUTIONS (``all``, ``none`` or exercise ids) for the
                      tests and for the notebook kernels nbval starts (they inherit it).
  --stub-check        run each exercise test with the reference bodies of every *other*
                      exercise and the stub of its own: every such test must then fail
                      with NotImplementedError naming its exercise (tests/test_exercises.py
                      runs this mode and checks it).
  --exercises=IDS     run only the tests of these exercises (e.g. 02.1,02.3).
  --results-json=PATH write one record per test (exercise id, weight, outcome, message,
                      hidden/reference markers); `python -m interp_lib check` and the grader
                      read it. Outside the grader, an exercise test whose call arguments the
                      grader could not send to its sandbox (the same pickling test) is
                      recorded with ``transferable: false``: neither check nor grade counts it.

Environment: ``INTERP_LIB_NBVAL_THREADS=N`` gives the notebook kernels nbval starts N torch
threads (``INTERP_LIB_THREADS`` in the kernel; the tests keep theirs). The stored outputs
come from one thread (``execute``); CI compares them at two (``.ci/run``), so an output that
depends on the thread count fails there without a second run.

Markers: ``exercise(id, weight=1)`` ties a test to an exercise (partial credit by
weight); ``browser`` and ``npm`` mark tests that need those tools: a skip there is a
failure when ``CI=true``.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import pickle
import shutil

import pytest

from interp_lib import exercises


def pytest_addoption(parser):
    group = parser.getgroup("interp-course")
    group.addoption(
        "--solutions",
        default=None,
        help="INTERP_LIB_SOLUTIONS for tests and notebook kernels (all | none | ids)",
    )
    group.addoption(
        "--stub-check",
        action="store_true",
        help="run each exercise test against its own stub (all others: reference)",
    )
    group.addoption("--results-json", default=None, help="write per-test results to this file")
    group.addoption(
        "--exercises", default=None, help="run only the tests of these exercises (comma-separated ids)"
    )


def pytest_configure(config):
    value = config.getoption("--solutions")
    if value is not None:
        os.environ[exercises.ENV_VAR] = value
    import torch

    torch.set_num_threads(int(os.environ.get("INTERP_LIB_THREADS", 1)))
    config._interp_results = []


def exercise_marker(item) -> tuple[str, float] | None:
    mark = item.get_closest_marker("exercise")
    if mark is None:
        return None
    return str(mark.args[0]), float(mark.kwargs.get("weight", mark.args[1] if len(mark.args) > 1 else 1))


def pytest_collection_modifyitems(config, items):
    wanted = config.getoption("--exercises")
    if not wanted:
        return
    ids = {w.strip() for w in wanted.split(",") if w.strip()}
    keep, drop = [], []
    for item in items:
        marker = exercise_marker(item)
        (keep if marker and marker[0] in ids else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class _ProbePickler(pickle.Pickler):
    """Pickles like the grader's ``pickle.dumps`` of a call, but leaves tensor and array
    data out (only whether the structure around them can be pickled matters)."""

    def persistent_id(self, obj):
        import numpy as np
        import torch

        return id(obj) if isinstance(obj, (torch.Tensor, np.ndarray)) else None


def transfer_problem(arguments: dict) -> str | None:
    """Why the grader could not send a call with these arguments to its sandbox, or None."""
    try:
        _ProbePickler(io.BytesIO()).dump(arguments)
    except Exception as err:  # noqa: BLE001 - whatever pickling raises, the grader cannot send it
        return f"{type(err).__name__}: {err}"
    return None


def _probe_transfers(request, monkeypatch, ex_id: str) -> None:
    """Record on the test item when a call of its exercise could not go to the grader's
    sandbox (checked with the exercise's argument checks, which see every call)."""
    ex = exercises.registry().get(ex_id)
    if ex is None:
        return
    first = next(iter(ex.checks), None) or next(iter(inspect.signature(ex.stub).parameters), None)
    if first is None:
        return
    original = ex.checks.get(first)

    def probe(value, name, arguments):
        if original is not None:
            original(value, name, arguments)
        why = transfer_problem(dict(arguments))
        if why and not hasattr(request.node, "_interp_not_transferable"):
            request.node._interp_not_transferable = why

    monkeypatch.setattr(ex, "checks", {**ex.checks, first: probe})


@pytest.fixture(autouse=True)
def _stub_check_mode(request, monkeypatch):
    marker = exercise_marker(request.node)
    if marker is not None and request.config.getoption("--stub-check"):
        monkeypatch.setenv(exercises.ENV_VAR, f"all,-{marker[0]}")
    if (
        marker is not None
        and request.config.getoption("--results-json")
        and not request.config.pluginmanager.has_plugin("interp_lib.course.grading_remote")
    ):
        _probe_transfers(request, monkeypatch, marker[0])
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Start nbval's kernel (in its notebook's setup) with ``INTERP_LIB_NBVAL_THREADS`` threads."""
    threads = os.environ.get("INTERP_LIB_NBVAL_THREADS")
    if not threads or not type(item).__module__.startswith("nbval"):
        yield
        return
    old = os.environ.get("INTERP_LIB_THREADS")
    os.environ["INTERP_LIB_THREADS"] = threads  # the kernel inherits the environment
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("INTERP_LIB_THREADS", None)
        else:
            os.environ["INTERP_LIB_THREADS"] = old


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # A test that needs a tool skips on a laptop without it, but in CI a skip is a failure.
    if (
        report.skipped
        and os.environ.get("CI") == "true"
        and any(item.get_closest_marker(m) for m in ("browser", "npm"))
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where browser/npm tools must be installed: {report.longrepr}"
    if report.when == "call" or (report.when == "setup" and not report.passed):
        marker = exercise_marker(item)
        message = ""
        if report.failed and call.excinfo is not None:
            exc = call.excinfo.value
            text = str(exc).strip()  # a bare `assert` starts its text with a newline
            message = f"{type(exc).__name__}: {text.splitlines()[0]}"[:500] if text else type(exc).__name__
        elif report.skipped:
            message = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        item.config._interp_results.append(
            {
                "nodeid": item.nodeid,
                "exercise": marker[0] if marker else None,
                "weight": marker[1] if marker else None,
                "hidden": item.get_closest_marker("hidden") is not None,
                "reference": item.get_closest_marker("reference") is not None,
                "transferable": not hasattr(item, "_interp_not_transferable"),
                "outcome": report.outcome,
                "message": message,
            }
        )


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--results-json")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(session.config._interp_results, fh, indent=1)


def needs(tool: str):
    """Skip (on a laptop) when ``tool`` is not on PATH; CI turns the skip into a failure."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
