"""The untrusted side of the grader: the child process that runs one exercise's student code.

Started by :mod:`interp_lib.course.grading_remote` inside the isolation of
:mod:`interp_lib.course.sandbox`, as ``python -I -S grading_worker.py CONFIG``: in the
bubblewrap sandbox as a fork server (:func:`serve`, one per trusted test process) that
forks a child per graded exercise; at the other levels as the child itself. The child

* sets its rlimits, sends its stdout/stderr to a log file in its private folder,
* puts the standard library, the student environment's packages and its read-only
  course copy (no ``solutions``) on ``sys.path``, loads the student's module for this
  exercise from the submission in place of the course's, and says ``ready``,
* answers the grader's requests, ``("call", id, args, kwargs, grad_enabled)`` and
  ``("backward", id, grad_out)``, pickled by the grader (trusted to untrusted).

Its replies are *data*: :func:`encode` turns a value into plain containers, numbers,
strings and tensors, written with ``torch.save``; the grader reads them with
``torch.load(weights_only=True)`` and :func:`decode`, which builds only inert types and
the few classes on the grader's own allowlists (it never imports a module a reply names).

Other exercises that the student's code calls (``attacks.input_gradient`` inside a
saliency map, say) are *up-calls*: the arguments go to the grader as data, the grader
runs that exercise's reference body and sends the result back (with a graph to
differentiate through when the inputs require gradients). The graded exercise itself is
never answered that way. Arguments are copies: nothing the child does flows back into
the grader's objects, except the state of a ``torch.Generator`` argument (a byte string).
A tensor or array argument that the call changed in place is reported by name.

This file must not import ``interp_lib`` at module level: it runs before the course copy
is on the path, as a script.
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

MAX_MESSAGE = 1 << 29  # 512 MiB: larger replies are refused
MAX_REQUEST = 1 << 34  # requests come from the grader (VGG-16 is 550 MB pickled)
OUTPUT_CHARS = 4000  # printed output kept per call
LOG_LIMIT = 64 << 20  # bytes a child may print in total
MAX_DEPTH = 50


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
        k = os.readv(fd, [view[got : got + (1 << 24)]])
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

_MODULE_SKIP = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "training"}


def _plain(value, depth: int = 0) -> bool:
    """Numbers, strings, None and tuples/lists of them: what a layer's settings are."""
    if depth > 5:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (tuple, list)) and all(_plain(v, depth + 1) for v in value)


