"""The course on one JupyterHub (docs/DEPLOY.md): the repo2docker recipe of the instructor
copy and of the student release, and a real hub on loopback where five students pull the
release through an nbgitpuller link and run lesson 00 at the same time, beside a hostile
sixth whose kernels loop forever and crash.

The hub test needs configurable-http-proxy (npm; .ci/run installs it): it skips on a
laptop without it and fails in CI (marker ``npm``). Its measurements go to
tests/artifacts/hub.json (the figures in docs/DEPLOY.md come from there).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import nbformat
import pytest

from interp_lib.course import common, release
from interp_lib.course.pytest_plugin import needs

ROOT = common.ROOT
BIN = pathlib.Path(sys.executable).parent
ARTIFACTS = ROOT / "tests" / "artifacts"
REFERENCE_LIBS = {"captum", "zennit", "torchattacks", "cleanlab"}
# in the image, not in a student's laptop environment (jupyterhub-singleuser: to pin the
# hub's major version when it is not the one repo2docker's base environment ships)
HUB_ONLY = {"nbgitpuller", "jupyterhub-singleuser"}
TARGET = "interp-course"  # the folder nbgitpuller pulls into (binder/start knows it)
LESSON = "lessons/00_what_is_ai.ipynb"
STUDENTS = [f"student{i}" for i in range(1, 6)]
HOSTILE = "hostile"
SANITIZE = [
    (re.compile(r"\d+%\|[^\n]*\|[^\n]*"), "PROGRESS"),
    (re.compile(r"at 0x[0-9a-f]+>"), "at 0xADDRESS>"),
]


# --------------------------------------------------------------------------- release, recipe


@pytest.fixture(scope="module")
def student_release(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("hub") / "release"
    release.build_release(out)
    return out


def _env_deps(path: pathlib.Path) -> tuple[dict[str, str], list]:
    """Conda dependencies of an environment file (name -> spec) and its pip section."""
    deps, pip, in_pip = {}, [], False
    for line in path.read_text().splitlines():
        m = re.match(r"^  - ([^\s:#]+)\s*(#.*)?$", line)
        if m:
            in_pip = False
            name = re.match(r"[A-Za-z0-9_.\-]+", m.group(1)).group(0).lower()
            if name != "pip":
                deps[name] = m.group(1)[len(name) :].replace(" ", "")
        elif re.match(r"^  - pip:\s*$", line):
            in_pip = True
        elif in_pip and re.match(r"^      - ", line):
            pip.append(line.split("- ", 1)[1].strip())
    return deps, pip


def test_binder_environment_is_the_runtime_environment():
    top, top_pip = _env_deps(ROOT / "environment.yml")
    binder, binder_pip = _env_deps(ROOT / "binder" / "environment.yml")
    assert top_pip == ["-e ."]
    assert binder_pip == [], "binder/environment.yml: the course is installed by postBuild, not here"
    top_python, binder_python = top.pop("python"), binder.pop("python")
    assert top_python == ">=3.10"
    m = re.fullmatch(r"=(3)\.(\d+)", binder_python)  # repo2docker reads only python=X.Y
    assert m and int(m.group(2)) >= 10, f"binder/environment.yml: python{binder_python}"
    extra = {name: binder.pop(name) for name in set(binder) - set(top)}
    assert set(extra) <= HUB_ONLY, f"binder/environment.yml adds {sorted(extra)}"
    assert binder == top, "binder/environment.yml must list environment.yml's runtime dependencies"
    assert not (
        REFERENCE_LIBS & set(re.findall(r"[a-z]+", (ROOT / "binder" / "environment.yml").read_text()))
    )


def _recipe(repo: pathlib.Path) -> str:
    """The Dockerfile repo2docker would build, printed without building (no docker)."""
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")  # proves no daemon is used
    proc = subprocess.run(
        [str(BIN / "jupyter-repo2docker"), "--no-build", "--no-run", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("which", ["instructor", "release"])
def test_repo2docker_recipe_installs_the_course(which, student_release):
    repo = ROOT if which == "instructor" else student_release
    for name in ("environment.yml", "postBuild", "start"):
        assert (repo / "binder" / name).read_bytes() == (ROOT / "binder" / name).read_bytes()
    for name in ("postBuild", "start"):
        assert os.access(repo / "binder" / name, os.X_OK), f"binder/{name} is not executable"
    text = _recipe(repo)
    env_update = text.index('env update -p ${NB_PYTHON_PREFIX} --file "binder/environment.yml"')
    copy_repo = text.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
    post_build = text.index("RUN ./binder/postBuild")
    assert (
        env_update < copy_repo < post_build
    )  # dependencies cached in a layer; course installed after the copy
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in text
    script = (repo / "binder" / "postBuild").read_text()
    assert re.search(r"^python -m pip install [^\n]*-e \.$", script, re.M), (
        "postBuild must install the course"
    )
    assert "ipykernel install --sys-prefix --name python3" in script
    if which == "release":
        assert not (repo / "solutions").exists()


def test_postbuild_checks_hold_in_the_course_environment():
    """postBuild's extension checks (a failed one fails the image build) pass in an
    environment that has the course's packages."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    checks = [
        line
        for line in (ROOT / "binder" / "postBuild").read_text().splitlines()
        if line.startswith("jupyter ")
    ]
    assert len(checks) == 2
    for line in checks:
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{line}\n{proc.stdout}{proc.stderr}"


