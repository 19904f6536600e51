"""The exercise registry and the student/solution switch.

Every exercise of the course is one function in an ``interp_lib`` topic module,
decorated with :func:`exercise`. The decorated function's signature, type hints and
docstring are the specification; its body is the student's stub. The reference body
lives under the same name in ``solutions/<same module>.py``.

Which body runs is decided at call time by the environment variable
``INTERP_LIB_SOLUTIONS``:

* unset, empty, ``0`` or ``none``: the student's bodies (the default);
* ``1`` or ``all``: every reference body;
* a list of exercise ids or names (``"02.1,fgsm"``): those reference bodies only;
* ``all,-02.3``: every reference body except exercise 02.3 (how the grader checks one
  exercise of a student with the reference bodies of all the others).

The wrapper also does what every exercise would otherwise repeat: it validates the
common arguments (``model``, ``x``, ``target`` and whatever the exercise declares in
``checks``) with a clear ``TypeError``/``ValueError``, and it guards the model: during
the call the model is in eval mode with its parameters frozen (``requires_grad`` off);
afterwards its mode, ``requires_grad`` flags, gradients, hooks, sub-modules and
parameter values are exactly as before, also when the body raises.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import os
import pathlib
import re
from typing import Any, Callable, Iterator

import torch
from torch import nn

__all__ = [
    "Exercise", "exercise", "registry", "load_all", "get", "solutions_selected",
    "weights", "guard_model", "SolutionsMissing",
    "nonnegative", "positive", "positive_int", "nonnegative_int", "unit_interval",
    "one_of", "images01", "same_shape_as", "baseline_for", "generator",
]

ENV_VAR = "INTERP_LIB_SOLUTIONS"
PACKAGE_DIR = pathlib.Path(__file__).resolve().parent

# Parameters above which the guard checks for in-place changes instead of keeping a
# backup copy of every parameter (VGG-16 has 138 M parameters).
_BACKUP_LIMIT = 5_000_000


class SolutionsMissing(RuntimeError):
    """Reference solutions were asked for, but the ``solutions`` package is absent."""


@dataclasses.dataclass
class Exercise:
    id: str                      # "02.3"
    name: str                    # "pgd"
    module: str                  # "attacks" (interp_lib.attacks / solutions.attacks)
    points: float                # relative weight (core) or bonus weight (stretch)
    stretch: bool
    checks: dict[str, Callable[..., None]]
    attribution: bool            # a method(model, x, target, **options) -> like x
    stub: Callable[..., Any]
    wrapper: Callable[..., Any] = None  # type: ignore[assignment]

    @property
    def lesson(self) -> str:
        return self.id.split(".")[0]

    @property
    def qualname(self) -> str:
        return f"interp_lib.{self.module}.{self.name}"

    @property
    def path(self) -> str:
        return f"interp_lib/{self.module}.py"

    def title(self) -> str:
        return f"{self.id} {self.name}"

    def solution(self) -> Callable[..., Any]:
        """The reference body (raises :class:`SolutionsMissing` in the student release)."""
        try:
            importlib.import_module("solutions")
        except ImportError:
            raise SolutionsMissing(
                f"{ENV_VAR}={os.environ.get(ENV_VAR, '')!r} asks for the reference body of "
                f"exercise {self.id} `{self.name}`, but the `solutions` package is not "
                "here (this is the student release). Unset the variable to run your own code."
            ) from None
        try:
            mod = importlib.import_module(f"solutions.{self.module}")
        except ModuleNotFoundError as err:
            if err.name == f"solutions.{self.module}":
                raise SolutionsMissing(
                    f"solutions/{self.module}.py is missing: no reference body for exercise "
                    f"{self.id} `{self.name}`"
                ) from None
            raise
        try:
            return getattr(mod, self.name)
        except AttributeError:
            raise SolutionsMissing(
                f"solutions/{self.module}.py has no reference body `{self.name}` "
                f"for exercise {self.id}"
            ) from None


_REGISTRY: dict[str, Exercise] = {}


def registry() -> dict[str, Exercise]:
    """Every exercise registered so far, by id, in course order (see :func:`load_all`)."""
    return dict(sorted(_REGISTRY.items(), key=lambda kv: _id_key(kv[0])))


def _id_key(ex_id: str) -> tuple[int, int]:
    lesson, number = ex_id.split(".")
    return int(lesson), int(number)


def exercise_modules() -> list[str]:
    """Names of the ``interp_lib`` modules that define exercises (found by reading them)."""
    found = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.name in ("exercises.py", "__init__.py", "__main__.py"):
            continue
        if re.search(r"^@exercise\(", path.read_text(encoding="utf-8"), re.M):
            found.append(path.stem)
    return found


def load_all(errors: dict[str, str] | None = None) -> dict[str, Exercise]:
    """Import every exercise module and return the full registry.

    With ``errors`` (a dict) given, a module that fails to import (a syntax error in a
    student's file, say) is recorded there as ``{module: message}`` instead of raising.
    """
    for name in exercise_modules():
        try:
            importlib.import_module(f"interp_lib.{name}")
        except Exception as err:  # noqa: BLE001 - reported to the student, not swallowed
            if errors is None:
                raise
            where = f" (line {err.lineno})" if isinstance(err, SyntaxError) else ""
            errors[name] = f"interp_lib/{name}.py{where}: {type(err).__name__}: {err}"
    return registry()


def get(key: str) -> Exercise:
    """An exercise by id (``"02.3"``) or name (``"pgd"``)."""
    reg = load_all()
    if key in reg:
        return reg[key]
    for ex in reg.values():
        if ex.name == key:
            return ex
    raise KeyError(f"no exercise {key!r}; known: {', '.join(reg)}")


def weights(reg: dict[str, Exercise] | None = None) -> dict[str, float]:
    """Points of every exercise, normalised so that the core exercises sum to 100.

    Stretch exercises are bonus: they are scaled by the same factor and come on top.
    ``reg`` defaults to the full registry (:func:`load_all`).
    """
    reg = load_all() if reg is None else reg
    core = sum(ex.points for ex in reg.values() if not ex.stretch)
    scale = 100.0 / core if core else 0.0
    return {ex_id: ex.points * scale for ex_id, ex in reg.items()}


def solutions_selected(ex: Exercise, value: str | None = None) -> bool:
    """Does the switch (``INTERP_LIB_SOLUTIONS`` or ``value``) select ``ex``'s reference body?"""
    raw = os.environ.get(ENV_VAR, "") if value is None else value
    tokens = [t for t in re.split(r"[\s,;]+", raw.strip().lower()) if t]
    if not tokens or tokens in (["0"], ["none"], ["false"], ["no"]):
        return False
    keys = {ex.id, ex.name.lower()}
    excluded = {t[1:] for t in tokens if t.startswith("-")}
    if keys & excluded:
        return False
    included = {t for t in tokens if not t.startswith("-")}
    return bool(included & {"1", "all", "true", "yes"}) or bool(keys & included)


# --------------------------------------------------------------------------- checks
# A check is called as check(value, name, arguments) and raises TypeError/ValueError.

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def nonnegative(value: Any, name: str, _args: dict) -> None:
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0, got {value!r}")


def positive(value: Any, name: str, _args: dict) -> None:
    if not _is_number(value) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}")


