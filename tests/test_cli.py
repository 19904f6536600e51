"""The command line: check's table, lab serving JupyterLab, lesson selection."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import stop_group

from interp_lib.course import common
from interp_lib.exercises import load_all


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
    assert s["01.2"]["status"] == "blocked" and "01.1" in s["01.2"]["message"]
    assert s["01.3"]["status"] == "passing" and s["01.3"]["score"] == s["01.3"]["points"]
    table = common.format_table({k: v for k, v in s.items() if k in ("00.1", "01.1", "01.2", "01.3")})
    assert "blocked" in table and "total" in table
    assert set(s) == set(reg)


@pytest.mark.slow
def test_check_reports_not_started_in_student_mode():
    env = {k: v for k, v in os.environ.items() if k != "INTERP_LIB_SOLUTIONS"}
    proc = subprocess.run(
        [sys.executable, "-m", "interp_lib", "check", "00"],
        cwd=common.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "00.1" in proc.stdout and "not started" in proc.stdout


def test_lesson_selection():
    assert [p.name[:2] for p in common.lesson_paths(["0"])] == ["00"]
    with pytest.raises(SystemExit, match="no lesson numbered 77"):
        common.lesson_paths(["77"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lab_serves_jupyterlab(tmp_path):
    port = _free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interp_lib",
            "lab",
            "--no-browser",
            "--port",
            str(port),
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.ip=127.0.0.1",
        ],
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        status, body = None, ""
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as r:
                    status, body = r.status, r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer on /lab"
        assert "JupyterLab" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/lessons", timeout=10) as r:
            assert b"00_what_is_ai.ipynb" in r.read()
        # `lab` becomes JupyterLab (exec): the process we started is the server itself
        with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
            assert b"jupyterlab" in fh.read()
    finally:
        stop_group(proc)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5)
