"""The command line: check's table, lab serving JupyterLab, lesson selection."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import pytest
from grading_helpers import make_submission
from helpers import serve_lab

from interp_lib.course import cli, common
from interp_lib.course.release import fill_bodies
from interp_lib.exercises import load_all, weights


def _record(ex, outcome, message="", weight=1.0):
    return {
        "nodeid": f"t::{ex}",
        "exercise": ex,
        "weight": weight,
        "hidden": False,
        "outcome": outcome,
        "message": message,
    }


def test_summarise_statuses_and_partial_credit():
    reg = load_all()
    stub = "NotImplementedError: exercise {id} `{name}` (lesson {lesson}): write it in x"
    records = [
        _record("00.1", "passed", weight=3),
        _record("00.1", "failed", "AssertionError: off by one", weight=1),
        _record("01.1", "failed", stub.format(id="01.1", name="confident_thresholds", lesson="01")),
        _record("01.2", "failed", stub.format(id="01.1", name="confident_thresholds", lesson="01")),
        _record("01.3", "passed"),
    ]
    s = common.summarise(records)
    assert s["00.1"]["status"] == "failing" and "off by one" in s["00.1"]["message"]
    assert s["00.1"]["score"] == pytest.approx(0.75 * s["00.1"]["points"])
    assert s["01.1"]["status"] == "not started" and "interp_lib/labels.py" in s["01.1"]["message"]
    assert s["01.2"]["status"] == "blocked" and "blocked by 01.1" in s["01.2"]["message"]
    assert s["01.3"]["status"] == "passing" and s["01.3"]["score"] == s["01.3"]["points"]
    table = common.format_table({k: v for k, v in s.items() if k in ("00.1", "01.1", "01.2", "01.3")})
    assert "blocked" in table and "total" in table
    assert set(s) == set(reg)


def test_own_failures_come_before_a_missing_dependency():
    ex = load_all()["08.3"]
    stub = "NotImplementedError: exercise 08.2 `zb_rule` (lesson 08): write it in interp_lib/lrp.py"
    records = [
        _record("08.3", "failed", stub),
        _record("08.3", "failed", "AssertionError: relevance not conserved", weight=2),
        _record("08.3", "failed", "ValueError: epsilon must be > 0"),
        _record("08.3", "passed"),
    ]
    status, message = common.exercise_status(ex, records)
    assert status == "failing" and message.startswith("AssertionError: relevance not conserved")
    assert "blocked by 08.2 `zb_rule`" in message
    lines = common.failures(ex, records)
    assert [line.split()[0] for line in lines] == ["FAIL", "FAIL", "blocked"]
    assert "t::08.3" not in lines[0] and "08.3 (weight 2)" in lines[0]
    blocked = common.exercise_status(ex, [records[0], records[3]])
    assert blocked == ("blocked", "blocked by 08.2 `zb_rule`: write it first")


def test_stub_recognised_from_the_syntax_tree():
    import ast

    def body(src):
        return common.is_stub(ast.parse(src).body[0])

    assert body(
        'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError("exercise")\n'
    )
    assert body("def f(x):\n    raise NotImplementedError\n")
    assert not body('def f(x):\n    y = x + 1\n    raise NotImplementedError("exercise")\n')
    assert not body("def f(x):\n    return x\n")
    assert not body('def f(x):\n    raise ValueError("x")\n')
    reg = load_all()
    env = os.environ.pop("INTERP_LIB_SOLUTIONS", None)
    try:
        assert common.unwritten(reg) == set(reg)  # this checkout holds the stubs
        os.environ["INTERP_LIB_SOLUTIONS"] = "00.1"
        assert common.unwritten(reg) == set(reg) - {"00.1"}  # the switch selects a body
    finally:
        os.environ.pop("INTERP_LIB_SOLUTIONS", None)
        if env is not None:
            os.environ["INTERP_LIB_SOLUTIONS"] = env


def _check(folder, *args) -> tuple[subprocess.CompletedProcess, dict]:
    """``python -m interp_lib check ARGS --json`` in ``folder`` (student mode)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERP_", "PYTEST_"))}
    with tempfile.TemporaryDirectory() as tmp:  # never a file in this checkout
        out = folder / "check.json" if folder != common.ROOT else pathlib.Path(tmp) / "check.json"
        proc = subprocess.run(
            [sys.executable, "-m", "interp_lib", "check", *args, "--json", str(out)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc, json.loads(out.read_text())


def course_copy(dest: pathlib.Path, bodies: dict[str, str]) -> pathlib.Path:
    """A copy of the course (package and tests) whose modules ``bodies`` (module ->
    bodies source, as for ``release.fill_bodies``; or text to append, starting
    ``#!append``) are written into the stubs."""
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "fixtures", "mutants")
    shutil.copytree(common.ROOT / "interp_lib", dest / "interp_lib", ignore=junk)
    shutil.copytree(common.ROOT / "tests", dest / "tests", ignore=junk)
    shutil.copyfile(common.ROOT / "pyproject.toml", dest / "pyproject.toml")
    for module, source in bodies.items():
        path = dest / "interp_lib" / f"{module}.py"
        text = path.read_text()
        path.write_text(text + source if source.startswith("#!append") else fill_bodies(text, source))
    return dest


def test_check_on_the_stubs_runs_nothing():
    proc, summary = _check(common.ROOT)
    assert "ran 0 tests of no exercise" in proc.stdout, proc.stdout
    assert {s["status"] for s in summary.values()} == {"not started"}
    assert set(summary) == set(load_all()) and all(s["tests"] == 0 for s in summary.values())


BUGGY_JOINT = """
import numpy as np
from interp_lib import labels as L


def confident_joint(labels, pred_probs, calibrate=True):
    if not calibrate:
        return np.zeros((2, 2), dtype=int)  # the student's own bug
    L.confident_thresholds(labels, pred_probs)  # 01.1 is still the stub
    return None
"""


@pytest.mark.slow
def test_check_runs_only_what_is_written_own_failures_first(tmp_path):
    # 01.2 written with a bug and calling 01.1 (a stub); interp_lib/basics.py does not parse
    folder = course_copy(tmp_path / "course", {"labels": BUGGY_JOINT, "basics": "#!append\ndef helper(:\n"})
    proc, summary = _check(folder, "0", "1", "-v")
    assert "cannot import interp_lib/basics.py (line " in proc.stdout and "SyntaxError" in proc.stdout
    assert summary["00.1"]["status"] == "failing" and "SyntaxError" in summary["00.1"]["message"]
    assert summary["00.1"]["points"] == pytest.approx(weights(load_all())["00.1"])
    ran = {i for i, s in summary.items() if s["tests"]}
    assert ran == {"01.2"}, ran  # only the written exercise's tests ran
    assert summary["01.1"]["status"] == summary["01.3"]["status"] == "not started"
    s = summary["01.2"]
    assert s["status"] == "failing" and s["message"].startswith("AssertionError"), s
    assert "also blocked by 01.1 `confident_thresholds`" in s["message"]
    kinds = [line.split()[0] for line in s["failures"]]
    assert "blocked" in kinds and kinds == sorted(kinds, key=lambda k: k != "FAIL")  # own first
    assert any("test_confident_joint_by_hand_uncalibrated" in line for line in s["failures"])
    table = proc.stdout
    assert "FAIL test_confident_joint_by_hand_uncalibrated" in table
    assert "blocked test_confident_joint_calibration_preserves_counts: by 01.1" in table


# 00.1 partly right: no torch.no_grad (two tests fail) and one model call for the whole
# batch (the batching test fails: a test whose model class is local, which the grader
# cannot send to its sandbox, so neither check nor grade counts it)
PARTIAL_PREDICT = """
import torch


def predict(model, x, batch_size=256):
    probs = torch.softmax(model(x), dim=1)
    return probs.argmax(1), probs
"""


@pytest.mark.slow
def test_check_and_grade_agree_on_a_partly_correct_submission(tmp_path):
    from interp_lib.course import grading

    folder = course_copy(tmp_path / "course", {"basics": PARTIAL_PREDICT})
    proc, summary = _check(folder, "0", "-v", "--skip-reference")
    sub = make_submission(tmp_path / "sub", modules=("basics",))
    (sub / "interp_lib" / "basics.py").write_text((folder / "interp_lib" / "basics.py").read_text())
    res = grading.grade(sub, ["00.1"], tmp_path / "results.json", quiet=True, skip_reference=True)
    graded = res["extra_data"]["summary"]["00.1"]
    mine = summary["00.1"]
    assert 0 < graded["score"] < graded["points"], graded
    assert mine["score"] == pytest.approx(graded["score"], abs=1e-6), (mine, graded)
    assert mine["status"] == graded["status"] == "failing"
    assert mine["message"] == graded["message"]
    output = next(t["output"] for t in res["tests"] if t["number"] == "00.1")
    assert "NOT COUNTED test_predict_batches_cover_everything" in output
    assert any("not counted, as in grade: test_predict_batches_cover_everything" in n for n in mine["notes"])


def test_lesson_selection():
    assert [p.name[:2] for p in common.lesson_paths(["0"])] == ["00"]
    with pytest.raises(SystemExit, match="no lesson numbered 77"):
        common.lesson_paths(["77"])


def test_appendix_notebooks_follow_their_lesson(tmp_path, monkeypatch):
    from interp_lib.lesson import lesson_key, lesson_notebooks

    for name in ("07_c.ipynb", "06b_b.ipynb", "06_a.ipynb", "10_d.ipynb", "notes.ipynb", "6_x.ipynb"):
        (tmp_path / name).write_text("{}")
    found = lesson_notebooks(tmp_path)
    assert [lesson_key(p) for p in found] == ["06", "06b", "07", "10"]
    monkeypatch.setattr(common, "LESSONS", tmp_path)
    assert [p.name for p in common.lesson_paths(["6"])] == ["06_a.ipynb", "06b_b.ipynb"]
    assert [p.name for p in common.lesson_paths(["06b"])] == ["06b_b.ipynb"]
    with pytest.raises(ValueError, match="not a lesson notebook"):
        lesson_key("notes.ipynb")


# JupyterLab's announcements plugin asks about "official Jupyter news" on first open
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


def test_course_labconfig_disables_the_news_plugin():
    page = json.loads((cli.LAB_CONFIG / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"] == {NEWS_PLUGIN: True}


def test_lab_environment_prepends_the_course_config():
    env = cli.lab_environment({"JUPYTER_CONFIG_PATH": os.pathsep.join(["/a", str(cli.LAB_CONFIG)])})
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [str(cli.LAB_CONFIG), "/a"]
    assert cli.lab_environment({})["JUPYTER_CONFIG_PATH"] == str(cli.LAB_CONFIG)


@pytest.mark.slow
def test_lab_serves_jupyterlab_without_the_news_prompt(tmp_path):
    """`lab` serves the course; JupyterLab's announcements plugin (the "official Jupyter
    news" prompt) is disabled by the course's own labconfig, and the user's Jupyter
    configuration is not written."""
    user_config = tmp_path / "cfg"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(user_config))
    env.pop("JUPYTER_CONFIG_PATH", None)
    with serve_lab(common.ROOT, env) as (base, proc):
        with urllib.request.urlopen(f"{base}/lab", timeout=10) as r:
            status, body = r.status, r.read().decode()
        assert status == 200 and "JupyterLab" in body
        data = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', body, re.S
        )
        disabled = json.loads(data.group(1))["disabledExtensions"]
        assert NEWS_PLUGIN in disabled, disabled
        with urllib.request.urlopen(f"{base}/api/contents/lessons", timeout=10) as r:
            assert b"00_what_is_ai.ipynb" in r.read()
        # `lab` becomes JupyterLab (exec): the process we started is the server itself
        with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
            assert b"jupyterlab" in fh.read()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/lab", timeout=5)
    written = [p for p in user_config.rglob("*") if p.is_file() and "labconfig" in p.parts]
    assert not written, f"lab wrote the user's labconfig: {written}"


def test_transfer_probe_matches_what_the_grader_cannot_send(shapes_model):
    import torch

    from interp_lib.course.pytest_plugin import transfer_problem

    class Local(torch.nn.Module):
        pass

    assert transfer_problem({"model": shapes_model, "x": torch.rand(2, 3), "g": torch.Generator()}) is None
    assert "Local" in transfer_problem({"model": Local()})
    handle = shapes_model.register_forward_hook(lambda *a: None)
    try:
        assert "lambda" in transfer_problem({"model": shapes_model})
    finally:
        handle.remove()
