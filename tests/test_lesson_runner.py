"""The lessons' runner (interp_lib.lesson): a lesson runs to the end past unwritten exercises.

In-process tests drive an IPython shell cell by cell; the notebook tests run lesson 09
(the quickest, with figures and a widget) in a kernel through nbclient, once with the
stubs (every cell runs, skipped cells print their needs-line and the reference output)
and once in solutions mode (the stored outputs, exactly).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from interp_lib import lesson
from interp_lib.course import common

ROOT = common.ROOT
LESSON = ROOT / "lessons" / "09_deep_taylor.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


# --------------------------------------------------------------------------- in process


@pytest.fixture
def shell(monkeypatch):
    """A fresh IPython shell with the runner, student mode (all stubs) by default."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.delenv("INTERP_LIB_SOLUTIONS", raising=False)
    sh = InteractiveShell.instance()
    lesson.load_ipython_extension(sh)
    sh.run_cell("import torch\nfrom interp_lib import attacks\nfrom interp_lib.models import load_model")
    sh.run_cell("model = load_model('digits')\nx = torch.rand(2, 1, 28, 28)\ny = torch.tensor([1, 2])")
    try:
        yield sh
    finally:
        lesson.unload_ipython_extension(sh)
        InteractiveShell.clear_instance()


def test_unwritten_exercise_skips_the_rest_of_the_cell(shell, capsys):
    result = shell.run_cell("a = 1\ng = attacks.input_gradient(model, x, y)\nb = 2")
    out = capsys.readouterr().out
    assert result.success and "needs 02.1 input_gradient — lesson 02" in out
    assert shell.user_ns["a"] == 1 and "b" not in shell.user_ns
    runner = shell.user_ns[lesson.NAME]
    assert set(runner.missing) == {"g", "b"}  # a ran before the stub stopped the cell


def test_data_flow_names_the_exercise_a_later_cell_needs(shell, capsys):
    shell.run_cell("g = attacks.input_gradient(model, x, y)")
    capsys.readouterr()
    result = shell.run_cell("h = g * 2\nprint('ran')")
    out = capsys.readouterr().out
    assert result.success and "needs 02.1 input_gradient" in out and "ran" not in out
    assert "h" in shell.user_ns[lesson.NAME].missing
    # a cell that assigns the name first does not depend on the skipped cell
    result = shell.run_cell("g = 1\nprint('fresh', g)")
    assert result.success and "fresh 1" in capsys.readouterr().out
    assert "g" not in shell.user_ns[lesson.NAME].missing  # assigned again: available
    # a function whose body reads a missing name is as missing as the name
    shell.run_cell("def show():\n    return h\n")
    assert "show" in shell.user_ns[lesson.NAME].missing
    # a parameter of the same name is not the global one
    result = shell.run_cell("def double(h):\n    return 2 * h\nprint(double(3))")
    assert result.success and "6" in capsys.readouterr().out


def test_a_name_bound_before_it_is_read_does_not_depend_on_a_skipped_cell(shell, capsys):
    """Only a read of the *skipped* value skips: loop variables, ``with ... as``, names a
    statement assigns before reading them, comprehension variables, parameters."""
    shell.run_cell("for name, f in [('g', attacks.input_gradient)]:\n    g = f(model, x, y)")
    capsys.readouterr()
    assert {"name", "f", "g"} <= set(shell.user_ns[lesson.NAME].missing)
    cells = {
        "for name in ['a', 'b']:\n    print('loop', name)": "loop b",
        "for f in [len]:\n    print('nested', [f(s) for s in ['ab']])": "nested [2]",
        "import contextlib\nwith contextlib.nullcontext(5) as g:\n    print('with', g)": "with 5",
        "print('comprehension', [name for name in 'xy'])": "comprehension ['x', 'y']",
        "print('lambda', (lambda name: name)(3))": "lambda 3",
    }
    for cell, expected in cells.items():
        result = shell.run_cell(cell)
        out = capsys.readouterr().out
        assert result.success and "needs 02.1" not in out and expected in out, (cell, out)
    # still skipped: a read of the skipped value before the cell assigns it
    shell.run_cell("h = attacks.input_gradient(model, x, y)")
    capsys.readouterr()
    for cell in (
        "h = h + 1",
        "h += 1",
        "for k in h:\n    pass",
        "print([v for v in h])",
        "def show():\n    return h",
    ):
        result = shell.run_cell(cell)
        assert result.success and "needs 02.1 input_gradient" in capsys.readouterr().out, cell


def test_blocked_by_an_unwritten_exercise_that_a_written_one_calls(shell, capsys, monkeypatch):
    monkeypatch.setenv("INTERP_LIB_SOLUTIONS", "05.2")  # integrated_gradients written, its path not
    shell.run_cell("from interp_lib import integrated_gradients as ig")
    result = shell.run_cell("a = ig.integrated_gradients(model, x, y, steps=4)")
    out = capsys.readouterr().out
    assert result.success and "blocked by 05.1 interpolation_path — lesson 05 (05.2 uses it)" in out


def test_the_last_expression_is_still_displayed(shell, capsys):
    result = shell.run_cell("a = 20\na + 1")
    assert result.success and result.result == 21
    result = shell.run_cell("attacks.input_gradient(model, x, y)")
    assert result.success and result.result is None
    assert "needs 02.1 input_gradient" in capsys.readouterr().out


