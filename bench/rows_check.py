"""Benchmark rows for `python -m interp_lib check` in a student's copy: nothing started,
one exercise written, and everything done (this checkout in solutions mode)."""

import os
import pathlib
import shutil
import subprocess
import sys

from interp_lib.course import grading
from interp_lib.course.bench import ROOT, Row, scratch_dir
from interp_lib.course.release import build_release, fill_bodies


def _run(cmd: list[str], cwd: pathlib.Path, solutions: str | None = None, check: bool = True) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERP_", "PYTEST_"))}
    if solutions:
        env["INTERP_LIB_SOLUTIONS"] = solutions
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=check)


def _check(cwd: pathlib.Path, solutions: str | None = None) -> None:
    _run([sys.executable, "-m", "interp_lib", "check"], cwd, solutions)


def _pytest(cwd: pathlib.Path, files: list[str], solutions: str | None = None) -> None:
    """The exercise tests of ``files`` in one pytest process (failures expected on stubs)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval", "-p", "no:xdist"]
    _run([*cmd, "-o", "addopts=", "-m", "exercise", *files], cwd, solutions, check=False)


def rows():
    tmp = scratch_dir("bench-check-")
    stubs = tmp / "stubs"
    build_release(stubs)
    one = tmp / "one"
    shutil.copytree(stubs, one)
    path = one / "interp_lib" / "basics.py"
    path.write_text(fill_bodies(path.read_text(), (ROOT / "solutions" / "basics.py").read_text()))
    return [
        Row(
            "check: nothing started (student release)",
            lambda: _check(stubs),
            lambda: _run([sys.executable, "-c", "import torch, interp_lib.exercises"], stubs),
            against="a Python process importing torch and the course (the floor; goal: <= 5 s)",
            goal=2.0,
            lesson="check",
            runs=3,
        ),
        Row(
            "check: 00.1 written, the rest stubs (student release)",
            lambda: _check(one),
            lambda: _pytest(one, ["tests/test_00_basics.py"]),
            against="pytest on 00.1's tests alone (the same work)",
            goal=1.5,
            lesson="check",
            runs=3,
        ),
        Row(
            "check: everything done (this checkout, solutions mode)",
            lambda: _check(ROOT, "all"),
            lambda: _pytest(ROOT, grading.test_files(ROOT), "all"),
            against="pytest on every exercise test, one process (the same work)",
            goal=1.1,
            lesson="check",
            runs=1,
            warmup=False,
        ),
    ]
