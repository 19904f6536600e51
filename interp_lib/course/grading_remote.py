"""The trusted side of the grader: a pytest plugin that runs the course's own tests in
the grader's process and sends only the graded exercise's *calls* to a child process.

Loaded by :mod:`interp_lib.course.grading` as ``pytest -p interp_lib.course.grading_remote`` with

    INTERP_GRADE_SUBMISSION   folder holding the student's ``<module>.py`` files
    INTERP_GRADE_EXERCISES    ids to grade (comma separated)
    INTERP_GRADE_TIME_FACTOR  time limit = factor x the reference body's time + floor
    INTERP_GRADE_TIME_FLOOR   seconds
    INTERP_GRADE_MEMORY_MB    resident-memory limit of a child (process group)

While a test of exercise X runs, every exercise uses its reference body in this process
except X, whose body is a :class:`Remote`: the call's arguments are pickled to a child
(forked from a server with torch preloaded) that imported the student's module; the
child returns the value (tensors, arrays, numbers, containers only), and the test's
assertions run here on it. In-place changes to tensor/array arguments and the state of
``torch.Generator`` arguments are copied back, so tests that check them still work.
"""
from __future__ import annotations

import ast
import builtins
import ctypes
import json
import os
import pathlib
import pickle
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from .. import exercises
from . import grading_worker as W

from .common import ROOT


class GraderCannotTransfer(Exception):
    """The test passes an argument the grader cannot send to a child (not the student's fault)."""


class ExerciseTimeout(Exception):
    pass


class ExerciseMemoryError(Exception):
    pass


class ExerciseExited(Exception):
    pass


class ExerciseError(Exception):
    pass


def _no_dumping() -> None:
    """Make this process non-dumpable: other processes of the same user (a student's
    child) can then neither open ``/proc/<pid>/fd/*`` nor read or write its memory."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - not Linux
        pass


def _group_rss_mb(sid: int) -> float:
    """Resident memory (MiB) of every process in session ``sid``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            if int(fields[3]) != sid:       # field 6 (session) after the comm field
                continue
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss pages
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------- fork server

class ForkServer:
    """A server process with torch imported; forks one child per graded exercise."""

    def __init__(self) -> None:
        self.sock, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(pathlib.Path(W.__file__).resolve()), str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, cwd=tempfile.gettempdir())
        theirs.close()
        self._buffer = b""

    def spawn(self, config: dict) -> tuple[int, int, int]:
        """Start a child; returns (pid, request fd to write, reply fd to read)."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        socket.send_fds(self.sock, [json.dumps(config).encode()], [req_r, rep_w])
        os.close(req_r)
        os.close(rep_w)
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("the grader's fork server died")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)["pid"], req_w, rep_r

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            _kill_group(self.proc.pid)
            self.proc.wait()


# --------------------------------------------------------------------------- sandbox copy

def strip_function(source: str, name: str) -> str:
    """``source`` without its top-level function ``name`` (the graded reference body)."""
    tree = ast.parse(source)
    tree.body = [n for n in tree.body
                 if not (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)]
    return ast.unparse(tree)


def build_copy(dest: pathlib.Path, submission: pathlib.Path, ex: exercises.Exercise) -> None:
    """A trusted course copy for grading ``ex``: the student's module for ``ex`` (if
    submitted), trusted modules otherwise, and ``solutions`` without ``ex``'s body."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "grading*.py", "release.py")
    shutil.copytree(ROOT / "interp_lib", dest / "interp_lib", ignore=ignore)
    student = submission / f"{ex.module}.py"
    if student.is_file():
        shutil.copyfile(student, dest / "interp_lib" / f"{ex.module}.py")
    shutil.copytree(ROOT / "solutions", dest / "solutions",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "answers"))
    # the trusted tests (not the hidden ones), so that classes defined in a test module
    # (a model that raises, say) can be unpickled in the child
    (dest / "tests").mkdir()
    for path in (ROOT / "tests").glob("*.py"):
        shutil.copyfile(path, dest / "tests" / path.name)
    sol = dest / "solutions" / f"{ex.module}.py"
    if sol.is_file():
        sol.write_text(strip_function(sol.read_text(encoding="utf-8"), ex.name), encoding="utf-8")


