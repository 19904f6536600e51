"""The autograder on hostile and broken submissions (tests/fixtures/), and submit.

Each graded submission combines one fixture for exercise 00.1 (interp_lib/basics.py)
with one for 01.1 (interp_lib/labels.py); every other exercise keeps its reference
body. A fixture must give a clean 0 to the exercise it breaks and full marks to the
rest: never a crash, never a false pass. Only 00.1 and 01.1 are graded, without the
reference-library cross-checks, to keep this file fast.
"""

from __future__ import annotations

import json
import pathlib
import zipfile

import pytest
from grading_helpers import make_submission, schema_validate

from interp_lib.course import grading
from interp_lib.exercises import load_all, weights

ROOT = pathlib.Path(__file__).resolve().parent.parent
GRADED = ["00.1", "01.1"]


# (fixture for 00.1, fixture for 01.1) -> expected (status of 00.1, status of 01.1, words in messages)
CASES = {
    "loop+exception": (
        "infinite_loop",
        "exception",
        {"00.1": ("failing", "time limit"), "01.1": ("failing", "ZeroDivisionError")},
    ),
    "os_exit+sys_exit": (
        "os_exit",
        "sys_exit",
        {"00.1": ("failing", "ended its own process"), "01.1": ("failing", "sys.exit")},
    ),
    "captum+big_print": (
        "imports_captum",
        "big_print",
        {"00.1": ("rejected", "captum"), "01.1": ("passing", "")},
    ),
    "stub+fake_results": (
        "stub",
        "fake_results",
        {"00.1": ("not started", "basics.py"), "01.1": ("failing", "")},
    ),
    "switch+hidden_switch": (
        "switch",
        "switch_hidden",
        {"00.1": ("rejected", "INTERP_LIB_SOLUTIONS"), "01.1": ("failing", "")},
    ),
    "memory+monkeypatch": (
        "memory_bomb",
        "monkeypatch",
        {"00.1": ("failing", "memory"), "01.1": ("failing", "")},
    ),
    "correct+imports_solutions": (
        "correct",
        "imports_solutions",
        {"00.1": ("passing", ""), "01.1": ("rejected", "solutions")},
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every case once (module scope: the tests below only read the results)."""
    import os

    out = {}
    tmp = tmp_path_factory.mktemp("grading")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)  # forged results.json files stay in here
    import tempfile

    tempfile.tempdir = None
    try:

        def one(name):
            a, b, _expected = CASES[name]
            sub = make_submission(tmp / name, a, b)
            path = tmp / name / "results.json"
            return name, (
                grading.grade(
                    sub,
                    GRADED,
                    path,
                    time_floor=2.0,
                    time_factor=20,
                    memory_mb=1500,
                    quiet=True,
                    skip_reference=True,
                ),
                path,
            )

        # two submissions at a time, as `grade --batch` does
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            out.update(pool.map(one, CASES))
    finally:
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
        tempfile.tempdir = None
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_submission_scores(graded, case):
    results, path = graded[case]
    expected = CASES[case][2]
    summary = results["extra_data"]["summary"]
    points = weights()
    for ex_id, (status, words) in expected.items():
        s = summary[ex_id]
        assert s["status"] == status, (ex_id, s)
        assert words.lower() in s["message"].lower(), (ex_id, s["message"])
        assert s["score"] == pytest.approx(points[ex_id] if status == "passing" else 0.0), (ex_id, s)
    # the file on disk is the grader's, not a forgery, and it is schema-valid
    on_disk = json.loads(path.read_text())
    assert on_disk["score"] == results["score"] <= sum(points[i] for i in GRADED) + 1e-9
    assert "forged" not in path.read_text()
    schema_validate(on_disk)
    assert not results.get("output"), results.get("output")  # no grader problem


def test_time_limit_message_says_why(graded):
    msg = graded["loop+exception"][0]["extra_data"]["summary"]["00.1"]["message"]
    assert "reference solution" in msg and "vectorise" in msg


def test_gradescope_entries(graded):
    results, _ = graded["correct+imports_solutions"]
    names = {t["number"]: t for t in results["tests"]}
    assert set(names) >= set(GRADED)
    for t in results["tests"]:
        assert {"score", "max_score", "status", "name", "number", "output"} <= set(t)
    assert names["00.1"]["status"] == "passed" and names["01.1"]["status"] == "failed"
    assert "scored 0 without running" in names["01.1"]["output"]


# --------------------------------------------------------------------------- static check


def test_static_check_follows_helpers_and_spares_the_rest():
    src = """
import numpy as np
import captum.attr as ca
from interp_lib.exercises import exercise

def _helper(x):
    return ca.Saliency(x)

def _clean(x):
    return np.sum(x)

@exercise("09.1", points=1)
def uses_helper(x):
    return _helper(x)

@exercise("09.2", points=1)
def clean(x):
    return _clean(x)

@exercise("09.3", points=1)
def dynamic(x):
    import importlib
    return importlib.import_module("cleanlab")
"""
    out = grading.static_check(src, {"09.1": "uses_helper", "09.2": "clean", "09.3": "dynamic"})
    assert set(out) == {"09.1", "09.3"}
    assert "captum" in out["09.1"] and "_helper" in out["09.1"]
    assert "cleanlab" in out["09.3"]
    bad = grading.static_check("def f(:\n", {"09.1": "f"}, "interp_lib/x.py")
    assert "syntax error" in bad["09.1"]


def test_only_exercise_modules_are_taken(tmp_path):
    zpath = tmp_path / "sub.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("someone/interp_lib/basics.py", "x = 1\n")
        zf.writestr("someone/interp_lib/exercises.py", "raise SystemExit\n")
        zf.writestr("someone/tests/conftest.py", "raise SystemExit\n")
        zf.writestr("someone/solutions/basics.py", "x = 2\n")
    found = grading.collect_submission(zpath, tmp_path / "out")
    assert found == ["basics"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["basics.py"]


# --------------------------------------------------------------------------- submit


def test_submit_packs_exercise_modules_only(tmp_path, capsys):
    out = grading.submit(tmp_path / "hand-in.zip", run_check=False)
    modules = sorted({ex.module for ex in load_all().values()})
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        manifest = json.loads(zf.read("MANIFEST.json"))
    assert names == sorted([f"interp_lib/{m}.py" for m in modules] + ["MANIFEST.json"])
    assert set(manifest["files"]) == {f"interp_lib/{m}.py" for m in modules}
    printed = capsys.readouterr().out
    assert "Packed" in printed and "interp_lib/basics.py" in printed


# --------------------------------------------------------------------------- at class scale


def test_batch_grades_every_submission(tmp_path):
    folder = tmp_path / "subs"
    make_submission(folder / "good")
    (folder / "garbage.zip").write_bytes(b"this is not a zip file")
    (folder / "syntax" / "interp_lib").mkdir(parents=True)
    (folder / "syntax" / "interp_lib" / "basics.py").write_text("def predict(:\n")
    csv_path = grading.grade_batch(
        folder, tmp_path / "out", exercises=["00.1"], skip_reference=True, time_floor=2.0
    )
    import csv

    rows = {r["submission"]: r for r in csv.DictReader(csv_path.open())}
    assert set(rows) == {"good", "garbage", "syntax"}
    assert float(rows["good"]["score"]) == pytest.approx(weights()["00.1"], abs=1e-3)
    assert float(rows["garbage"]["score"]) == 0 and float(rows["syntax"]["score"]) == 0
    assert "corrupt zip" in rows["garbage"]["error"], rows
    assert not rows["good"]["error"] and not rows["syntax"]["error"], rows
    for name in rows:
        schema_validate(json.loads((tmp_path / "out" / name / "results.json").read_text()))


def test_gradescope_bundle_runs_like_in_a_container(tmp_path):
    import os
    import subprocess
    import sys

    bundle = grading.build_gradescope_bundle(tmp_path / "autograder.zip")
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(names)
        assert not any("answers" in n or "fixtures" in n for n in names)
        zf.extractall(root / "source")
    make_submission(root / "submission", "exception")  # 01.1 raises; 00.1 correct
    (root / "results").mkdir()
    run = root / "source" / "run_autograder"
    run.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERP_", "PYTEST_"))}
    env.update(
        AUTOGRADER_ROOT=str(root),
        AUTOGRADER_PYTHON=sys.executable,
        GRADE_ARGS="--exercises 00.1,01.1 --skip-reference",
    )
    proc = subprocess.run([str(run)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    schema_validate(results)
    summary = results["extra_data"]["summary"]
    assert summary["00.1"]["status"] == "passing" and summary["01.1"]["status"] == "failing"
    assert results["extra_data"]["isolation"]["level"] in ("sandbox", "separate user", "process only")
    assert "isolation:" in proc.stdout  # the level is said out loud in the log too
    setup = (root / "source" / "setup.sh").read_text()
    assert "bubblewrap" in setup and "useradd" in setup
    assert results["score"] == pytest.approx(weights()["00.1"], abs=1e-3)
