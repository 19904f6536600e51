"""The untrusted side of the grader: a fork server and the children that run student code.

Run as a script by :mod:`interp_lib.course.grading_remote` (``python -I grading_worker.py FD``).
It imports torch and numpy once, then waits on the socket ``FD`` for spawn requests:
each carries a JSON configuration and two pipe ends; the server forks a child that

* starts a new session (so the grader can kill it with its whole process group),
* sends its stdout/stderr to a log file, limits file size and core dumps,
* sets ``INTERP_LIB_SOLUTIONS`` to ``all,-<id>`` (the reference bodies of every other
  exercise; the graded one is removed from the ``solutions`` copy it can see),
* puts a trusted copy of the course (with the student's module in it) first on
  ``sys.path`` and imports the student's module,
* then answers call requests: ``(args, kwargs, grad_enabled)`` pickled by the grader,
  the reply is the return value (or the exception) encoded with :func:`encode` and
  written with ``torch.save``. The grader reads replies with ``torch.load(weights_only=
  True)`` and :func:`decode`, so a reply can only ever hold tensors, arrays, numbers,
  strings and containers - never an object that runs code in the grader.

This file must not import ``interp_lib`` at module level (the server has no course on
its path; each child imports the copy it is given).
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import struct
import sys
import traceback

MAX_MESSAGE = 1 << 29          # 512 MiB: larger replies are refused
MAX_REQUEST = 1 << 34          # requests come from the grader (VGG-16 is 550 MB pickled)
OUTPUT_CHARS = 4000            # printed output kept per call
LOG_LIMIT = 64 << 20           # bytes a child may print in total


# --------------------------------------------------------------------------- framing

def write_message(fd: int, payload: bytes) -> None:
    data = struct.pack("<Q", len(payload)) + payload
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = os.readv(fd, [view[got:got + (1 << 24)]])
        if not k:
            raise EOFError("pipe closed")
        got += k
    return buf


def read_message(fd: int, limit: int = MAX_MESSAGE) -> bytes:
    (n,) = struct.unpack("<Q", read_exact(fd, 8))
    if n > limit:
        raise ValueError(f"message of {n} bytes is larger than the {limit} allowed")
    return read_exact(fd, n)


# --------------------------------------------------------------------------- codec

def encode(value, depth: int = 0):
    """A tree of plain containers, numbers, strings and tensors (safe for weights_only)."""
    import numpy as np
    import torch

    if depth > 50:
        raise TypeError("the returned value is nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, torch.Tensor):
        plain = value.detach().as_subclass(torch.Tensor).clone().contiguous()
        return {"__tensor__": plain, "requires_grad": bool(value.requires_grad),
                "grad_fn": value.grad_fn is not None}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be returned; use a numeric dtype")
        arr = np.ascontiguousarray(value)
        return {"__ndarray__": arr.tobytes(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(value, np.generic):
        return {"__npscalar__": value.tobytes(), "dtype": value.dtype.str}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).replace("torch.", "")}
    if isinstance(value, torch.Generator):
        return {"__generator__": value.get_state()}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode(v, depth + 1) for v in value]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode(getattr(value, f.name), depth + 1)
                           for f in dataclasses.fields(value)}}
    raise TypeError(f"the grader cannot return a value of type {type(value).__name__}")


def decode(tree, depth: int = 0):
    """Inverse of :func:`encode` (runs in the grader; builds only known, inert types)."""
    import importlib

    import numpy as np
    import torch

    if depth > 60:
        raise ValueError("reply nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str, bytes)):
        return tree
    if isinstance(tree, list):
        return [decode(v, depth + 1) for v in tree]
    if not isinstance(tree, dict):
        raise ValueError(f"unexpected {type(tree).__name__} in a reply")
    if "__tensor__" in tree:
        t = tree["__tensor__"]
        if not isinstance(t, torch.Tensor):
            raise ValueError("bad tensor in a reply")
        t = t.as_subclass(torch.Tensor)
        if tree.get("requires_grad") and t.is_floating_point():
            t = t.requires_grad_(True)
            if tree.get("grad_fn"):
                t = t.clone()  # a non-leaf, like the value the exercise returned
        return t
    if "__ndarray__" in tree:
        dtype = np.dtype(str(tree["dtype"]))
        if dtype.hasobject:
            raise ValueError("object array in a reply")
        shape = tuple(int(s) for s in tree["shape"])
        return np.frombuffer(tree["__ndarray__"], dtype=dtype).reshape(shape).copy()
    if "__npscalar__" in tree:
        dtype = np.dtype(str(tree["dtype"]))
        if dtype.hasobject:
            raise ValueError("object scalar in a reply")
        return np.frombuffer(tree["__npscalar__"], dtype=dtype)[0]
    if "__dtype__" in tree:
        dt = getattr(torch, str(tree["__dtype__"]), None)
        if not isinstance(dt, torch.dtype):
            raise ValueError("bad dtype in a reply")
        return dt
    if "__generator__" in tree:
        g = torch.Generator()
        g.set_state(tree["__generator__"])
        return g
    if "__tuple__" in tree:
        return tuple(decode(v, depth + 1) for v in tree["__tuple__"])
    if "__set__" in tree:
        return {decode(v, depth + 1) for v in tree["__set__"]}
    if "__dict__" in tree:
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in tree["__dict__"]}
    if "__dataclass__" in tree:
        module, _, qualname = str(tree["__dataclass__"]).partition(":")
        if not (module == "interp_lib" or module.startswith("interp_lib.")) or "." in qualname:
            raise ValueError(f"dataclass {tree['__dataclass__']} may not be returned")
        cls = getattr(importlib.import_module(module), qualname, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{tree['__dataclass__']} is not a course dataclass")
        return cls(**{str(k): decode(v, depth + 1) for k, v in tree["fields"].items()})
    raise ValueError("unknown entry in a reply")


def dumps(tree) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(tree, buf)
    return buf.getvalue()


def loads(data: bytes):
    import torch

    return torch.load(io.BytesIO(bytes(data)), weights_only=True)


# --------------------------------------------------------------------------- child

def _read_output(log_path: str, start: int) -> tuple[str, int]:
    try:
        size = os.path.getsize(log_path)
        with open(log_path, "rb") as fh:
            fh.seek(start)
            text = fh.read(OUTPUT_CHARS).decode("utf-8", "replace")
        return text, size - start
    except OSError:
        return "", 0


def _child(config: dict, fd_in: int, fd_out: int) -> None:
    import resource
    import signal

    log_fd = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a runaway print raises OSError instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (LOG_LIMIT, LOG_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A backstop behind the grader's resident-memory watchdog: address space of the
    # process now (torch reserves a lot) plus twice the memory limit.
    try:
        with open("/proc/self/status") as fh:
            vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        limit = vm + 2 * int(config.get("memory_mb", 2048)) * 2**20 + 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, StopIteration, ValueError):
        pass
    os.environ["INTERP_LIB_SOLUTIONS"] = config["switch"]
    os.chdir(config["cwd"])
    sys.path.insert(0, config["root"])
    sys.path.insert(1, os.path.join(config["root"], "tests"))

    import torch

    def reply(obj) -> None:
        write_message(fd_out, dumps(obj))

    try:
        import importlib

        module = importlib.import_module(f"interp_lib.{config['module']}")
        func = getattr(module, config["name"])
    except BaseException as exc:  # noqa: BLE001 - anything the student's module does
        reply({"status": "import-error", "type": type(exc).__name__,
               "message": str(exc)[:2000],
               "traceback": "".join(traceback.format_exception(exc))[-3000:]})
        return
    reply({"status": "ready"})
    graphs: dict[int, tuple] = {}      # call id -> (output tensor, input tensors) for backward
    while True:
        try:
            data = read_message(fd_in, MAX_REQUEST)
        except EOFError:
            return
        try:
            request = pickle.loads(data)
            del data
        except BaseException as exc:  # noqa: BLE001 - e.g. a class the child cannot import
            reply({"status": "raise", "type": "GraderCannotTransfer", "builtin": False,
                   "message": f"the child could not unpickle the arguments: {type(exc).__name__}: {exc}"[:2000],
                   "where": [], "output": "", "output_bytes": 0})
            continue
        start = os.path.getsize(config["log"]) if os.path.exists(config["log"]) else 0
        if request[0] == "backward":
            _kind, call_id, grad_out = request
            try:
                output, inputs = graphs[call_id]
                grads = torch.autograd.grad(output, inputs, grad_out, retain_graph=True, allow_unused=True)
                out = {"status": "ok", "value": encode(list(grads))}
            except BaseException as exc:  # noqa: BLE001
                out = {"status": "raise", "type": type(exc).__name__, "builtin": type(exc).__module__ == "builtins",
                       "message": f"backward through the exercise's result failed: {exc}"[:2000], "where": []}
            out["output"], out["output_bytes"] = "", 0
            reply(out)
            continue
        _kind, call_id, args, kwargs, grad_enabled = request
        try:
            with torch.set_grad_enabled(grad_enabled):
                result = func(*args, **kwargs)
            out = {"status": "ok", "value": encode(result)}
            inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
            if isinstance(result, torch.Tensor) and result.grad_fn is not None and inputs:
                graphs[call_id] = (result, inputs)
                for old in sorted(graphs)[:-4]:     # keep the last four graphs
                    del graphs[old]
                out["graph"] = True
            out["args"] = encode([a if isinstance(a, (torch.Tensor, torch.Generator)) or
                                  type(a).__module__ == "numpy" else None for a in args])
            out["kwargs"] = encode({k: v for k, v in kwargs.items()
                                    if isinstance(v, (torch.Tensor, torch.Generator)) or
                                    type(v).__module__ == "numpy"})
        except BaseException as exc:  # noqa: BLE001 - SystemExit included
            tb = traceback.extract_tb(exc.__traceback__)
            where = [f"{fr.filename.rsplit('/', 1)[-1]}:{fr.lineno} in {fr.name}" for fr in tb[-3:]]
            out = {"status": "raise", "type": type(exc).__name__, "module": type(exc).__module__,
                   "builtin": type(exc).__module__ == "builtins",
                   "message": str(exc)[:2000], "where": where}
        text, nbytes = _read_output(config["log"], start)
        out["output"], out["output_bytes"] = text, nbytes
        try:
            reply(out)
        except BaseException as exc:  # noqa: BLE001
            reply({"status": "raise", "type": "TypeError", "builtin": True,
                   "message": f"the grader could not send the result back: {exc}"[:2000],
                   "where": [], "output": text, "output_bytes": nbytes})


# --------------------------------------------------------------------------- server

def serve(sock_fd: int) -> None:
    import signal
    import socket

    import numpy  # noqa: F401 - preloaded for the children
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    sock = socket.socket(fileno=sock_fd)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 2)
        except OSError:
            return
        if not msg:
            return
        config = json.loads(msg.decode())
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                os.setsid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _child(config, fds[0], fds[1])
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