def test_start_puts_the_students_copy_first(tmp_path):
    code = "import os, sys; print(os.environ['PYTHONPATH']); print(os.environ['OMP_NUM_THREADS']); print(sys.argv[1])"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REPO_DIR": "/srv/course", "PYTHONPATH": "/x"}
    out = subprocess.run(
        [str(ROOT / "binder" / "start"), sys.executable, "-c", code, "arg"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [f"{tmp_path}/{TARGET}:/srv/course:/x", "1", "arg"]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [str(ROOT / "binder" / "start"), sys.executable, "-c", code, "arg"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [f"{tmp_path}/{TARGET}", "2", "arg"]  # no empty entry (the cwd) in the path


# --------------------------------------------------------------------------- processes


def _peak_mb(pid: int) -> float | None:
    """Peak resident memory of a live process (VmHWM), MB."""
    try:
        text = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmHWM:\s+(\d+)", text)
    return round(int(m.group(1)) / 1024) if m else None


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _marked(marker: bytes) -> set[int]:
    """Live processes whose environment carries the test's marker (hub, proxy, servers,
    kernels, git: each inherits it)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    out.add(int(entry))
        except OSError:
            pass
    return out


def _kill_all(marker: bytes, hub: subprocess.Popen | None) -> set[int]:
    """Stop the hub gracefully, then kill every marked process group; returns survivors."""
    if hub is not None and hub.poll() is None:
        hub.send_signal(signal.SIGTERM)  # the hub stops the servers and the proxy itself
        try:
            hub.wait(15)
        except subprocess.TimeoutExpired:
            pass
    own = os.getpgrp()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _marked(marker):
            try:
                pgid = os.getpgid(pid)
                if pgid != own:
                    os.killpg(pgid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        if hub is not None and hub.poll() is None:
            hub.kill()
        if hub is not None:
            try:
                hub.wait(5)
            except subprocess.TimeoutExpired:
                pass
    return _marked(marker)


# --------------------------------------------------------------------------- the hub

HUB_CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = "sqlite:///{tmp}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
# the image's entrypoint (binder/start) in front of the single-user server, as repo2docker does
c.Spawner.cmd = [{start!r}, {singleuser!r}]
c.Spawner.args = ["--allow-root"]
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.environment = {{"INTERP_HUB_TEST": {marker!r}}}
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 240
c.JupyterHub.services = [{{"name": "course-admin", "api_token": {admin_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "course-admin", "services": ["course-admin"],
    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "read:users"]}}]
"""


@pytest.fixture
def hub(tmp_path):
    """A JupyterHub on 127.0.0.1 (random free ports); nothing it starts outlives the test."""
    needs("configurable-http-proxy")
    pytest.importorskip("jupyterhub")
    pytest.importorskip("nbgitpuller")
    requests = pytest.importorskip("requests")
    proxy_port, hub_port, api_port = _free_ports(3)
    marker = f"interp-hub-test-{uuid.uuid4().hex}"
    admin_token = secrets.token_hex(32)
    homes = tmp_path / "home"
    homes.mkdir()
    release_dir = tmp_path / "release"
    release.build_release(release_dir)
    (tmp_path / "hub").mkdir()
    config = tmp_path / "hub" / "jupyterhub_config.py"
    config.write_text(
        HUB_CONFIG.format(
            proxy_port=proxy_port,
            hub_port=hub_port,
            api_port=api_port,
            chp=shutil.which("configurable-http-proxy"),
            pid_file=str(tmp_path / "hub" / "proxy.pid"),
            tmp=tmp_path / "hub",
            cookie=str(tmp_path / "hub" / "cookie_secret"),
            homes=str(homes),
            start=str(release_dir / "binder" / "start"),
            singleuser=str(BIN / "jupyterhub-singleuser"),
            marker=marker,
            admin_token=admin_token,
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTERP_LIB_", "PYTEST_", "JUPYTER", "IPYTHON"))
        and k not in ("PYTHONPATH", "CI")
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        INTERP_HUB_TEST=marker,
        CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(32),
    )
    log = open(tmp_path / "hub" / "hub.log", "wb")
    proc = subprocess.Popen(
        [str(BIN / "jupyterhub"), "-f", str(config)],
        cwd=tmp_path / "hub",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    info = {
        "url": f"http://127.0.0.1:{proxy_port}",
        "admin_token": admin_token,
        "homes": homes,
        "release": release_dir,
        "tmp": tmp_path,
        "log": tmp_path / "hub" / "hub.log",
        "proc": proc,
    }
    survivors: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail("the hub exited:\n" + info["log"].read_text(errors="replace")[-4000:])
            try:
                if requests.get(info["url"] + "/hub/api/", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "the hub did not answer in 90 s:\n" + info["log"].read_text(errors="replace")[-4000:]
                )
            time.sleep(0.5)
        yield info
    finally:
        survivors = _kill_all(f"INTERP_HUB_TEST={marker}".encode(), proc)
        log.close()
    assert not survivors, f"processes outlived the hub test: {sorted(survivors)}"


# --------------------------------------------------------------------------- one student


class Kernel:
    """A kernel driven over the Jupyter server's websocket, as JupyterLab drives it."""

    def __init__(self, base: str, token: str, kernel_id: str):
        import websocket

        url = (
            base.replace("http://", "ws://")
            + f"/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        )
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"], timeout=30)
        self.session = uuid.uuid4().hex

    def send(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "student",
                        "session": self.session,
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        return msg_id

    def recv(self, timeout: float) -> dict:
        self.ws.settimeout(timeout)
        data = self.ws.recv()
        if isinstance(data, bytes):  # legacy binary frame: offsets, then the JSON message, then buffers
            n = int.from_bytes(data[:4], "big")
            offsets = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n)]
            data = data[offsets[0] : offsets[1] if n > 1 else None].decode()
        return json.loads(data)

    def execute(self, code: str, timeout: float = 300, on_output=None) -> tuple[dict, list[dict]]:
        """Run one cell; returns (execute_reply content, iopub outputs)."""
        msg_id = self.send(code)
        reply, outputs, idle = None, [], False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]!r}")
            msg = self.recv(left)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if msg["channel"] == "shell" and kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            elif kind in ("stream", "display_data", "execute_result", "error"):
                if on_output is not None:
                    on_output()
                outputs.append({"output_type": kind, **msg["content"]})
        return reply, outputs

    def close(self):
        self.ws.close()


PROBE = """\
import json as _json, os as _os, re as _re, resource as _resource, interp_lib as _il
def _hwm(pid):
    return int(_re.search(r"VmHWM:\\s+(\\d+)", open(f"/proc/{pid}/status").read()).group(1)) / 1024
_r = _resource.getrusage(_resource.RUSAGE_SELF)
print(_json.dumps({"kernel_peak_mb": _hwm(_os.getpid()), "server_peak_mb": _hwm(_os.getppid()),
                   "kernel_cpu_s": _r.ru_utime + _r.ru_stime, "interp_lib": _il.__file__,
                   "solutions": _os.environ.get("INTERP_LIB_SOLUTIONS"), "cwd": _os.getcwd()}))
"""


def _texts(outputs: list[dict]) -> tuple[str, list[str]]:
    """A cell's stdout (sanitised as nbval is) and the kinds of its other outputs."""
    text = "".join(
        o["text"] if isinstance(o["text"], str) else "".join(o["text"])
        for o in outputs
        if o["output_type"] == "stream" and o.get("name") == "stdout"
    )
    for rx, rep in SANITIZE:
        text = rx.sub(rep, text)
    return text, [o["output_type"] for o in outputs if o["output_type"] != "stream"]


class Student:
    def __init__(self, hub: dict, name: str, repo_url: str):
        import requests

        self.hub, self.name, self.repo_url = hub, name, repo_url
        self.http = requests.Session()
        self.admin = {"Authorization": f"token {hub['admin_token']}"}
        self.base = f"{hub['url']}/user/{name}"
        self.times: dict[str, float] = {}
        self.t0 = time.monotonic()

    def mark(self, what: str) -> None:
        self.times.setdefault(what, round(time.monotonic() - self.t0, 2))

    def api(self, method: str, path: str, expect=(200, 201, 202, 204), **kw):
        r = self.http.request(
            method, path if path.startswith("http") else self.hub["url"] + path, timeout=120, **kw
        )
        assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r

    def log_in(self) -> None:
        """Through the hub's REST API: the user, a token of theirs, their server."""
        self.api("POST", f"/hub/api/users/{self.name}", headers=self.admin)
        token = self.api(
            "POST",
            f"/hub/api/users/{self.name}/tokens",
            headers=self.admin,
            json={"note": "hub test", "expires_in": 3600},
        ).json()["token"]
        self.http.headers["Authorization"] = f"token {token}"
        self.token = token
        self.api("POST", f"/hub/api/users/{self.name}/server")
        deadline = time.monotonic() + 240
        while True:
            user = self.api("GET", f"/hub/api/users/{self.name}", headers=self.admin).json()
            server = (user.get("servers") or {}).get("")
            if server and server.get("ready"):
                break
            assert time.monotonic() < deadline, f"{self.name}: server not ready in 240 s"
            time.sleep(0.5)
        self.mark("server_ready")

    def pull(self) -> None:
        """Open the nbgitpuller link, then do what its page does: stream the sync API."""
        query = {
            "repo": self.repo_url,
            "branch": "main",
            "targetpath": TARGET,
            "urlpath": f"lab/tree/{TARGET}/{LESSON}",
        }
        page = self.api("GET", f"{self.base}/git-pull?{urllib.parse.urlencode(query)}")
        assert "git-pull" in page.text
        del query["urlpath"]
        events = []
        with self.api("GET", f"{self.base}/git-pull/api?{urllib.parse.urlencode(query)}", stream=True) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1].get("phase") in ("finished", "error"):
                        break
        assert events and events[-1].get("phase") == "finished", f"{self.name}: pull failed: {events[-3:]}"
        self.api("GET", f"{self.base}/lab/tree/{TARGET}/{LESSON}")  # where the link lands
        self.mark("pulled")

    def write_predict(self) -> None:
        path = f"{self.base}/api/contents/{TARGET}/interp_lib/basics.py"
        stub = self.api("GET", path, params={"content": 1, "type": "file", "format": "text"}).json()[
            "content"
        ]
        assert "raise NotImplementedError" in stub
        answer = release.fill_bodies(stub, (ROOT / "solutions" / "basics.py").read_text())
        self.api("PUT", path, json={"type": "file", "format": "text", "content": answer})
        self.mark("predict_written")

    def open_kernel(self, path: str | None) -> tuple[Kernel, str]:
        if path is None:
            kid = self.api("POST", f"{self.base}/api/kernels", json={"name": "python3"}).json()["id"]
        else:
            kid = self.api(
                "POST",
                f"{self.base}/api/sessions",
                json={
                    "path": path,
                    "type": "notebook",
                    "name": pathlib.PurePath(path).name,
                    "kernel": {"name": "python3"},
                },
            ).json()["kernel"]["id"]
        return Kernel(self.base, self.token, kid), kid

    def run_lesson(self) -> dict:
        nb_json = self.api("GET", f"{self.base}/api/contents/{TARGET}/{LESSON}", params={"content": 1}).json()
        nb = nbformat.from_dict(nb_json["content"])
        kernel, _ = self.open_kernel(f"{TARGET}/{LESSON}")
        self.mark("kernel_started")
        mismatches = []
        try:
            started = time.monotonic()
            first = []
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                reply, outputs = kernel.execute(cell.source, on_output=lambda: first.append(time.monotonic()))
                if reply.get("status") != "ok":
                    raise AssertionError(
                        f"{self.name}: cell {i} failed: {reply.get('ename')}: {reply.get('evalue')}"
                    )
                expected = _texts([dict(o) for o in cell.outputs])
                if _texts(outputs) != expected:
                    mismatches.append((i, _texts(outputs), expected))
            self.mark("lesson_done")
            reply, outputs = kernel.execute(PROBE)
            probe = json.loads(_texts(outputs)[0])
        finally:
            kernel.close()
        assert not mismatches, f"{self.name}: outputs differ from the stored ones: {mismatches[:2]}"
        return {
            "time_to_first_output_s": round(first[0] - started, 2),
            "login_to_first_output_s": round(first[0] - self.t0, 2),
            "lesson_s": round(time.monotonic() - started, 2),
            **probe,
        }


def _student(hub: dict, name: str, repo_url: str, results: dict, go: threading.Event) -> None:
    go.wait()
    s = Student(hub, name, repo_url)
    try:
        s.log_in()
        s.pull()
        s.write_predict()
        results[name] = {"ok": True, **s.run_lesson(), "times": s.times}
    except BaseException as e:  # noqa: BLE001 - reported and counted as a failure
        results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000], "times": s.times}
    finally:
        s.mark("done")
        results[name]["done_s"] = s.times["done"]