def encode(value, handles: dict | None = None, depth: int = 0):
    """A tree of plain containers, numbers, strings and tensors (safe for weights_only).

    ``handles`` maps ``id(module)`` to a name the other side knows (a module it sent);
    any other ``nn.Module`` is described by its class name, settings, tensors and
    sub-modules, which the grader rebuilds only for classes on its allowlist."""
    import numpy as np
    import torch

    if depth > MAX_DEPTH:
        raise TypeError("the value is nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, torch.Tensor):
        plain = value.detach().as_subclass(torch.Tensor).contiguous()
        if plain.untyped_storage().nbytes() != plain.numel() * plain.element_size():
            plain = plain.clone()  # a view: torch.save would write its whole storage
        return {
            "__tensor__": plain,
            "requires_grad": bool(value.requires_grad),
            "grad_fn": value.grad_fn is not None,
        }
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be sent; use a numeric dtype")
        arr = np.ascontiguousarray(value)
        return {"__ndarray__": arr.tobytes(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(value, np.generic):
        return {"__npscalar__": value.tobytes(), "dtype": value.dtype.str}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).replace("torch.", "")}
    if isinstance(value, torch.Generator):
        return {"__generator__": value.get_state()}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, handles, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, handles, depth + 1) for v in value]
    if isinstance(value, dict):
        return {
            "__dict__": [
                [encode(k, handles, depth + 1), encode(v, handles, depth + 1)] for k, v in value.items()
            ]
        }
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode(v, handles, depth + 1) for v in value]}
    if isinstance(value, torch.nn.Module):
        if handles and id(value) in handles:
            return {"__handle__": handles[id(value)]}
        original = handles.get(tree_signature(value)) if handles else None
        if original is not None:
            # a copy of a module the grader sent (e.g. a model with some layers re-initialised):
            # the grader copies its own module and loads these tensors into it
            return {
                "__copy_of__": original,
                "training": bool(value.training),
                "state": {k: encode(v, None, depth + 1) for k, v in value.state_dict(keep_vars=True).items()},
            }
        cls = type(value)
        attrs = {}
        for k, v in vars(value).items():
            if k in _MODULE_SKIP or "hook" in k:
                continue
            if not _plain(v):
                raise TypeError(
                    f"a {cls.__name__} with attribute {k!r} of type {type(v).__name__} "
                    "cannot be passed to another exercise"
                )
            attrs[k] = encode(v, handles, depth + 1)
        return {
            "__nnmodule__": f"{cls.__module__}:{cls.__qualname__}",
            "training": bool(value.training),
            "attrs": attrs,
            "params": {
                k: None if p is None else encode(p, handles, depth + 1) for k, p in value._parameters.items()
            },
            "buffers": {
                k: None if b is None else encode(b, handles, depth + 1) for k, b in value._buffers.items()
            },
            "children": {
                k: None if m is None else encode(m, handles, depth + 1) for k, m in value._modules.items()
            },
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {
            "__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
            "fields": {
                f.name: encode(getattr(value, f.name), handles, depth + 1) for f in dataclasses.fields(value)
            },
        }
    raise TypeError(
        f"a value of type {type(value).__name__} cannot be sent between the grader and "
        "your code; return tensors, arrays, numbers or containers of them"
    )


def tree_signature(module) -> str:
    """A module's structure: the names and class names of all its sub-modules."""
    return "|".join(
        f"{name}:{type(m).__module__}.{type(m).__qualname__}" for name, m in module.named_modules()
    )


def decode(tree, classes: dict | None = None, handles=None, depth: int = 0):
    """Inverse of :func:`encode`. ``classes`` maps the names of allowed dataclasses and
    ``nn.Module`` classes to classes the caller has imported itself (nothing is imported
    here); ``handles(name)`` returns a module the caller sent."""
    import numpy as np
    import torch

    classes = classes or {}
    if depth > MAX_DEPTH + 10:
        raise ValueError("reply nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str, bytes)):
        return tree
    if isinstance(tree, list):
        return [decode(v, classes, handles, depth + 1) for v in tree]
    if not isinstance(tree, dict):
        raise ValueError(f"unexpected {type(tree).__name__} in a reply")
    if "__tensor__" in tree:
        t = tree["__tensor__"]
        if not isinstance(t, torch.Tensor):
            raise ValueError("bad tensor in a reply")
        t = t.as_subclass(torch.Tensor)
        if tree.get("requires_grad") and (t.is_floating_point() or t.is_complex()):
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
        return tuple(decode(v, classes, handles, depth + 1) for v in tree["__tuple__"])
    if "__set__" in tree:
        return {decode(v, classes, handles, depth + 1) for v in tree["__set__"]}
    if "__dict__" in tree:
        return {
            decode(k, classes, handles, depth + 1): decode(v, classes, handles, depth + 1)
            for k, v in tree["__dict__"]
        }
    if "__handle__" in tree:
        if handles is None:
            raise ValueError("a module handle where none is expected")
        return handles(tree["__handle__"])
    if "__copy_of__" in tree:
        import copy

        if handles is None:
            raise ValueError("a module copy where none is expected")
        module = copy.deepcopy(handles(tree["__copy_of__"]))
        state = {str(k): decode(v, classes, None, depth + 1) for k, v in tree["state"].items()}
        mine = module.state_dict()
        if set(state) != set(mine) or any(
            not isinstance(v, torch.Tensor) or v.shape != mine[k].shape or v.dtype != mine[k].dtype
            for k, v in state.items()
        ):
            raise ValueError("a module copy whose tensors do not match the module it copies")
        module.load_state_dict(state)
        for (_, p), v in zip(
            module.named_parameters(), [tree["state"].get(k) for k, _ in module.named_parameters()]
        ):
            if isinstance(v, dict):
                p.requires_grad_(bool(v.get("requires_grad")))
        module.train(bool(tree.get("training", False)))
        return module
    if "__nnmodule__" in tree:
        cls = classes.get(str(tree["__nnmodule__"]))
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise ValueError(
                f"a module of class {tree['__nnmodule__']} cannot be passed to another "
                "exercise (only torch.nn layers, torchvision and course models)"
            )
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        for k, v in tree["attrs"].items():
            v = decode(v, classes, handles, depth + 1)
            if not isinstance(k, str) or k in _MODULE_SKIP or not _plain(v):
                raise ValueError(f"bad module attribute {k!r} in a reply")
            object.__setattr__(module, k, v)
        for k, v in tree["params"].items():
            p = decode(v, classes, handles, depth + 1)
            module.register_parameter(
                str(k),
                None if p is None else torch.nn.Parameter(p.detach(), requires_grad=bool(v["requires_grad"])),
            )
        for k, v in tree["buffers"].items():
            module.register_buffer(str(k), decode(v, classes, handles, depth + 1))
        for k, v in tree["children"].items():
            child = decode(v, classes, handles, depth + 1)
            if child is not None and not isinstance(child, torch.nn.Module):
                raise ValueError("bad sub-module in a reply")
            module.add_module(str(k), child)
        module.train(bool(tree.get("training", False)))
        return module
    if "__dataclass__" in tree:
        cls = classes.get(str(tree["__dataclass__"]))
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{tree['__dataclass__']} is not a course dataclass the grader accepts")
        return cls(**{str(k): decode(v, classes, handles, depth + 1) for k, v in tree["fields"].items()})
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


class _Child:
    """One exercise's student code, answering the grader's requests."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.fd_in, self.fd_out = int(config["fd_in"]), int(config["fd_out"])
        self.log = config["log"]
        self.graphs: dict[int, tuple] = {}  # call id -> (output, inputs) for backward
        self.upcalls = 0
        self.handles: dict[int, str] = {}  # id(module) -> name, for the current call

    def send(self, obj) -> None:
        write_message(self.fd_out, dumps(obj))

    def receive(self):
        return pickle.loads(read_message(self.fd_in, MAX_REQUEST))

    # up-calls: another exercise's reference body, run by the grader
    def upcall(self, ex_id: str, args: tuple, kwargs: dict):
        import torch

        self.upcalls += 1
        k = self.upcalls
        generators = {i: a for i, a in enumerate(args) if isinstance(a, torch.Generator)}
        generators.update({n: v for n, v in kwargs.items() if isinstance(v, torch.Generator)})
        self.send(
            {
                "status": "upcall",
                "id": k,
                "exercise": ex_id,
                "args": encode(list(args), self.handles),
                "kwargs": encode(kwargs, self.handles),
                "grad": torch.is_grad_enabled(),
            }
        )
        kind, got, reply = self.receive()
        if kind != "upcall-reply" or got != k:
            raise RuntimeError("the grader's reply to an up-call is out of order")
        if reply["status"] != "ok":
            import builtins

            exc = getattr(builtins, str(reply.get("type")), None)
            if not (isinstance(exc, type) and issubclass(exc, Exception)):
                exc = RuntimeError
            raise exc(reply.get("message", ""))
        for key, state in reply.get("generators", {}).items():
            if key in generators:
                generators[key].set_state(state)
        value = reply["value"]
        inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
        if reply.get("graph") and isinstance(value, torch.Tensor) and inputs and torch.is_grad_enabled():
            value = _UpcallGraph.apply(lambda g: self.upcall_backward(k, g), value.detach(), *inputs)
        return value

    def upcall_backward(self, k: int, grad_out):
        self.send({"status": "upcall-backward", "id": k, "grad_out": encode(grad_out)})
        kind, got, reply = self.receive()
        if kind != "upcall-reply" or got != k or reply["status"] != "ok":
            raise RuntimeError(
                f"gradients through another exercise's result failed: {reply.get('message', '')}"
            )
        return reply["value"]

    def output_since(self, start: int) -> tuple[str, int]:
        try:
            size = os.path.getsize(self.log)
            with open(self.log, "rb") as fh:
                fh.seek(start)
                text = fh.read(OUTPUT_CHARS).decode("utf-8", "replace")
            return text, size - start
        except OSError:
            return "", 0

    def run(self) -> None:
        import importlib
        import inspect

        config = self.config
        try:
            exercises = importlib.import_module("interp_lib.exercises")
            graded = config["exercise"]
            child = self

            def solution(ex):
                if ex.id == graded:
                    raise RuntimeError(
                        f"exercise {graded} `{ex.name}` is the one being graded: "
                        "its reference body is not available"
                    )
                body = ex.stub

                def proxy(*args, **kwargs):
                    return child.upcall(ex.id, args, kwargs)

                proxy.__name__ = proxy.__qualname__ = body.__name__
                return proxy

            exercises.Exercise.solution = solution
            module = _student_module(config["module"], config["student_file"])
            func = getattr(module, config["name"])
            signature = inspect.signature(func)
        except BaseException as exc:  # noqa: BLE001 - anything the student's module does
            self.send(
                {
                    "status": "import-error",
                    "type": type(exc).__name__,
                    "message": str(exc)[:2000],
                    "traceback": "".join(traceback.format_exception(exc))[-3000:],
                }
            )
            return
        self.send({"status": "ready"})
        while True:
            try:
                request = self.receive()
            except EOFError:
                return
            start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
            if request[0] == "backward":
                out = self._backward(request)
            else:
                out = self._call(request, func, signature)
            out["output"], out["output_bytes"] = self.output_since(start)
            try:
                self.send(out)
            except BaseException as exc:  # noqa: BLE001
                self.send(
                    {
                        "status": "raise",
                        "type": "TypeError",
                        "builtin": True,
                        "message": f"the grader could not send the result back: {exc}"[:2000],
                        "where": [],
                        "output": out["output"],
                        "output_bytes": out["output_bytes"],
                    }
                )

    def _backward(self, request) -> dict:
        import torch

        _kind, call_id, grad_out = request
        try:
            output, inputs = self.graphs[call_id]
            grads = torch.autograd.grad(output, inputs, grad_out, retain_graph=True, allow_unused=True)
            return {"status": "ok", "value": encode(list(grads))}
        except BaseException as exc:  # noqa: BLE001
            return {
                "status": "raise",
                "type": type(exc).__name__,
                "builtin": type(exc).__module__ == "builtins",
                "message": f"backward through the exercise's result failed: {exc}"[:2000],
                "where": [],
            }

    def _call(self, request, func, signature) -> dict:
        import numpy as np
        import torch

        _kind, call_id, args, kwargs, grad_enabled = request
        try:
            named = dict(signature.bind_partial(*args, **kwargs).arguments)
        except TypeError:
            named = {f"argument {i + 1}": a for i, a in enumerate(args)} | dict(kwargs)
        self.handles = {}
        for name, value in named.items():
            if isinstance(value, torch.nn.Module):
                for qual, sub in value.named_modules(remove_duplicate=False):
                    self.handles.setdefault(id(sub), f"{name}|{qual}")
                    self.handles.setdefault(tree_signature(sub), f"{name}|{qual}")
        before = {}
        for name, value in named.items():
            if isinstance(value, torch.Tensor):
                before[name] = (
                    value._version,
                    value.detach().clone() if value.numel() <= 50_000_000 else None,
                )
            elif isinstance(value, np.ndarray):
                before[name] = (None, value.copy())
        try:
            with torch.set_grad_enabled(grad_enabled):
                result = func(*args, **kwargs)
            out = {"status": "ok", "value": encode(result)}
            inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
            if isinstance(result, torch.Tensor) and result.grad_fn is not None and inputs:
                self.graphs[call_id] = (result, inputs)
                for old in sorted(self.graphs)[:-4]:  # keep the last four graphs
                    del self.graphs[old]
                out["graph"] = True
            out["changed"] = [
                name for name, (version, copy) in before.items() if _changed(named[name], version, copy)
            ]
            out["generators"] = encode(
                {name: v for name, v in named.items() if isinstance(v, torch.Generator)}
            )
            return out
        except BaseException as exc:  # noqa: BLE001 - SystemExit included
            tb = traceback.extract_tb(exc.__traceback__)
            where = [f"{fr.filename.rsplit('/', 1)[-1]}:{fr.lineno} in {fr.name}" for fr in tb[-3:]]
            return {
                "status": "raise",
                "type": type(exc).__name__,
                "module": type(exc).__module__,
                "builtin": type(exc).__module__ == "builtins",
                "message": str(exc)[:2000],
                "where": where,
            }
        finally:
            self.handles = {}


def _changed(value, version, copy) -> bool:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        if value._version == version:
            return False
        return copy is None or copy.shape != value.shape or not torch.equal(copy, value.detach())
    return isinstance(value, np.ndarray) and (copy.shape != value.shape or not np.array_equal(copy, value))


def graph_function():
    """An autograd function that connects a value computed in another process to the
    inputs here: ``Graph.apply(ask, value, *inputs)``, where ``ask(grad_out)`` returns the
    gradients w.r.t. the inputs from that process (used in both directions)."""
    import torch

    class Graph(torch.autograd.Function):
        @staticmethod
        def forward(ctx, ask, value, *inputs):
            ctx.ask, ctx.n = ask, len(inputs)
            return value.clone()

        @staticmethod
        def backward(ctx, grad_out):
            grads = list(ctx.ask(grad_out))
            grads = grads + [None] * (ctx.n - len(grads))
            return (None, None, *grads[: ctx.n])

    return Graph


_UpcallGraph = None


def _limits(config: dict) -> None:
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
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a runaway print raises OSError instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (LOG_LIMIT, LOG_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _address_space_limit(memory_mb: float) -> None:
    """A backstop behind the grader's resident-memory watchdog: the address space the
    process has now (torch reserves a lot) plus twice the memory limit."""
    import resource

    try:
        with open("/proc/self/status") as fh:
            vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        limit = vm + 2 * int(memory_mb) * 2**20 + 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, StopIteration, ValueError):
        pass


def _student_module(name: str, path: str):
    """The student's ``interp_lib/<name>.py`` (from the submission) as ``interp_lib.<name>``;
    every other module of the package is the course's own."""
    import importlib.util

    import interp_lib

    qualified = f"interp_lib.{name}"
    spec = importlib.util.spec_from_file_location(qualified, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[qualified]
        raise
    setattr(interp_lib, name, module)
    return module


def child_main(config: dict) -> None:
    """One exercise's child: limits, the path, the student's module, then requests."""
    global _UpcallGraph
    _limits(config)
    sys.path[:] = list(config["sys_path"])
    os.environ["INTERP_LIB_SOLUTIONS"] = config["switch"]
    os.chdir(config["cwd"])
    import numpy  # noqa: F401
    import torch

    torch.set_num_threads(1)
    _address_space_limit(float(config.get("memory_mb", 2048)))
    _UpcallGraph = graph_function()
    _Child(config).run()


def serve(config: dict) -> None:
    """A fork server inside one sandbox (the sandbox level): torch imported once, then one
    child per exercise. Before each child, and on ``reset``, every other process in the
    sandbox is killed (``kill(-1)`` in its PID namespace spares only itself and init), so
    nothing of one exercise survives into the next."""
    import signal
    import socket

    sys.path[:] = list(config["sys_path"])
    import numpy  # noqa: F401 - preloaded for the children
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    sock = socket.socket(fileno=int(config["sock"]))
    sock.sendall(b'{"status": "up"}\n')
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 2)
        except OSError:
            return
        if not msg:
            return
        request = json.loads(msg.decode())
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if request.get("op") == "reset":
            sock.sendall(b'{"status": "reset"}\n')
            continue
        child = dict(request["config"], fd_in=fds[0], fd_out=fds[1])
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                os.setsid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                child_main(child)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"status": "spawned", "pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    _config = json.loads(sys.argv[1])
    serve(_config) if _config.get("mode") == "server" else child_main(_config)
    os._exit(0)