def positive_int(value: Any, name: str, _args: dict) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"`{name}` must be >= 1, got {value}")


def nonnegative_int(value: Any, name: str, _args: dict) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value}")


def unit_interval(value: Any, name: str, _args: dict) -> None:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}")


def one_of(*choices: Any) -> Callable[[Any, str, dict], None]:
    def check(value: Any, name: str, _args: dict) -> None:
        if value not in choices:
            raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return check


def images01(value: Any, name: str, _args: dict) -> None:
    """A batch of images with values in [0, 1]."""
    if isinstance(value, torch.Tensor) and value.numel() and (value.min() < 0 or value.max() > 1):
        raise ValueError(
            f"`{name}` must hold pixel values in [0, 1]; got values in "
            f"[{value.min().item():.3g}, {value.max().item():.3g}]"
        )


def same_shape_as(other: str) -> Callable[[Any, str, dict], None]:
    def check(value: Any, name: str, args: dict) -> None:
        ref = args.get(other)
        if value is None or ref is None or not isinstance(value, torch.Tensor):
            return
        try:
            torch.broadcast_shapes(value.shape, ref.shape)
        except RuntimeError:
            raise ValueError(
                f"`{name}` must have the shape of `{other}` {tuple(ref.shape)} (or broadcast "
                f"to it); got {tuple(value.shape)}"
            ) from None
        if torch.broadcast_shapes(value.shape, ref.shape) != ref.shape:
            raise ValueError(f"`{name}` {tuple(value.shape)} does not broadcast to `{other}` {tuple(ref.shape)}")
    return check


