"""The trusted side of the grader: a pytest plugin that runs the course's own tests in
the grader's process and sends only the graded exercise's *calls* to a child process.

Loaded by :mod:`interp_lib.course.grading` as ``pytest -p interp_lib.course.grading_remote``
in a fresh copy of the course's tests, with

    INTERP_GRADE_VIEW         the submission's read-only course copy for the children
    INTERP_GRADE_SUBMISSION   folder holding the student's ``<module>.py`` files
    INTERP_GRADE_EXERCISES    ids to grade (comma separated)
    INTERP_GRADE_ISOLATION    sandbox | separate user | process only (see .sandbox)
    INTERP_GRADE_TIME_FACTOR  time limit = factor x the reference body's time + floor
    INTERP_GRADE_TIME_FLOOR   seconds
    INTERP_GRADE_MEMORY_MB    resident-memory limit of a child (with everything it started)

While a test of exercise X runs, every exercise uses its reference body in this process
except X, whose body is a :class:`Remote`: the call's arguments are pickled to a child
(one per exercise, in its own sandbox, torn down when the exercise's tests are done) that
imported the student's module; the child's reply is data (:mod:`.grading_worker`), and the
test's assertions run here on it. Nothing is copied back into this process's objects but
a ``torch.Generator``'s state; an argument the child changed in place fails the call with
a message naming it. Other exercises the student's code calls are *up-calls*: this
process runs their reference bodies on the decoded arguments.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import pathlib
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import torch
from torch import nn

from .. import exercises
from . import grading_worker as W
from . import sandbox as S


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
    child at the process-only level) can then neither open ``/proc/<pid>/fd/*`` nor
    read or write its memory."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - not Linux
        pass


# --------------------------------------------------------------------------- allowlists


def _course_dataclasses() -> dict[str, type]:
    """Dataclasses an exercise may return: the course's own, imported here by the grader."""
    from .. import evaluation, featvis

    return {f"{c.__module__}:{c.__qualname__}": c for c in (evaluation.SanityCheck, featvis.Visualisation)}


def _module_classes(test_dir: pathlib.Path) -> dict[str, type]:
    """``nn.Module`` classes an up-call may carry: torch.nn, torchvision and course models,
    and the trusted test modules' own (only modules this process has already imported)."""
    out = {}
    for name, mod in list(sys.modules.items()):
        path = str(getattr(mod, "__file__", "") or "")
        trusted = (
            name.startswith(("torch.nn.", "torchvision.models", "interp_lib."))
            and not name.startswith("interp_lib.course")
        ) or path.startswith(str(test_dir))
        if not trusted:
            continue
        for value in list(vars(mod).values()):
            if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == name:
                out[f"{value.__module__}:{value.__qualname__}"] = value
    return out


def _exception_class(module: str, qualname: str, test_dir: pathlib.Path):
    """An exception class named by a reply: a builtin, or one of the course's or of the
    trusted tests, already imported here (nothing is imported)."""
    if module == "builtins":
        cls = getattr(builtins, qualname, None)
    else:
        mod = sys.modules.get(module)
        path = str(getattr(mod, "__file__", "") or "")
        if (
            mod is None
            or "." in qualname
            or not (
                (module.startswith("interp_lib.") and not module.startswith("interp_lib.course"))
                or path.startswith(str(test_dir))
            )
        ):
            return None
        cls = getattr(mod, qualname, None)
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else None


# --------------------------------------------------------------------------- a child