def _hostile(
    hub: dict, repo_url: str, results: dict, go: threading.Event, five_done: threading.Event
) -> None:
    """Pulls the release, starts an infinite loop in one kernel, checks in another that its
    kernels import its own copy (the stub: 00.1 is not written, and solutions are off), then
    crashes that one with os._exit, all while the five work; afterwards the loop is still
    running (interrupted, the kernel recovers), the crashed kernel's process is gone and the
    server still answers."""
    go.wait()
    s = Student(hub, HOSTILE, repo_url)
    out = {"ok": False}
    results[HOSTILE] = out
    try:
        s.log_in()
        s.pull()
        loop, loop_id = s.open_kernel(None)
        loop.send("while True:\n    pass\n")
        out["loop_started_s"] = round(time.monotonic() - s.t0, 2)
        crash, _ = s.open_kernel(None)
        reply, outputs = crash.execute(
            "import os, torch\nfrom interp_lib import basics\nprint(os.getpid(), basics.__file__)\n"
            "try:\n    basics.predict(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)),"
            " torch.zeros(1, 1, 2, 2))\nexcept NotImplementedError as e:\n    print('stub:', e)\n"
        )
        assert reply["status"] == "ok", reply
        pid_text, file_text = _texts(outputs)[0].splitlines()[0].split(" ", 1)
        assert file_text.startswith(str(hub["homes"] / HOSTILE / TARGET)), file_text
        assert "stub: exercise 00.1" in _texts(outputs)[0]
        crash.send("import os; os._exit(1)")
        crash.close()
        five_done.wait(600)
        out["loop_running_when_five_done"] = (
            s.api("GET", f"{s.base}/api/kernels/{loop_id}").json()["execution_state"] == "busy"
        )
        s.api("POST", f"{s.base}/api/kernels/{loop_id}/interrupt")
        loop.ws.settimeout(60)
        deadline = time.monotonic() + 60
        recovered = False
        while time.monotonic() < deadline and not recovered:
            msg = loop.recv(deadline - time.monotonic())
            recovered = msg["header"]["msg_type"] == "execute_reply" and msg["content"]["status"] == "error"
        out["loop_interrupted"] = recovered
        loop.close()
        out["crashed_kernel_pid_gone"] = (
            not pathlib.Path(f"/proc/{pid_text}").exists()
            or "zombie" in pathlib.Path(f"/proc/{pid_text}/status").read_text().lower()
        )
        out["server_alive"] = s.api("GET", f"{s.base}/api/status").ok
        out["ok"] = all(
            out[k]
            for k in (
                "loop_running_when_five_done",
                "loop_interrupted",
                "crashed_kernel_pid_gone",
                "server_alive",
            )
        )
    except BaseException as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"[:2000]