def baseline_for(other: str = "x", *, numbers: bool = True, none: bool = False) -> Callable[[Any, str, dict], None]:
    """A baseline for ``other``: a finite float tensor broadcasting to it, or (with
    ``numbers``) a plain number, or (with ``none``) None."""
    kinds = " or ".join((["None"] if none else []) + (["a number"] if numbers else [])
                        + [f"a float tensor broadcasting to `{other}`"])

    def check(value: Any, name: str, args: dict) -> None:
        if (value is None and none) or (numbers and _is_number(value)):
            return
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise TypeError(f"`{name}` must be {kinds}, got {got}")
        if not torch.isfinite(value).all():
            raise ValueError(f"`{name}` contains NaN or infinite values")
        same_shape_as(other)(value, name, args)
    return check


def generator(value: Any, name: str, _args: dict) -> None:
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"`{name}` must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), got {type(value).__name__}")


def num_classes(model: nn.Module) -> int | None:
    """The number of outputs of ``model``'s last linear layer (None when it has none)."""
    for module in reversed(list(model.modules())):
        if isinstance(module, nn.Linear):
            return module.out_features
    return None


def _check_model(value: Any, name: str, _args: dict) -> None:
    if not isinstance(value, nn.Module):
        raise TypeError(f"`{name}` must be a torch.nn.Module, got {type(value).__name__}")


def _check_x(value: Any, name: str, _args: dict) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {value.dtype}")
    if value.dim() != 4:
        raise ValueError(
            f"`{name}` must be a batch of images shaped (N, C, H, W), got shape "
            f"{tuple(value.shape)} (use x[None] for a single image)"
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")


def _check_target(value: Any, name: str, args: dict) -> None:
    if value is None:
        return
    model, x = args.get("model"), args.get("x")
    if isinstance(value, torch.Tensor):
        if value.dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.bool):
            raise TypeError(f"`{name}` must hold class indices (an integer tensor), got {value.dtype}")
        if value.dim() > 1:
            raise ValueError(f"`{name}` must be an int or a 1-D tensor of class indices, got shape {tuple(value.shape)}")
        if isinstance(x, torch.Tensor) and value.dim() == 1 and x.dim() >= 1 and len(value) != len(x):
            raise ValueError(f"`{name}` has {len(value)} entries but `x` holds {len(x)} images")
        indices = value.flatten().tolist()
    elif isinstance(value, int) and not isinstance(value, bool):
        indices = [value]
    else:
        raise TypeError(f"`{name}` must be an int or a 1-D tensor of class indices, got {type(value).__name__}")
    k = num_classes(model) if isinstance(model, nn.Module) else None
    bad = [i for i in indices if i < 0 or (k is not None and i >= k)]
    if bad:
        limit = f"0..{k - 1}" if k is not None else ">= 0"
        raise ValueError(f"`{name}` index {bad[0]} is out of range: the model has classes {limit}")


_COMMON_CHECKS: dict[str, Callable[[Any, str, dict], None]] = {
    "model": _check_model,
    "x": _check_x,
    "target": _check_target,
}


# --------------------------------------------------------------------------- guard

