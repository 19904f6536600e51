"""`python -m interp_lib lab` starts JupyterLab without the "official Jupyter news" prompt:
the announcements plugin is disabled by the course's own labconfig, which the command puts
on JUPYTER_CONFIG_PATH; the user's Jupyter configuration is neither read for it nor written."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import stop_group

from interp_lib.course import cli, common

PLUGIN = "@jupyterlab/apputils-extension:announcements"


def test_course_labconfig_disables_the_news_plugin():
    page = json.loads((cli.LAB_CONFIG / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"] == {PLUGIN: True}


def test_lab_environment_prepends_the_course_config():
    env = cli.lab_environment({"JUPYTER_CONFIG_PATH": os.pathsep.join(["/a", str(cli.LAB_CONFIG)])})
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [str(cli.LAB_CONFIG), "/a"]
    assert cli.lab_environment({})["JUPYTER_CONFIG_PATH"] == str(cli.LAB_CONFIG)


@pytest.mark.slow
def test_lab_page_has_no_news_prompt(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user_config = tmp_path / "cfg"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(user_config))
    env.pop("JUPYTER_CONFIG_PATH", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interp_lib", "lab", "--no-browser", "--port", str(port)]
        + ["--ServerApp.token=", "--ServerApp.password=", "--ServerApp.ip=127.0.0.1"],
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, body = time.time() + 90, None
        while time.time() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert body is not None, "JupyterLab did not answer on /lab"
        data = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', body, re.S
        )
        config = json.loads(data.group(1))
        assert PLUGIN in config["disabledExtensions"], config["disabledExtensions"]
    finally:
        stop_group(proc)
    written = [p for p in user_config.rglob("*") if p.is_file() and "labconfig" in p.parts]
    assert not written, f"lab wrote the user's labconfig: {written}"