def test_other_errors_are_errors(shell):
    result = shell.run_cell("raise NotImplementedError('my own')")
    assert isinstance(result.error_in_exec, NotImplementedError)
    result = shell.run_cell("1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    result = shell.run_cell("attacks.input_gradient(model, x.double(), y)")  # the wrapper's check
    assert isinstance(result.error_in_exec, TypeError)


def test_course_frames_are_hidden_from_a_traceback(shell, capsys, monkeypatch):
    from interp_lib import exercises

    def buggy(model, x, target):
        return x[99]  # an IndexError in the student's code

    ex = exercises.get("02.1")
    monkeypatch.setattr(ex, "stub", buggy)
    lesson.unload_ipython_extension(shell)  # plain IPython: the traceback as a student sees it
    shell.run_cell("attacks.input_gradient(model, x, y)")
    captured = capsys.readouterr()
    text = re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)
    assert "IndexError" in text and "x[99]" in text
    assert "guard_model" not in text and "def wrapper" not in text and "return body(" not in text
    assert "skipping hidden" in text


def test_solutions_mode_skips_nothing(shell, capsys, monkeypatch):
    monkeypatch.setenv("INTERP_LIB_SOLUTIONS", "all")
    result = shell.run_cell("g = attacks.input_gradient(model, x, y)\ng.shape")
    assert result.success and tuple(result.result) == (2, 1, 28, 28)
    assert "needs" not in capsys.readouterr().out


def test_reference_entries_are_keyed_by_cell_id_and_source():
    nb = json.loads(LESSON.read_text(encoding="utf-8"))
    entries = lesson.reference_entries(nb)
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c["outputs"])
    source = "".join(cell["source"])
    assert entries[cell["id"]]["source"] == lesson.source_key(source)
    assert lesson.reference_outputs(None, source) == entries[cell["id"]]["outputs"]
    assert lesson.reference_outputs(cell["id"], source + "\n# edited") == entries[cell["id"]]["outputs"]
    shown = [o for e in entries.values() for o in e["outputs"]]
    assert all(WIDGET not in o.get("data", {}) for o in shown)  # widget views need a kernel


# --------------------------------------------------------------------------- a lesson in a kernel


def _run(nb, solutions: str | None):
    import nbclient

    env = dict(os.environ, INTERP_LIB_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("INTERP_LIB_SOLUTIONS", None)
    if solutions:
        env["INTERP_LIB_SOLUTIONS"] = solutions
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(LESSON.parent)}},
    )
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _summary(outputs) -> list:
    """What nbval compares: text (consecutive stream chunks joined, as nbval does), and which
    kinds of data (images and model ids vary)."""
    rows = []
    for out in outputs:
        if out["output_type"] == "stream":
            if rows and rows[-1][0] == out["name"]:  # one stream, however the kernel chunked it
                rows[-1] = (out["name"], rows[-1][1] + out["text"])
            else:
                rows.append((out["name"], out["text"]))
        else:
            data = out.get("data", {})
            rows.append(
                (out["output_type"], sorted(data), data.get("text/plain") if WIDGET not in data else None)
            )
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("path", common.lesson_paths(), ids=lambda p: lesson.lesson_key(p))
def test_a_lesson_runs_to_the_end_with_the_stubs(path):
    """Every lesson and appendix, as a student opens it before writing anything: Run All
    reaches the last cell, no cell fails, every skipped cell says which exercise it needs
    and shows the reference output, and nothing the stored notebook shows goes missing."""
    import nbformat

    stored = nbformat.read(path, as_version=4)
    nb = _run(nbformat.read(path, as_version=4), solutions=None)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    stored_code = [c for c in stored.cells if c.cell_type == "code"]
    needs = re.compile(r"^(needs|blocked by) \d\d\.\d+ \w+ — lesson \d\d", re.M)
    skipped = 0
    for mine, ref in zip(code, stored_code):
        text = "".join(o.get("text", "") for o in mine.outputs if o.output_type == "stream")
        images = sum("image/png" in o.get("data", {}) for o in ref.outputs)
        assert sum("image/png" in o.get("data", {}) for o in mine.outputs) >= images, mine.source[:60]
        if needs.match(text):
            skipped += 1  # the reference output follows, where the stored cell has one
            assert (lesson.REFERENCE_NOTE in text) == bool(ref.outputs), mine.source[:60]
        else:
            assert not needs.search(text), f"a needs-line in the middle: {mine.source[:60]}"
            assert bool(mine.outputs) == bool(ref.outputs), f"outputs erased: {mine.source[:60]}"
    assert skipped, "no cell needed an exercise"


@pytest.mark.slow
def test_a_lesson_in_solutions_mode_gives_the_stored_outputs():
    import nbformat

    stored = nbformat.read(LESSON, as_version=4)
    nb = _run(nbformat.read(LESSON, as_version=4), solutions="all")
    for mine, ref in zip(nb.cells, stored.cells):
        if ref.cell_type == "code":
            assert _summary(mine.outputs) == _summary(ref.outputs), ref.source[:60]
