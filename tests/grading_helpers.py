"""Helpers for the grader's tests (not part of the student release): fixture submissions."""

from __future__ import annotations

import json
import pathlib

import pytest

from interp_lib.course.release import fill_bodies

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def make_submission(
    dest: pathlib.Path, *cases: str, modules=("basics", "labels"), values: dict[str, str] | None = None
) -> pathlib.Path:
    """The course's stub modules filled with the reference bodies, then the fixtures
    (folders under tests/fixtures, e.g. ``"exception"`` or ``"attacks/forged_proc"``);
    ``values`` replaces placeholders such as ``@@ROOT@@`` in the fixtures' text."""
    (dest / "interp_lib").mkdir(parents=True, exist_ok=True)
    for module in modules:
        src = fill_bodies(
            (ROOT / "interp_lib" / f"{module}.py").read_text(),
            (ROOT / "solutions" / f"{module}.py").read_text(),
        )
        for case in cases:
            path = FIXTURES / case / f"{module}.py"
            if path.exists():
                text = path.read_text()
                for key, value in (values or {}).items():
                    text = text.replace(key, value)
                src = fill_bodies(src, text)
        (dest / "interp_lib" / f"{module}.py").write_text(src)
    return dest


def schema_validate(results: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "tests" / "gradescope_results.schema.json").read_text())
    jsonschema.validate(results, schema)