# --------------------------------------------------------------------------- remote body

class Remote:
    """The graded exercise's body: each call runs in a child with the student's code."""

    def __init__(self, session: "GradingSession", ex: exercises.Exercise) -> None:
        self.session, self.ex = session, ex
        self.reference = _ORIGINAL_SOLUTION(ex)
        self.pid = self.fd_w = self.fd_r = None
        self.broken: str | None = None      # set when the module cannot even be imported
        self.timeouts = 0
        self.calls = 0
        self.limit = session.time_floor
        self.memory = session.memory_mb
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="grade-", dir=session.tmp))

    # child lifecycle
    def _start(self) -> None:
        copy = self.workdir / "course"
        if not copy.exists():
            build_copy(copy, self.session.submission, self.ex)
        config = {"root": str(copy), "module": self.ex.module, "name": self.ex.name,
                  "switch": f"all,-{self.ex.id}", "log": str(self.workdir / "output.log"),
                  "cwd": str(self.workdir), "memory_mb": self.session.memory_mb}
        self.pid, self.fd_w, self.fd_r = self.session.server.spawn(config)
        reply = self._wait(self.session.import_limit, what="importing your module", memory=self.session.memory_mb)
        if reply.get("status") != "ready":
            self.stop()
            self.broken = (f"your interp_lib/{self.ex.module}.py failed to import: "
                           f"{reply.get('type')}: {reply.get('message')}")
            raise ExerciseError(self.broken)

    def stop(self) -> None:
        if self.pid is not None:
            _kill_group(self.pid)
        for fd in (self.fd_w, self.fd_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pid = self.fd_w = self.fd_r = None

    def _wait(self, limit: float, what: str, memory: float) -> dict:
        """Wait for one reply under the time limit and the memory watchdog (MiB)."""
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise ExerciseTimeout(
                    f"exercise {self.ex.id} `{self.ex.name}` ran over its time limit of "
                    f"{limit:.1f} s while {what} ({self.session.time_factor:g}x the reference "
                    "solution's time plus a margin): look for an endless loop, or vectorise "
                    "the Python loop over images/pixels/classes with tensor operations")
            ready, _, _ = select.select([self.fd_r], [], [], min(left, 0.05))
            if ready:
                break
            rss = _group_rss_mb(self.pid)
            if rss > memory:
                self.stop()
                raise ExerciseMemoryError(
                    f"exercise {self.ex.id} `{self.ex.name}` used more than "
                    f"{memory:.0f} MiB of memory ({rss:.0f} MiB) and was "
                    "stopped: process the data in batches, free intermediate results")
        try:
            data = W.read_message(self.fd_r)
        except EOFError:
            self.stop()
            raise ExerciseExited(
                f"exercise {self.ex.id} `{self.ex.name}` ended its own process while "
                f"{what} (os._exit, a signal or a crash); an exercise must return its "
                "result") from None
        except ValueError as err:
            self.stop()
            raise ExerciseError(f"the reply of exercise {self.ex.id} was refused: {err}") from None
        try:
            return W.loads(data)
        except Exception as err:  # noqa: BLE001 - anything the child could have sent
            self.stop()
            raise ExerciseError(f"the reply of exercise {self.ex.id} could not be read safely "
                                f"({type(err).__name__}); return tensors, arrays or numbers") from None

    # the call
    def __call__(self, *args, **kwargs):
        import torch

        if self.broken:
            raise ExerciseError(self.broken)
        if self.timeouts >= self.session.max_timeouts:
            raise ExerciseTimeout(f"exercise {self.ex.id} `{self.ex.name}` was not run again: it "
                                  f"ran over its time limit {self.timeouts} times already")
        self.calls += 1
        call_id = self.calls
        try:
            payload = pickle.dumps(("call", call_id, args, kwargs, torch.is_grad_enabled()))
        except Exception as err:  # noqa: BLE001
            raise GraderCannotTransfer(
                f"this test passes an argument the grader cannot send to a separate process "
                f"({type(err).__name__}: {err})") from None
        _, _, ref_args, ref_kwargs, _ = pickle.loads(payload)
        start = time.perf_counter()
        try:
            self.reference(*ref_args, **ref_kwargs)
        except Exception:  # noqa: BLE001 - the reference may raise on bad input, by design
            pass
        limit = self.session.time_floor + self.session.time_factor * (time.perf_counter() - start)
        self.limit = limit
        if self.pid is None:
            self._start()
        try:
            W.write_message(self.fd_w, payload)
        except (BrokenPipeError, OSError):
            self.stop()
            raise ExerciseExited(f"exercise {self.ex.id} `{self.ex.name}`: its process ended "
                                 "before the call") from None
        try:
            # the limit is on top of what the call's arguments take (a VGG-16 is 550 MB)
            self.memory = self.session.memory_mb + 2 * len(payload) / 2**20
            reply = self._wait(limit, what="running a test's call", memory=self.memory)
        except ExerciseTimeout:
            self.timeouts += 1
            raise
        if not isinstance(reply, dict) or "status" not in reply:
            self.stop()
            raise ExerciseError("malformed reply")
        decoded = W.decode
        note = ""
        if reply.get("output_bytes", 0) > W.OUTPUT_CHARS:
            note = f" (it printed {reply['output_bytes']} bytes; output truncated)"
        self.session.output[self.ex.id] = (self.session.output.get(self.ex.id, "") +
                                           str(reply.get("output", ""))[:W.OUTPUT_CHARS])[:W.OUTPUT_CHARS]
        if reply["status"] == "ok":
            try:
                value = decoded(reply["value"])
                self._copy_back(args, decoded(reply.get("args", [])))
                self._copy_back(kwargs, decoded(reply.get("kwargs", {})))
            except Exception as err:  # noqa: BLE001
                raise ExerciseError(f"the result of exercise {self.ex.id} could not be read: {err}"
                                    + note) from None
            inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
            if reply.get("graph") and isinstance(value, torch.Tensor) and inputs and torch.is_grad_enabled():
                # gradients flow back through the child: backward asks it for them
                value = _RemoteGraph.apply(self, call_id, value.detach(), *inputs)
            return value
        return self._raise(reply, note)

    def backward(self, call_id: int, grad_out):
        """Gradients of call ``call_id``'s result w.r.t. its tensor inputs, from the child."""
        if self.pid is None:
            raise ExerciseError(f"exercise {self.ex.id}: the process holding the result's graph has ended")
        W.write_message(self.fd_w, pickle.dumps(("backward", call_id, grad_out.detach())))
        reply = self._wait(self.limit, what="computing gradients through its result", memory=self.memory)
        if reply.get("status") == "ok":
            return W.decode(reply["value"])
        return self._raise(reply, "")

    def _raise(self, reply: dict, note: str):
        name, message = str(reply.get("type")), str(reply.get("message", ""))
        where = "; ".join(map(str, reply.get("where", [])))
        if name == "GraderCannotTransfer":
            # the child could not rebuild the arguments: not counted - but only when the
            # grader itself finds them unusable in a clean process, see _check_transfer
            raise ExerciseError(f"{message} (at {where})")
        if name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
            raise ExerciseExited(f"exercise {self.ex.id} `{self.ex.name}` called sys.exit/raised "
                                 f"{name} ({message}) at {where}; an exercise must return its result")
        exc_type = getattr(builtins, name, None) if reply.get("builtin") else _course_exception(
            str(reply.get("module", "")), name)
        if isinstance(exc_type, type) and issubclass(exc_type, Exception):
            try:
                raise exc_type(message + note)
            except TypeError:
                pass
        raise ExerciseError(f"{name}: {message}{note} (at {where})")

    @staticmethod
    def _copy_back(originals, returned) -> None:
        import numpy as np
        import torch

        pairs = (zip(originals, returned) if isinstance(originals, (list, tuple))
                 else ((originals[k], v) for k, v in returned.items() if k in originals))
        for orig, new in pairs:
            if isinstance(orig, torch.Tensor) and isinstance(new, torch.Tensor):
                if new.shape == orig.shape and new.dtype == orig.dtype and not torch.equal(new, orig.detach()):
                    with torch.no_grad():
                        orig.copy_(new)
            elif isinstance(orig, torch.Generator) and isinstance(new, torch.Generator):
                orig.set_state(new.get_state())
            elif isinstance(orig, np.ndarray) and isinstance(new, np.ndarray):
                if new.shape == orig.shape and orig.flags.writeable and not np.array_equal(new, orig):
                    orig[...] = new


def _course_exception(module: str, qualname: str):
    """An exception class of the course's own tests or package, already imported here."""
    mod = sys.modules.get(module)
    if mod is None or "." in qualname:
        return None
    path = str(getattr(mod, "__file__", "") or "")
    if not (module.startswith("interp_lib") or path.startswith(str(ROOT / "tests"))):
        return None
    cls = getattr(mod, qualname, None)
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else None


class _RemoteGraph(torch.autograd.Function):
    """Connects a child's result to the grader's inputs: backward asks the child."""

    @staticmethod
    def forward(ctx, remote, call_id, value, *inputs):
        ctx.remote, ctx.call_id, ctx.n = remote, call_id, len(inputs)
        return value.clone()

    @staticmethod
    def backward(ctx, grad_out):
        grads = ctx.remote.backward(ctx.call_id, grad_out)
        grads = list(grads) + [None] * (ctx.n - len(grads))
        return (None, None, None, *grads[:ctx.n])


# --------------------------------------------------------------------------- session

_ORIGINAL_SOLUTION = exercises.Exercise.solution


class GradingSession:
    def __init__(self) -> None:
        env = os.environ
        self.submission = pathlib.Path(env["INTERP_GRADE_SUBMISSION"])
        self.graded = {t for t in env.get("INTERP_GRADE_EXERCISES", "").split(",") if t}
        self.time_factor = float(env.get("INTERP_GRADE_TIME_FACTOR", "20"))
        self.time_floor = float(env.get("INTERP_GRADE_TIME_FLOOR", "3"))
        self.memory_mb = float(env.get("INTERP_GRADE_MEMORY_MB", "2048"))
        self.import_limit = float(env.get("INTERP_GRADE_IMPORT_LIMIT", "30"))
        self.max_timeouts = 2
        self.tmp = tempfile.mkdtemp(prefix="interp-grade-")
        self.server = ForkServer()
        self.remotes: dict[str, Remote] = {}
        self.current: str | None = None
        self.output: dict[str, str] = {}

    def remote(self, ex: exercises.Exercise) -> Remote:
        if ex.id not in self.remotes:
            for other in self.remotes.values():   # one child alive at a time
                other.stop()
            self.remotes[ex.id] = Remote(self, ex)
        return self.remotes[ex.id]

    def close(self) -> None:
        for r in self.remotes.values():
            r.stop()
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


_SESSION: GradingSession | None = None


def _solution(self: exercises.Exercise):
    if _SESSION is not None and self.id == _SESSION.current:
        return _SESSION.remote(self)
    return _ORIGINAL_SOLUTION(self)


def pytest_configure(config):
    global _SESSION
    _no_dumping()
    os.environ[exercises.ENV_VAR] = "all"
    _SESSION = GradingSession()
    exercises.Exercise.solution = _solution


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("exercise")
        (keep if mark is not None and str(mark.args[0]) in _SESSION.graded else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    mark = item.get_closest_marker("exercise")
    _SESSION.current = str(mark.args[0]) if mark is not None else None
    os.environ[exercises.ENV_VAR] = "all"   # the switch of this process, whatever a test did
    try:
        yield
    finally:
        _SESSION.current = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    # stop every child before the results are written
    if _SESSION is not None:
        session.config._interp_child_output = dict(_SESSION.output)
        _SESSION.close()