class SandboxServer:
    """The sandbox level: one bubblewrap sandbox per trusted test process, holding a fork
    server (torch imported once) that forks one child per graded exercise and kills every
    other process in the sandbox before each child and on :meth:`reset`."""

    def __init__(self, session: GradingSession) -> None:
        import socket

        self.sock, theirs = socket.socketpair()
        config = {
            "mode": "server",
            "sock": theirs.fileno(),
            "sys_path": S.student_sys_path(session.site_dirs) + ["/course", "/course/tests"],
        }
        argv = [sys._base_executable, "-I", "-S", "/grader/worker.py", json.dumps(config)]  # type: ignore[attr-defined]
        cmd = S.bwrap_command(
            argv,
            [
                (session.view / "course", "/course"),
                (session.submission, "/submission"),
                (pathlib.Path(W.__file__).resolve(), "/grader/worker.py"),
            ],
        )
        self.proc = subprocess.Popen(
            cmd,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self._buffer = b""
        self.sock.settimeout(session.import_limit * 4 + 30)
        if self._line().get("status") != "up":
            raise RuntimeError("the grader's sandbox did not start")

    def _line(self) -> dict:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("the grader's sandbox ended")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, config: dict, fds: list[int]) -> None:
        import socket

        socket.send_fds(self.sock, [json.dumps({"op": "spawn", "config": config}).encode()], fds)
        if self._line().get("status") != "spawned":
            raise RuntimeError("the grader's sandbox could not start a child")

    def reset(self) -> bool:
        """Kill everything in the sandbox but the server; False when the server is gone."""
        import socket

        try:
            self.sock.settimeout(10)
            socket.send_fds(self.sock, [b'{"op": "reset"}'], [])
            return self._line().get("status") == "reset"
        except (OSError, RuntimeError, ValueError):
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            S.kill_tree(self.proc.pid)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Child:
    """One exercise's student code, in the session's isolation: forked by the sandbox's
    server, or (separate user, process only) a process of its own."""

    def __init__(self, session: GradingSession, ex: exercises.Exercise) -> None:
        self.session, self.ex = session, ex
        req_r, self.fd_w = os.pipe()
        self.fd_r, rep_w = os.pipe()
        level = session.isolation
        config = {
            "module": ex.module,
            "name": ex.name,
            "exercise": ex.id,
            "switch": f"all,-{ex.id}",
            "memory_mb": session.memory_mb,
        }
        self.uid = None
        self.proc = None
        try:
            if level == S.SANDBOX:
                server = session.sandbox_server()
                self.root = server.proc.pid
                config.update(
                    log=f"/tmp/output-{ex.id}.log",
                    cwd="/tmp",
                    student_file=f"/submission/{ex.module}.py",
                    sys_path=S.student_sys_path(session.site_dirs) + ["/course", "/course/tests"],
                )
                server.spawn(config, [req_r, rep_w])
            else:
                work = pathlib.Path(tempfile.mkdtemp(prefix=f"child-{ex.id}-", dir=session.tmp))
                course = session.view / "course"
                config.update(
                    fd_in=req_r,
                    fd_out=rep_w,
                    log=str(work / "output.log"),
                    cwd=str(work),
                    student_file=str(session.submission / f"{ex.module}.py"),
                    sys_path=S.student_sys_path([session.site_link]) + [str(course), str(course / "tests")],
                )
                cmd = [sys._base_executable, "-I", "-S", str(session.view / "worker.py"), json.dumps(config)]  # type: ignore[attr-defined]
                kwargs = {"env": session.child_env(work), "cwd": str(work)}
                if level == S.SEPARATE_USER:
                    user = session.user
                    os.chown(work, user.pw_uid, user.pw_gid)
                    work.chmod(0o700)
                    self.uid = user.pw_uid
                    kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[], umask=0o077)
                self.proc = subprocess.Popen(
                    cmd,
                    pass_fds=[req_r, rep_w],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    **kwargs,
                )
                self.root = self.proc.pid
        finally:
            os.close(req_r)
            os.close(rep_w)

    def usage(self) -> tuple[float, float]:
        """(CPU seconds, resident MiB) of the child and everything it started."""
        return S.tree_usage(self.root, self.uid)

    def stop(self) -> None:
        for fd in (self.fd_w, self.fd_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd_w = self.fd_r = -1
        if self.proc is None:  # forked in the sandbox: the server clears it
            self.session.reset_sandbox()
            return
        S.kill_tree(self.proc.pid, self.uid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.uid is not None:  # a daemon of this user that left the tree
            S.kill_tree(self.proc.pid, self.uid)


# --------------------------------------------------------------------------- remote body


class Remote:
    """The graded exercise's body: each call runs in the exercise's child."""

    def __init__(self, session: GradingSession, ex: exercises.Exercise) -> None:
        self.session, self.ex = session, ex
        self.reference = _ORIGINAL_SOLUTION(ex)
        self.child: Child | None = None
        self.broken: str | None = None  # set when the module cannot even be imported
        self.timeouts = 0
        self.calls = 0
        self.limit = session.time_floor
        self.memory = session.memory_mb
        self.graphs: dict[int, tuple] = {}  # up-call id -> (output, inputs), for the child's backward
        self.baseline = 0.0  # the child's resident memory once it is ready (MiB)

    # child lifecycle
    def _start(self) -> None:
        self.child = Child(self.session, self.ex)
        reply = self._wait(
            self.session.import_limit, what="importing your module", memory=self.session.memory_mb
        )
        self.baseline = self.child.usage()[1]  # the limit is on top of what importing torch takes
        if reply.get("status") != "ready":
            self.stop()
            self.broken = (
                f"your interp_lib/{self.ex.module}.py failed to import: "
                f"{reply.get('type')}: {reply.get('message')}"
            )
            raise ExerciseError(self.broken)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
        self.child = None
        self.graphs.clear()

    def _read(self) -> dict:
        try:
            data = W.read_message(self.child.fd_r)
        except EOFError:
            self.stop()
            raise ExerciseExited(
                f"exercise {self.ex.id} `{self.ex.name}` ended its own process (os._exit, a "
                "signal or a crash); an exercise must return its result"
            ) from None
        except ValueError as err:
            self.stop()
            raise ExerciseError(f"the reply of exercise {self.ex.id} was refused: {err}") from None
        try:
            reply = W.loads(data)
        except Exception as err:  # noqa: BLE001 - anything the child could have sent
            self.stop()
            raise ExerciseError(
                f"the reply of exercise {self.ex.id} could not be read safely "
                f"({type(err).__name__}); return tensors, arrays or numbers"
            ) from None
        if not isinstance(reply, dict) or "status" not in reply:
            self.stop()
            raise ExerciseError("malformed reply")
        return reply

    def _wait(self, limit: float, what: str, memory: float, calibrate=None) -> dict:
        """Wait for one reply under the time limit and the memory watchdog (MiB), serving
        the child's up-calls meanwhile (their time does not count against it).

        The limit is on the child's CPU time, which does not depend on how busy the machine
        is; a wall-clock limit of several times as much catches a child that sleeps. With
        ``calibrate``, ``limit`` is the floor: a call that uses it up gets the limit that
        ``calibrate()`` returns (measured on the reference body) instead."""
        cpu_start = self.child.usage()[0]
        wall_deadline = time.monotonic() + 4 * limit + 30
        while True:
            cpu, rss = self.child.usage()
            used = cpu - cpu_start
            # the memory check comes first: a child that blows up fast is stopped as such
            if rss > memory:
                self.stop()
                raise ExerciseMemoryError(
                    f"exercise {self.ex.id} `{self.ex.name}` used more than "
                    f"{memory:.0f} MiB of memory ({rss:.0f} MiB) and was "
                    "stopped: process the data in batches, free intermediate results"
                )
            if calibrate is not None and (used > limit or time.monotonic() > wall_deadline):
                started = time.monotonic()
                limit, calibrate = calibrate(), None
                wall_deadline += 4 * limit + (time.monotonic() - started)
                continue
            if used > limit or time.monotonic() > wall_deadline:
                self.stop()
                raise ExerciseTimeout(
                    f"exercise {self.ex.id} `{self.ex.name}` ran over its time limit of "
                    f"{limit:.1f} s of CPU time while {what} ({self.session.time_factor:g}x the reference "
                    "solution's time plus a margin): look for an endless loop, or vectorise "
                    "the Python loop over images/pixels/classes with tensor operations"
                    + ("" if used > limit else f"; it also stopped answering for {4 * limit + 30:.0f} s")
                )
            ready, _, _ = select.select([self.child.fd_r], [], [], 0.05)
            if not ready:
                continue
            reply = self._read()
            if reply["status"] in ("upcall", "upcall-backward"):
                started = time.monotonic()
                self._serve_upcall(reply)
                wall_deadline += time.monotonic() - started
                continue
            return reply

    # up-calls: the reference body of another exercise, for the student's code
    def _handle(self, name: str):
        arg, _, qual = str(name).partition("|")
        value = self.args_by_name.get(arg)
        if not isinstance(value, nn.Module):
            raise ValueError(f"unknown module handle {name!r}")
        return value.get_submodule(qual) if qual else value

    def _serve_upcall(self, request: dict) -> None:
        k = request.get("id")
        try:
            if request["status"] == "upcall-backward":
                output, inputs = self.graphs[k]
                grad_out = W.decode(request["grad_out"])
                grads = torch.autograd.grad(output, inputs, grad_out, retain_graph=True, allow_unused=True)
                reply = {"status": "ok", "value": list(grads)}
            else:
                reply = self._run_upcall(request)
        except Exception as err:  # noqa: BLE001 - reported to the student's code as an exception
            reply = {
                "status": "raise",
                "type": type(err).__name__ if type(err).__module__ == "builtins" else "RuntimeError",
                "message": f"{err}"[:2000],
            }
        W.write_message(self.child.fd_w, pickle.dumps(("upcall-reply", k, reply)))

    def _run_upcall(self, request: dict) -> dict:
        ex_id = str(request.get("exercise"))
        reg = exercises.registry()
        if ex_id == self.ex.id or ex_id not in reg:
            raise RuntimeError(f"exercise {ex_id} is not available to your code")
        classes = self.session.module_classes
        args = W.decode(request["args"], classes, self._handle)
        kwargs = W.decode(request["kwargs"], classes, self._handle)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError("bad up-call")
        self.session.serving += 1
        try:
            with torch.set_grad_enabled(bool(request.get("grad"))):
                value = reg[ex_id].wrapper(*args, **kwargs)
        finally:
            self.session.serving -= 1
        reply = {
            "status": "ok",
            "value": value,
            "generators": {
                **{i: a.get_state() for i, a in enumerate(args) if isinstance(a, torch.Generator)},
                **{n: v.get_state() for n, v in kwargs.items() if isinstance(v, torch.Generator)},
            },
        }
        inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
        if isinstance(value, torch.Tensor) and value.grad_fn is not None and inputs:
            self.graphs[request["id"]] = (value, inputs)
            for old in sorted(self.graphs)[:-8]:
                del self.graphs[old]
            reply["value"], reply["graph"] = value.detach(), True
        return reply

    # the call
    def __call__(self, *args, **kwargs):
        if self.session.serving:
            raise ExerciseError(
                f"exercise {self.ex.id} `{self.ex.name}` is being graded: another "
                "exercise's reference body that your code called cannot use it"
            )
        if self.broken:
            raise ExerciseError(self.broken)
        if self.timeouts >= self.session.max_timeouts:
            raise ExerciseTimeout(
                f"exercise {self.ex.id} `{self.ex.name}` was not run again: it "
                f"ran over its time limit {self.timeouts} times already"
            )
        self.calls += 1
        call_id = self.calls
        try:
            payload = pickle.dumps(("call", call_id, args, kwargs, torch.is_grad_enabled()))
        except Exception as err:  # noqa: BLE001
            raise GraderCannotTransfer(
                f"this test passes an argument the grader cannot send to a separate process "
                f"({type(err).__name__}: {err})"
            ) from None

        def calibrate() -> float:
            """The call's limit: the reference body's CPU time on the same arguments, times
            the factor, plus the floor. Only measured for calls that outlast the floor."""
            _, _, ref_args, ref_kwargs, _ = pickle.loads(payload)
            start = time.process_time()  # CPU time, like the child's limit
            try:
                self.reference(*ref_args, **ref_kwargs)
            except Exception:  # noqa: BLE001 - the reference may raise on bad input, by design
                pass
            self.limit = self.session.time_floor + self.session.time_factor * (time.process_time() - start)
            return self.limit

        if self.child is None:
            self._start()
        import inspect

        try:
            self.args_by_name = dict(inspect.signature(self.ex.stub).bind_partial(*args, **kwargs).arguments)
        except TypeError:
            self.args_by_name = {}
        try:
            W.write_message(self.child.fd_w, payload)
        except (BrokenPipeError, OSError):
            self.stop()
            raise ExerciseExited(
                f"exercise {self.ex.id} `{self.ex.name}`: its process ended before the call"
            ) from None
        try:
            # the limit is on top of what the call's arguments take (a VGG-16 is 550 MB)
            self.memory = self.baseline + self.session.memory_mb + 2 * len(payload) / 2**20
            reply = self._wait(
                self.session.time_floor, what="running a test's call", memory=self.memory, calibrate=calibrate
            )
        except ExerciseTimeout:
            self.timeouts += 1
            raise
        note = ""
        if reply.get("output_bytes", 0) > W.OUTPUT_CHARS:
            note = f" (it printed {reply['output_bytes']} bytes; output truncated)"
        self.session.output[self.ex.id] = (
            self.session.output.get(self.ex.id, "") + str(reply.get("output", ""))[: W.OUTPUT_CHARS]
        )[: W.OUTPUT_CHARS]
        if reply["status"] != "ok":
            return self._raise(reply, note)
        try:
            value = W.decode(reply["value"], self.session.dataclasses)
            changed = [str(n) for n in reply.get("changed", [])]
            states = W.decode(reply.get("generators", {"__dict__": []}))
        except Exception as err:  # noqa: BLE001
            raise ExerciseError(
                f"the result of exercise {self.ex.id} could not be read: {err}" + note
            ) from None
        if changed:
            raise ExerciseError(
                f"exercise {self.ex.id} `{self.ex.name}` changed its argument "
                f"{', '.join(f'`{n}`' for n in changed)} in place; a method must leave its inputs "
                "as they were (work on a copy, e.g. x = x.clone())"
            )
        for name, state in (states or {}).items():
            target = self.args_by_name.get(name)
            if isinstance(target, torch.Generator) and isinstance(state, torch.Generator):
                if state.get_state().shape == target.get_state().shape:
                    target.set_state(state.get_state())  # the one thing copied back: where the stream is
        inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
        if reply.get("graph") and isinstance(value, torch.Tensor) and inputs and torch.is_grad_enabled():
            # gradients flow back through the child: backward asks it for them
            value = _RemoteGraph.apply(lambda g: self.backward(call_id, g), value.detach(), *inputs)
        return value

    def backward(self, call_id: int, grad_out):
        """Gradients of call ``call_id``'s result w.r.t. its tensor inputs, from the child."""
        if self.child is None:
            raise ExerciseError(f"exercise {self.ex.id}: the process holding the result's graph has ended")
        W.write_message(self.child.fd_w, pickle.dumps(("backward", call_id, grad_out.detach())))
        reply = self._wait(self.limit, what="computing gradients through its result", memory=self.memory)
        if reply.get("status") == "ok":
            return W.decode(reply["value"])
        return self._raise(reply, "")

    def _raise(self, reply: dict, note: str):
        name, message = str(reply.get("type")), str(reply.get("message", ""))
        where = "; ".join(map(str, reply.get("where", [])))
        if name == "GraderCannotTransfer":
            raise ExerciseError(f"{message} (at {where})")
        if name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
            raise ExerciseExited(
                f"exercise {self.ex.id} `{self.ex.name}` called sys.exit/raised "
                f"{name} ({message}) at {where}; an exercise must return its result"
            )
        exc_type = _exception_class(str(reply.get("module", "")), name, self.session.test_dir)
        if exc_type is not None:
            try:
                raise exc_type(message + note)
            except TypeError:
                pass
        raise ExerciseError(f"{name}: {message}{note} (at {where})")


_RemoteGraph = W.graph_function()  # a child's result connected to the grader's inputs


# --------------------------------------------------------------------------- session

_ORIGINAL_SOLUTION = exercises.Exercise.solution


class GradingSession:
    def __init__(self, test_dir: pathlib.Path) -> None:
        env = os.environ
        self.test_dir = test_dir
        self.view = pathlib.Path(env["INTERP_GRADE_VIEW"])
        self.submission = pathlib.Path(env["INTERP_GRADE_SUBMISSION"])
        self.graded = [t for t in env.get("INTERP_GRADE_EXERCISES", "").split(",") if t]
        self.isolation = env.get("INTERP_GRADE_ISOLATION", S.PROCESS_ONLY)
        self.time_factor = float(env.get("INTERP_GRADE_TIME_FACTOR", "20"))
        self.time_floor = float(env.get("INTERP_GRADE_TIME_FLOOR", "3"))
        self.memory_mb = float(env.get("INTERP_GRADE_MEMORY_MB", "2048"))
        self.import_limit = float(env.get("INTERP_GRADE_IMPORT_LIMIT", "30"))
        self.max_timeouts = 2
        self.user = S.sandbox_user() if self.isolation == S.SEPARATE_USER else None
        self.tmp = str(S.private_dir("interp-grade-", self.user))
        self.site_dirs = sorted({p.parent for p in S.student_site_entries()})
        self.site_link = self.view / "site-packages"
        self.remotes: dict[str, Remote] = {}
        self.server: SandboxServer | None = None
        self.current: str | None = None
        self.serving = 0
        self.output: dict[str, str] = {}
        self.dataclasses = _course_dataclasses()
        self._module_classes: dict[str, type] | None = None

    @property
    def module_classes(self) -> dict[str, type]:
        if self._module_classes is None:
            self._module_classes = _module_classes(self.test_dir)
        return self._module_classes

    def sandbox_server(self) -> SandboxServer:
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.close()
            self.server = SandboxServer(self)
        return self.server

    def reset_sandbox(self) -> None:
        """After an exercise: nothing it started survives (a server that does not answer is
        torn down with everything in its sandbox; the next exercise starts a new one)."""
        if self.server is not None and not self.server.reset():
            self.server.close()
            self.server = None

    def child_env(self, work: pathlib.Path) -> dict:
        env = {
            "HOME": str(work),
            "TMPDIR": str(work),
            "PATH": "/usr/bin:/bin",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(work),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update({k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")})
        return env

    def remote(self, ex: exercises.Exercise) -> Remote:
        if ex.id not in self.remotes:
            for other in self.remotes.values():  # one exercise's child alive at a time
                other.stop()
            self.remotes[ex.id] = Remote(self, ex)
        return self.remotes[ex.id]

    def close(self) -> None:
        for r in self.remotes.values():
            r.stop()
        if self.server is not None:
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
    _SESSION = GradingSession(pathlib.Path(str(config.rootpath)) / "tests")
    exercises.Exercise.solution = _solution


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("exercise")
        (keep if mark is not None and str(mark.args[0]) in _SESSION.graded else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # one exercise's tests after another (stable within each file): one child per exercise
    first: dict[tuple[str, str], int] = {}
    for i, item in enumerate(keep):
        first.setdefault((str(item.fspath), str(item.get_closest_marker("exercise").args[0])), i)
    keep.sort(key=lambda it: first[(str(it.fspath), str(it.get_closest_marker("exercise").args[0]))])
    items[:] = keep
    if _SESSION.isolation == S.SANDBOX and keep:
        _SESSION.sandbox_server()  # the sandbox starts while the first fixtures are set up


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    mark = item.get_closest_marker("exercise")
    _SESSION.current = str(mark.args[0]) if mark is not None else None
    os.environ[exercises.ENV_VAR] = "all"  # the switch of this process, whatever a test did
    try:
        yield
    finally:
        nxt = nextitem.get_closest_marker("exercise") if nextitem is not None else None
        if _SESSION.current in _SESSION.remotes and (nxt is None or str(nxt.args[0]) != _SESSION.current):
            _SESSION.remotes[_SESSION.current].stop()  # the exercise is done: tear its sandbox down
        _SESSION.current = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    # stop every child before the results are written
    if _SESSION is not None:
        session.config._interp_child_output = dict(_SESSION.output)
        _SESSION.close()
