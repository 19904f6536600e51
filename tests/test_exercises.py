"""The exercise mechanism: registry, switch, wrapper checks, model guard, and drift."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import exercises
from interp_lib.exercises import exercise, guard_model, load_all, solutions_selected, weights
from interp_lib.lesson import lesson_key, lesson_notebooks

ROOT = pathlib.Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- switch


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", False),
        ("0", False),
        ("none", False),
        ("1", True),
        ("all", True),
        ("ALL", True),
        ("02.1", True),
        ("input_gradient", True),
        ("02.2,fgsm", False),
        ("all,-02.1", False),
        ("all, -input_gradient", False),
        ("all,-02.2", True),
        ("01.1 02.1", True),
    ],
)
def test_switch_values(value, expected):
    ex = exercises.get("02.1")
    assert solutions_selected(ex, value) is expected


def test_switch_acts_at_call_time(monkeypatch):
    from interp_lib.basics import predict

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(2, 1, 2, 2)
    monkeypatch.setenv(exercises.ENV_VAR, "none")
    with pytest.raises(NotImplementedError, match=r"exercise 00\.1 `predict` \(lesson 00\)"):
        predict(model, x)
    monkeypatch.setenv(exercises.ENV_VAR, "00.1")
    classes, probs = predict(model, x)
    assert classes.shape == (2,) and torch.allclose(probs.sum(1), torch.ones(2))


def test_missing_solutions_package_is_a_clear_error(monkeypatch):
    from interp_lib.basics import predict

    monkeypatch.setenv(exercises.ENV_VAR, "all")
    monkeypatch.setitem(sys.modules, "solutions", None)  # as if the folder were absent
    monkeypatch.delitem(sys.modules, "solutions.basics", raising=False)
    with pytest.raises(exercises.SolutionsMissing, match="student release"):
        predict(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), torch.rand(1, 1, 2, 2))


# --------------------------------------------------------------------------- registry


def test_registry_ids_points_and_weights():
    reg = load_all()
    assert "00.1" in reg and "01.2" in reg
    w = weights()
    assert sum(v for k, v in w.items() if not reg[k].stretch) == pytest.approx(100.0)
    assert all(v > 0 for v in w.values())
    for ex_id, ex in reg.items():
        assert ex.lesson == ex_id[:2]
        assert ex.wrapper.exercise is ex


def test_stretch_exercises_are_bonus():
    reg = load_all()
    assert reg["01.3"].stretch
    w = weights()
    core = sum(ex.points for ex in reg.values() if not ex.stretch)
    assert w["01.3"] == pytest.approx(reg["01.3"].points * 100 / core)


def test_reregistration_under_autoreload_replaces_the_entry():
    import interp_lib.basics as basics

    before = exercises.registry()["00.1"]
    importlib.reload(basics)
    after = exercises.registry()["00.1"]
    assert after is not before and after.name == "predict"
    assert len([e for e in exercises.registry().values() if e.name == "predict"]) == 1


def test_bad_registrations_raise():
    with pytest.raises(ValueError, match="id"):
        exercise("2.1", points=1)
    with pytest.raises(ValueError, match="points"):
        exercise("99.1", points=0)
    with pytest.raises(ValueError, match="taken"):

        @exercise("00.1", points=1)
        def something_else(model, x):
            pass


# --------------------------------------------------------------------------- wrapper checks


@pytest.fixture
def toy_exercise(monkeypatch):
    """A throw-away exercise whose 'solution' is the function passed in ``impl``."""
    calls = {}
    monkeypatch.setenv(exercises.ENV_VAR, "none")  # the stub body below is the method

    @exercise(
        "98.1",
        points=1,
        checks={
            "eps": exercises.nonnegative,
            "steps": exercises.positive_int,
            "method": exercises.one_of("a", "b"),
        },
    )
    def toy(model, x, target=None, eps=0.1, steps=3, method="a"):
        return calls["impl"](model, x, target)

    yield toy, calls
    exercises._REGISTRY.pop("98.1", None)


def test_common_argument_checks(toy_exercise):
    toy, calls = toy_exercise
    calls["impl"] = lambda m, x, t: x
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(2, 1, 2, 2)
    assert toy(model, x, 1) is x
    cases = [
        (dict(model="no"), TypeError, "model"),
        (dict(x=x.numpy()), TypeError, "x"),
        (dict(x=x[0]), ValueError, "x"),
        (dict(x=x.long()), TypeError, "x"),
        (dict(x=x * float("nan")), ValueError, "x"),
        (dict(target=3), ValueError, "target"),
        (dict(target=-1), ValueError, "target"),
        (dict(target=torch.tensor([0, 1, 2])), ValueError, "target"),
        (dict(target=torch.tensor([0.0, 1.0])), TypeError, "target"),
        (dict(target="cat"), TypeError, "target"),
        (dict(eps=-0.1), ValueError, "eps"),
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(method="c"), ValueError, "method"),
        (dict(x=x.double()), TypeError, "x"),  # not the model's dtype
        (dict(x=x.to("meta")), ValueError, "x"),  # not the model's device
        (dict(x=torch.rand(2, 1, 3, 3)), ValueError, "x"),  # 9 values, Linear takes 4
        (dict(target=np.array([0.0, 1.0])), TypeError, "target"),
        (dict(target=np.int64(3)), ValueError, "target"),
        (dict(n_steps=3), TypeError, "steps"),  # captum's name: the course's named
    ]
    for kwargs, error, name in cases:
        args = dict(model=model, x=x, target=1) | kwargs
        with pytest.raises(error, match=f"`{name}`"):
            toy(**args)
    seen = {}
    calls["impl"] = lambda m, x, t: seen.setdefault("target", t)
    for target in (np.int64(2), np.array([0, 2]), [0, 2], torch.tensor([0, 2], dtype=torch.int32), None):
        seen.clear()
        toy(model, x, target)
        t = seen["target"]
        assert type(t) is int or (isinstance(t, torch.Tensor) and t.dtype == torch.int64), target
    with torch.no_grad():
        assert torch.equal(t, model(x).argmax(1)), "target=None reaches the body as the predicted class"


def _misbehave(model, x, target):
    """Everything a careless method might do to a model."""
    model.train()
    model[1].weight.requires_grad_(True)
    model[1].register_forward_hook(lambda *a: None)
    model[1].register_full_backward_hook(lambda *a: None)
    with torch.no_grad():
        model[1].weight.add_(1.0)
    model(x).sum().backward()
    model[0] = nn.Identity()
    return x


@pytest.mark.parametrize("raise_at_end", [False, True])
def test_guard_restores_model(toy_exercise, raise_at_end):
    toy, calls = toy_exercise
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.5))
    model.train()
    model[1].bias.requires_grad_(False)
    before = snapshot(model)
    seen = {}

    def impl(m, x, t):
        seen["training"] = m.training
        seen["frozen"] = not any(p.requires_grad for p in m.parameters())
        _misbehave(m, x, t)
        if raise_at_end:
            raise RuntimeError("boom")
        return x

    calls["impl"] = impl
    if raise_at_end:
        with pytest.raises(RuntimeError, match="boom"):
            toy(model, torch.rand(2, 1, 2, 2), 0)
    else:
        toy(model, torch.rand(2, 1, 2, 2), 0)
    assert seen == {"training": False, "frozen": True}
    assert_unchanged(model, before)


def test_guard_on_large_models_detects_in_place_changes(monkeypatch):
    monkeypatch.setattr(exercises, "_BACKUP_LIMIT", 1)
    model = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="in place"):
        with guard_model(model):
            with torch.no_grad():
                model.weight.mul_(2)


# --------------------------------------------------------------------------- drift


def _solution_module(ex):
    return importlib.import_module(f"solutions.{ex.module}")


@pytest.mark.parametrize("ex_id", sorted(load_all()))
def test_stub_and_solution_agree(ex_id):
    ex = load_all()[ex_id]
    solution = getattr(_solution_module(ex), ex.name, None)
    assert solution is not None, f"solutions/{ex.module}.py lacks {ex.name}"
    assert solution.__doc__ is None, (
        f"solutions.{ex.module}.{ex.name} has a docstring; the stub's is the spec"
    )
    stub_sig = inspect.signature(ex.stub)
    sol_sig = inspect.signature(solution)
    assert list(stub_sig.parameters) == list(sol_sig.parameters), f"{ex_id}: parameters differ"
    for name, p in stub_sig.parameters.items():
        q = sol_sig.parameters[name]
        assert p.kind == q.kind and p.default == q.default, f"{ex_id}: parameter {name} differs"
    assert ex.stub.__doc__ and len(ex.stub.__doc__) > 200, f"{ex_id}: the stub needs a full docstring"
    src = inspect.getsource(ex.stub)
    assert "# YOUR CODE HERE" in src
    assert re.search(
        rf"raise NotImplementedError\(\s*\"exercise {re.escape(ex_id)} `{ex.name}` \(lesson {ex.lesson}\)",
        src,
    ), f"{ex_id}: the stub must raise NotImplementedError naming the exercise and lesson"


def _tested_ids() -> set[str]:
    ids = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        ids |= set(re.findall(r"mark\.exercise\(\s*\"(\d\d\.\d+)\"", path.read_text()))
    return ids


def _lesson_sources() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in lesson_notebooks(ROOT / "lessons"):  # a lesson with its appendix notebooks
        nb = json.loads(path.read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        out[lesson_key(path)[:2]] = out.get(lesson_key(path)[:2], "") + "\n" + code
    return out


@pytest.mark.parametrize("ex_id", sorted(load_all()))
def test_every_exercise_has_a_test_and_a_lesson_that_calls_it(ex_id):
    ex = load_all()[ex_id]
    assert ex_id in _tested_ids(), f"no test is marked @pytest.mark.exercise({ex_id!r})"
    lessons = _lesson_sources()
    assert ex.lesson in lessons, f"lesson {ex.lesson} is missing"
    assert re.search(rf"\b{ex.name}\(", lessons[ex.lesson]), f"lesson {ex.lesson} never calls {ex.name}"


def test_solutions_only_call_other_exercises_through_interp_lib():
    """A reference body that imports another exercise from `solutions` would bypass the
    student's own earlier answer."""
    for path in (ROOT / "solutions").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("solutions"):
                pytest.fail(f"{path.name} imports from {node.module}")


