"""Helpers shared by the test files (import with ``from helpers import ...``)."""

import torch


def snapshot(model):
    """Everything a method must leave as it was: values, flags, grads, modes, hooks, children."""
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "flags": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "hooks": [
            {k: len(d) for k, d in vars(m).items() if k.endswith("hooks") and isinstance(d, dict)}
            for m in model.modules()
        ],
        "children": [list(m._modules) for m in model.modules()],
    }


def assert_unchanged(model, before):
    """Assert ``model`` is exactly as in the ``before`` snapshot."""
    after = snapshot(model)
    assert after["flags"] == before["flags"], "requires_grad flags changed"
    assert after["modes"] == before["modes"], "train/eval mode changed"
    assert after["hooks"] == before["hooks"], "a hook was left behind (or removed)"
    assert after["children"] == before["children"], "sub-modules were replaced"
    for a, b in zip(after["params"] + after["buffers"], before["params"] + before["buffers"]):
        assert torch.equal(a, b), "parameter or buffer values changed"
    for a, b in zip(after["grads"], before["grads"]):
        assert (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b)), (
            ".grad changed"
        )


def stop_group(proc, timeout: float = 30) -> None:
    """End a process started with ``start_new_session=True`` and everything it started
    (its process group): SIGTERM, then SIGKILL."""
    import os
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            os.killpg(proc.pid, 0)  # the leader is gone: is the group too?
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break


def reference_grad_cam(model, x, y, layer):
    """Grad-CAM at ``layer`` for classes ``y``, written out with a forward hook (upsampled)."""
    import torch.nn.functional as F

    from interp_lib.attacks import class_scores

    acts = {}

    def keep(_m, _i, out):
        acts.setdefault("a", out)
        return out.clone()  # (so that an in-place op after the layer cannot change what is kept)

    h = model.get_submodule(layer).register_forward_hook(keep)
    try:
        xr = x.clone().requires_grad_(True)
        s = class_scores(model(xr), y).sum()
    finally:
        h.remove()
    g = torch.autograd.grad(s, acts["a"])[0]
    cam = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True))
    return F.interpolate(cam.detach(), size=x.shape[-2:], mode="bilinear")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_lab(root, env, *args, log=None, timeout: float = 120):
    """``python -m interp_lib lab`` for the course in ``root`` on a free loopback port, without
    token or password, with ``env`` and the extra server ``args``; a context manager
    yielding ``(base URL, process)`` once ``/api/status`` answers. The server's process
    group is stopped afterwards, also on failure."""
    import contextlib
    import subprocess
    import sys
    import time
    import urllib.request

    @contextlib.contextmanager
    def served():
        port = free_port()
        out = log if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-m", "interp_lib", "lab", "--no-browser", "--port", str(port)]
            + ["--ServerApp.token=", "--ServerApp.password=", "--ServerApp.ip=127.0.0.1", *args],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
                try:
                    with urllib.request.urlopen(f"{base}/api/status", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if time.time() > deadline:
                        raise TimeoutError("JupyterLab did not answer") from None
                    time.sleep(0.5)
            yield base, proc
        finally:
            stop_group(proc)

    return served()
