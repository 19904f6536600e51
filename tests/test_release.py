"""The student release: clean of solutions, its `make test` works, and filled with the
reference bodies it gets full marks from the grader."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from interp_lib.course import grading, release
from interp_lib.course.common import summarise
from interp_lib.exercises import load_all, weights

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "course"
    info = release.build_release(out)
    return out, info


def test_release_has_no_solution_text(built):
    out, info = built
    assert release.find_solution_text(out) == []
    assert not (out / "solutions").exists() and not (out / ".git").exists()
    assert not list(out.rglob("*.pyc")) and not list(out.rglob("__pycache__"))
    tests = sorted(p.name for p in (out / "tests").glob("test_*.py"))
    assert tests and all(name[5:7].isdigit() for name in tests)  # lesson tests only
    assert sorted(p.name for p in (out / "lessons").glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "lessons").glob("*.ipynb")
    )
    makefile = (out / "Makefile").read_text()
    assert "--solutions" not in makefile and "pytest" in makefile
    readme = (out / "README.md").read_text()
    assert "student copy" in readme and "make pytest" in readme and "make test PYTEST=1" in readme
    photos = out / "interp_lib" / "photos"  # the shipped photographs and their licences
    assert (photos / "SOURCES.md").exists() and len(list(photos.glob("*.jpg"))) >= 12
    for ex in load_all().values():  # stubs only
        stub = rf'raise NotImplementedError\(\s*"exercise {re.escape(ex.id)} `{ex.name}`'
        assert re.search(stub, (out / ex.path).read_text()), ex.id  # also when wrapped by the formatter
    print(f"release: {info['files']} files, {info['bytes'] / 2**20:.1f} MiB")


def test_leak_detection_catches_a_planted_solution(built, tmp_path):
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out / "interp_lib", copy / "interp_lib")
    shutil.copyfile(ROOT / "solutions" / "labels.py", copy / "interp_lib" / "helpers_extra.py")
    filled = release.fill_bodies(
        (out / "interp_lib" / "basics.py").read_text(), (ROOT / "solutions" / "basics.py").read_text()
    )
    (copy / "interp_lib" / "basics.py").write_text(filled)
    problems = release.find_solution_text(copy)
    assert any("helpers_extra.py" in p and "confident_joint" in p for p in problems), problems
    assert any("basics.py" in p and "has a body" in p for p in problems), problems


def _capstone_leaks(folder, terms):
    hits = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (
            ".py",
            ".md",
            ".ipynb",
            ".json",
            ".txt",
            ".cfg",
            ".toml",
            ".yml",
            "",
        ):
            text = path.read_text(encoding="utf-8", errors="replace")
            hits += [f"{path.relative_to(folder)}: {t!r}" for t in terms if t in text]
    return hits


def test_release_keeps_the_capstone_secret(built, tmp_path):
    """Lesson 14's planted shortcut appears in no file of the student release: not in the
    shipped training record, the model list, the lesson, its reference outputs or the tests."""
    secret = pytest.importorskip("solutions.capstone_shortcut")  # the instructors' checkout
    from interp_lib.models import MODELS

    out, _ = built
    cut = secret.load()
    terms = secret.secret_terms(cut)
    assert _capstone_leaks(out, terms) == []
    record = json.loads((out / "interp_lib" / "weights" / "capstone.json").read_text())
    assert record["data"] == MODELS["capstone"].data and "shortcut" not in json.dumps(record).lower()
    assert not (out / "solutions").exists() and not list(out.rglob("capstone_shortcut*"))
    # the search would see a leak: the key's wording in a lesson, the place in a worksheet
    copy = tmp_path / "leaky"
    shutil.copytree(out / "lessons", copy / "lessons")
    (copy / "lessons" / "notes.md").write_text(secret.describe(cut))
    (copy / "guess.py").write_text(f"region = box({cut.rows}, {cut.cols})\n")
    leaks = _capstone_leaks(copy, terms)
    assert any("notes.md" in h for h in leaks) and any("guess.py" in h for h in leaks), leaks


def test_hidden_tests_are_stripped():
    src = """import pytest


@pytest.mark.exercise("00.1", weight=1)
def test_visible():
    pass


@pytest.mark.hidden
@pytest.mark.exercise("00.1", weight=3)
def test_secret():
    assert "secret-check" == "secret-check"
"""
    out, removed = release.strip_hidden_tests(src)
    assert removed == ["test_secret"]
    assert "secret-check" not in out and "test_visible" in out
    compile(out, "x.py", "exec")


def _make(out, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERP_", "PYTEST_"))}
    return subprocess.run(
        ["make", "-s", *args, f"PY={sys.executable}", "VENV_DEPS="],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_release_make_test_prints_the_progress_table(built):
    out, _ = built
    for args in (["test"], ["test", "V=1"]):
        proc = _make(out, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert "Traceback" not in proc.stdout and "failed" not in proc.stdout
        assert len(lines) < 60, proc.stdout  # a table, not 9,000 lines of tracebacks
        assert lines[-1].startswith("total 0.0/100.0 points"), proc.stdout
        rows = [line for line in lines if re.match(r"\d\d\.\d+ ", line)]
        assert len(rows) == len(load_all()) and all("-- not started" in row for row in rows), rows
        assert "ran 0 tests of no exercise" in proc.stdout


def test_release_make_test_then_full_marks(built, tmp_path):
    out, _ = built
    results = tmp_path / "records.json"
    proc = _make(
        out, "test", "PYTEST=1", f"PYTEST_ARGS=-p no:xdist tests/test_00_basics.py --results-json={results}"
    )
    assert proc.returncode != 0  # the stubs fail their tests ...
    records = json.loads(results.read_text())
    summary = summarise(records)
    assert summary["00.1"]["status"] == "not started", summary["00.1"]
    for r in records:  # ... and nothing else goes wrong
        if r["exercise"] is None:
            assert r["outcome"] in ("passed", "skipped"), r
        elif r["outcome"] == "failed":
            assert "NotImplementedError" in r["message"] and f"exercise {r['exercise']}" in r["message"], r
    # the release with every reference body filled in gets full marks from the grader
    ids = ["00.1", "01.1"]
    for module in sorted({load_all()[i].module for i in ids}):
        path = out / "interp_lib" / f"{module}.py"
        path.write_text(
            release.fill_bodies(path.read_text(), (ROOT / "solutions" / f"{module}.py").read_text())
        )
    res = grading.grade(out, ids, tmp_path / "results.json", quiet=True, skip_reference=True)
    points = weights()
    assert res["score"] == pytest.approx(sum(points[i] for i in ids), abs=1e-3)
    assert all(s["status"] == "passing" for s in res["extra_data"]["summary"].values())