@pytest.mark.npm
@pytest.mark.slow
def test_five_students_one_hub(hub):
    # the published release: a git repository nbgitpuller can pull (file:// on loopback)
    repo = hub["tmp"] / "interp-course-student"
    shutil.copytree(hub["release"], repo)
    git = ["git", "-c", "user.name=instructor", "-c", "user.email=instructor@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "student release"], check=True)
    repo_url = repo.as_uri()

    results: dict[str, dict] = {}
    go, five_done = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_student, args=(hub, n, repo_url, results, go), daemon=True) for n in STUDENTS
    ]
    hostile = threading.Thread(target=_hostile, args=(hub, repo_url, results, go, five_done), daemon=True)
    for t in threads + [hostile]:
        t.start()
    load_start = os.getloadavg()[0]
    start = time.monotonic()
    go.set()
    for t in threads:
        t.join(400)
    wall = time.monotonic() - start
    five_done.set()
    hostile.join(120)

    load = os.getloadavg()[0]
    hub_peak = {"hub": _peak_mb(hub["proc"].pid)}
    proxy_pid = hub["tmp"] / "hub" / "proxy.pid"
    if proxy_pid.exists():
        hub_peak["proxy"] = _peak_mb(int(proxy_pid.read_text().strip()))

    students = [results.get(n, {"ok": False, "error": "did not finish"}) for n in STUDENTS]
    ok = [r for r in students if r["ok"]]
    summary = {
        "students": len(STUDENTS),
        "failures": len(STUDENTS) - len(ok),
        "wall_s_all_five": round(wall, 1),
        "cores": os.cpu_count(),
        "load_average_1min_at_start": round(load_start, 1),
        "load_average_1min_at_end": round(load, 1),
        "hub_and_proxy_peak_mb": hub_peak,
        "time_to_first_output_s": [r.get("time_to_first_output_s") for r in students],
        "login_to_first_output_s": [r.get("login_to_first_output_s") for r in students],
        "lesson_s": [r.get("lesson_s") for r in students],
        "kernel_peak_mb": [round(r["kernel_peak_mb"]) if "kernel_peak_mb" in r else None for r in students],
        "server_peak_mb": [round(r["server_peak_mb"]) if "server_peak_mb" in r else None for r in students],
        "kernel_cpu_s": [round(r["kernel_cpu_s"], 1) if "kernel_cpu_s" in r else None for r in students],
        "per_student": results,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "hub.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k != "per_student"}))

    errors = {n: r.get("error") for n, r in zip(STUDENTS, students) if not r["ok"]}
    assert not errors, f"{len(errors)} of 5 students failed: {errors}"
    for name, r in zip(STUDENTS, students):
        assert r["interp_lib"].startswith(str(hub["homes"] / name / TARGET)), r[
            "interp_lib"
        ]  # their own copy
        assert r["solutions"] is None
        assert r["cwd"] == str(hub["homes"] / name / TARGET / "lessons")
    bad = results[HOSTILE]
    assert bad["ok"], f"the hostile student's checks: {bad}"
    assert bad["loop_started_s"] < max(r["done_s"] for r in students), "the loop never ran beside the five"


def test_start_signs_the_lessons_so_stored_widgets_render(tmp_path):
    """binder/start trusts the lessons already in the student's copy (an untrusted notebook's
    stored widgets show as text), in the user's own Jupyter data folder."""
    import nbformat
    from nbformat.sign import NotebookNotary

    lessons = tmp_path / TARGET / "lessons"
    lessons.mkdir(parents=True)
    shutil.copy(ROOT / "lessons" / "09_deep_taylor.ipynb", lessons)
    data_dir = tmp_path / "jupyter-data"
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "JUPYTER_DATA_DIR": str(data_dir),
    }
    subprocess.run([str(ROOT / "binder" / "start"), "true"], env=env, check=True, timeout=120)
    notary = NotebookNotary(data_dir=str(data_dir))
    assert notary.check_signature(nbformat.read(lessons / "09_deep_taylor.ipynb", as_version=4))