def _hook_dicts(module: nn.Module) -> dict[str, dict]:
    return {k: v for k, v in vars(module).items() if k.endswith("hooks") and isinstance(v, dict)}


@contextlib.contextmanager
def guard_model(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode and frozen; restore everything afterwards.

    Restored (also when the block raises): every module's train/eval flag, sub-modules
    and hook dictionaries; every parameter's ``requires_grad`` and ``.grad``; parameter
    and buffer values (from a backup for models up to 5 M parameters; larger models are
    checked for in-place changes, which raise ``RuntimeError``).
    """
    modules = list(model.modules())
    modes = [m.training for m in modules]
    children = [dict(m._modules) for m in modules]
    hooks = [{k: dict(v) for k, v in _hook_dicts(m).items()} for m in modules]
    params = list(model.parameters())
    tensors = params + list(model.buffers())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    versions = [t._version for t in tensors]
    small = sum(t.numel() for t in tensors) <= _BACKUP_LIMIT
    backup = [t.detach().clone() for t in tensors] if small else None
    try:
        model.eval()
        for p in params:
            p.requires_grad_(False)
        yield model
    finally:
        for m, mode, kids, hk in zip(modules, modes, children, hooks):
            m.training = mode
            m._modules.clear()
            m._modules.update(kids)
            for key, saved in hk.items():
                current = getattr(m, key)
                current.clear()
                current.update(saved)
        for p, flag, grad in zip(params, flags, grads):
            p.requires_grad_(flag)
            p.grad = grad
        changed = [i for i, (t, v) in enumerate(zip(tensors, versions)) if t._version != v]
        if changed:
            if backup is None:
                raise RuntimeError(
                    "the method changed the model's parameters in place; a method must never "
                    "change the model it explains"
                )
            with torch.no_grad():
                for i in changed:
                    tensors[i].copy_(backup[i])


# --------------------------------------------------------------------------- decorator

def exercise(
    ex_id: str,
    points: float,
    *,
    stretch: bool = False,
    checks: dict[str, Callable[[Any, str, dict], None]] | None = None,
    attribution: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``ex_id`` (``"LL.N"``) worth ``points`` and wrap it with the switch.

    ``checks`` maps argument names to validators (see the functions above) run before
    either body; ``model``, ``x`` and ``target`` are always validated when present.
    ``attribution=True`` marks a method with the uniform call
    ``method(model, x, target, **options) -> tensor shaped like x``.
    """
    if not re.fullmatch(r"\d\d\.\d+", ex_id):
        raise ValueError(f"exercise id must look like '02.3', got {ex_id!r}")
    if not points > 0:
        raise ValueError(f"points must be > 0, got {points!r}")

    def decorate(stub: Callable[..., Any]) -> Callable[..., Any]:
        module = stub.__module__.rsplit(".", 1)[-1]
        sig = inspect.signature(stub)
        all_checks = {n: c for n, c in _COMMON_CHECKS.items() if n in sig.parameters}
        for n in checks or {}:
            if n not in sig.parameters:
                raise ValueError(f"check for unknown argument {n!r} of {stub.__name__}")
        all_checks.update(checks or {})
        ex = Exercise(ex_id, stub.__name__, module, float(points), stretch, all_checks,
                      attribution, stub)
        old = _REGISTRY.get(ex_id)
        if old is not None and (old.name, old.module) != (ex.name, ex.module):
            raise ValueError(f"exercise id {ex_id} is taken by {old.qualname}")

        @functools.wraps(stub)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            for n, check in ex.checks.items():
                check(arguments[n], n, arguments)
            body = ex.solution() if solutions_selected(ex) else stub
            model = arguments.get("model")
            if isinstance(model, nn.Module):
                with guard_model(model):
                    return body(*bound.args, **bound.kwargs)
            return body(*bound.args, **bound.kwargs)

        wrapper.exercise = ex  # type: ignore[attr-defined]
        ex.wrapper = wrapper
        _REGISTRY[ex_id] = ex  # re-registration (e.g. %autoreload 2) replaces the entry
        return wrapper

    return decorate