# --------------------------------------------------------------------------- stubs fail


@pytest.mark.slow
def test_every_exercise_test_fails_on_its_stub(tmp_path):
    """Run every exercise test with its own stub (all other exercises: reference bodies).

    Each must fail, and with NotImplementedError naming its own exercise: proof that
    the tests exercise the stubs. (The main run proves they pass on the solutions.)
    """
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if k != exercises.ENV_VAR}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbval",
            "-p",
            "no:xdist",
            "-o",
            "addopts=",
            "-m",
            "exercise",
            "--stub-check",
            f"--results-json={out}",
            "tests",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    records = [r for r in json.loads(out.read_text()) if r["exercise"]]
    assert records, proc.stdout[-2000:]
    reg = load_all()
    assert {r["exercise"] for r in records} == set(reg), "every exercise must have tests"
    wrong = []
    for r in records:
        ex = reg[r["exercise"]]
        if r["outcome"] == "skipped":
            continue
        own = f"exercise {ex.id} `{ex.name}`"
        if r["outcome"] != "failed" or "NotImplementedError" not in r["message"] or own not in r["message"]:
            wrong.append(f"{r['nodeid']}: {r['outcome']} {r['message'][:200]}")
    assert not wrong, "tests that do not fail on their stub:\n" + "\n".join(wrong)
    assert any(r["outcome"] == "failed" for r in records)


def test_readme_lists_every_exercise():
    """The README's lesson table is written from the registry; keep them in step."""
    readme = (ROOT / "README.md").read_text()
    for ex in load_all().values():
        entry = f"{ex.id} `{ex.name}`"
        assert (f"*{entry}*" if ex.stretch else entry) in readme, f"README lacks {entry}"
