"""Helpers shared by the course's commands (check, grade, submit, release, slides, bench).

This module sits below every command: it imports none of them, so each command imports
what it needs from here and nothing imports back up.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from ..lesson import lesson_key, lesson_notebooks

ROOT = pathlib.Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"


def lesson_paths(numbers: list[str] | None = None) -> list[pathlib.Path]:
    """Lesson notebooks, all or those whose number is given (``"1"`` or ``"01"``: the lesson
    with its appendix notebooks ``01b_...``; ``"06b"``: that appendix alone)."""
    paths = lesson_notebooks(LESSONS)
    if not numbers:
        return paths
    wanted = {n.zfill(2) if n.isdigit() else n.zfill(3) for n in numbers}
    chosen = [p for p in paths if lesson_key(p) in wanted or lesson_key(p)[:2] in wanted]
    found = {lesson_key(p) for p in chosen} | {lesson_key(p)[:2] for p in chosen}
    missing = wanted - found
    if missing:
        have = ", ".join(lesson_key(p) for p in paths)
        raise SystemExit(f"no lesson numbered {', '.join(sorted(missing))}; have: {have}")
    return chosen


# Message prefix of a test the grader could not send to its sandbox (grading_remote).
NOT_TRANSFERABLE = "GraderCannotTransfer"
STUB_STOP = re.compile(r"NotImplementedError: exercise (\d\d\.\d+) `(\w+)`")


def exercise_test_files(root: pathlib.Path = ROOT, lessons: set[str] | None = None) -> list[str]:
    """The exercise test files of ``lessons`` (all when None), relative to ``root``:
    ``tests/test_LL_*.py`` and instructors' hidden tests in ``tests/hidden/test_LL_*.py``
    (absent in the student release). ``check`` and ``grade`` run the same files."""
    paths = [
        *sorted((root / "tests").glob("test_[0-9][0-9]_*.py")),
        *sorted((root / "tests" / "hidden").glob("test_[0-9][0-9]_*.py")),
    ]
    return [str(p.relative_to(root)) for p in paths if lessons is None or p.name[5:7] in lessons]


def run_tests(
    selection: list[str], solutions: str | None, extra: list[str] | None = None, timeout: float | None = None
) -> list[dict]:
    """Run pytest on ``selection`` in a child process and return its per-test records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "results.json"
        env = dict(os.environ)
        env.pop("INTERP_LIB_SOLUTIONS", None)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbval",
            f"--results-json={out}",
            "-o",
            "addopts=",
            *selection,
            *(extra or []),
        ]
        if solutions is not None:
            cmd.append(f"--solutions={solutions}")
        subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
        )
        return json.loads(out.read_text()) if out.exists() else []


# --------------------------------------------------------------------------- written or not


def is_stub(node: ast.FunctionDef) -> bool:
    """Is ``node``'s body (after its docstring) exactly ``raise NotImplementedError(...)``?

    Comments do not count; any statement before the ``raise`` (a student who started
    writing) makes it not a stub."""
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return (
        len(body) == 1
        and isinstance(body[0], ast.Raise)
        and isinstance(body[0].exc, (ast.Call, ast.Name))
        and getattr(getattr(body[0].exc, "func", body[0].exc), "id", "") == "NotImplementedError"
    )


def unwritten(reg: dict, root: pathlib.Path = ROOT) -> set[str]:
    """Ids of the exercises whose function in ``root/interp_lib/<topic>.py`` is still the
    stub and not switched to its reference body: their tests need not run."""
    from ..exercises import solutions_selected

    out = set()
    for module in sorted({ex.module for ex in reg.values()}):
        try:
            tree = ast.parse((root / "interp_lib" / f"{module}.py").read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue  # reported as a module that cannot be imported
        stubs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and is_stub(n)}
        out |= {
            i
            for i, ex in reg.items()
            if ex.module == module and ex.name in stubs and not solutions_selected(ex)
        }
    return out


_DECLARED = re.compile(r'@exercise\(\s*"(\d\d\.\d+)"\s*,\s*points=([0-9.]+)(.*?)\ndef (\w+)', re.S)


def unimported_exercises(broken: dict[str, str], root: pathlib.Path = ROOT) -> dict[str, dict]:
    """The exercises declared in modules that do not import (``broken``: module ->
    message from ``load_all(errors=...)``), read from their text: id -> summary entry."""
    out = {}
    for module, message in broken.items():
        text = (root / "interp_lib" / f"{module}.py").read_text(encoding="utf-8", errors="replace")
        for ex_id, points, between, name in _DECLARED.findall(text):
            out[ex_id] = {
                "name": name,
                "module": module,
                "lesson": ex_id[:2],
                "stretch": "stretch=True" in between,
                "points": float(points),
                "score": 0.0,
                "status": "failing",
                "message": f"cannot import {message}",
            }
    return out


# --------------------------------------------------------------------------- scores


def counted(records: list[dict]) -> list[dict]:
    """The records that count towards a score, in ``check`` and ``grade`` alike: not
    skipped, and not a test the grader cannot send to its sandbox (``grade`` reports
    those as NOT COUNTED; ``check`` finds them with the same pickling test)."""
    return [
        r
        for r in records
        if r["outcome"] != "skipped"
        and r.get("transferable", True) is not False
        and not str(r.get("message", "")).startswith(NOT_TRANSFERABLE)
    ]


def share(records: list[dict], of: list[dict]) -> float:
    """Weight of the passed ``records`` as a fraction of the weight of ``of``."""
    total = sum(r["weight"] for r in of)
    return sum(r["weight"] for r in records if r["outcome"] == "passed") / total if total else 0.0


def _test_name(record: dict) -> str:
    return record["nodeid"].split("::")[-1]


def exercise_status(ex, records: list[dict]) -> tuple[str, str]:
    """``(status, message)`` of one exercise from its test records (none skipped).

    passing: every test passed. not started: every test stopped at the exercise's own
    stub. failing: a test failed in the exercise's own code; the message is the first
    such failure (a stop at another exercise's stub is named after it). blocked: every
    failure stops at *other* exercises' stubs, named as "blocked by LL.N `name`".
    """
    failed = [r for r in records if r["outcome"] != "passed"]
    if not failed:
        return "passing", ""
    stops = {id(r): m for r in failed if (m := STUB_STOP.search(r["message"]))}
    own_stub = [r for r in failed if id(r) in stops and stops[id(r)].group(1) == ex.id]
    own = [r for r in failed if id(r) not in stops]
    blockers = sorted({f"{m.group(1)} `{m.group(2)}`" for m in stops.values() if m.group(1) != ex.id})
    blocked = f"blocked by {', '.join(blockers)}" if blockers else ""
    if own_stub and not own and len(failed) == len(records):
        return "not started", f"write it in {ex.path}"
    if own or own_stub:
        return "failing", (own or own_stub)[0]["message"] + (f" (also {blocked})" if blocked else "")
    return "blocked", f"{blocked}: write it first"


def failures(ex, records: list[dict]) -> list[str]:
    """Every failing test of ``ex``, its own failures first, then those blocked by
    another exercise's stub (``check -v``)."""
    own, blocked = [], []
    for r in records:
        if r["outcome"] == "passed":
            continue
        m = STUB_STOP.search(r["message"])
        if m and m.group(1) != ex.id:
            blocked.append(f"blocked {_test_name(r)}: by {m.group(1)} `{m.group(2)}`")
        else:
            own.append(f"FAIL {_test_name(r)} (weight {r['weight']:g}): {r['message']}")
    return own + blocked


def grade_notes(mine: list[dict], message: str) -> list[str]:
    """Why ``grade`` may score this exercise differently from these local records."""
    notes = []
    left_out = [r for r in mine if r["outcome"] != "skipped" and r not in counted(mine)]
    if left_out:
        notes.append(
            f"not counted, as in grade: {', '.join(map(_test_name, left_out))} (its arguments "
            "cannot be sent to the grader's sandbox)"
        )
    skipped_ref = [r for r in mine if r["outcome"] == "skipped" and r.get("reference")]
    if skipped_ref:
        notes.append(
            f"grade also counts {len(skipped_ref)} cross-check(s) against a reference library "
            f"(weight {sum(r['weight'] for r in skipped_ref):g}), skipped here: "
            f"{', '.join(sorted({_test_name(r).split('[')[0] for r in skipped_ref}))}"
        )
    if "blocked by" in message:
        notes.append("grade uses a correct version of the exercises it is blocked by")
    return notes


def summarise(
    records: list[dict], skip: set[str] | frozenset = frozenset(), broken: dict[str, str] | None = None
) -> dict[str, dict]:
    """Per exercise: status (passing / failing / not started / blocked / no tests), score
    (the same rule as ``grade``: :func:`counted` records, by weight), message, every
    failure (``failures``) and why ``grade`` may differ (``notes``). Exercises in
    ``skip`` are unwritten stubs whose tests did not run: not started. ``broken``
    (module -> import error) adds the exercises of modules that do not import."""
    from types import SimpleNamespace

    from ..exercises import load_all, weights

    reg = load_all(errors={})  # a module that does not import shows as failing, not as a crash
    lost = unimported_exercises(broken or {})
    # points normalised over every declared exercise, importable or not
    points = weights(
        {**reg, **{i: SimpleNamespace(points=s["points"], stretch=s["stretch"]) for i, s in lost.items()}}
    )
    summary = {}
    for ex_id, ex in reg.items():
        mine = [r for r in records if r["exercise"] == ex_id]
        scored = counted(mine)
        if ex_id in skip:
            status, message = "not started", f"write it in {ex.path}"
        elif not scored:
            status, message = "no tests", ""
        else:
            status, message = exercise_status(ex, scored)
        summary[ex_id] = {
            "name": ex.name,
            "lesson": ex.lesson,
            "stretch": ex.stretch,
            "points": points[ex_id],
            "score": points[ex_id] * share(scored, scored),
            "status": status,
            "message": message,
            "tests": len(mine),
            "failures": failures(ex, scored),
            "notes": grade_notes(mine, message),
        }
    for ex_id, s in lost.items():
        summary[ex_id] = {**s, "points": points[ex_id], "tests": 0, "failures": [], "notes": []}
    return dict(sorted(summary.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))))


def progress(lessons: list[str] | None = None, markers: str = "exercise") -> dict[str, dict]:
    """What ``check`` reports: the tests of the exercises written so far (and of those
    switched to their reference bodies) run on this checkout; an unwritten stub is "not
    started" without running anything; a module that does not import is reported with
    its error. ``lessons`` restricts to those lessons' exercises."""
    from ..exercises import ENV_VAR, load_all

    broken: dict[str, str] = {}
    reg = load_all(errors=broken)
    wanted = {n.zfill(2) for n in lessons} if lessons else None
    ids = [i for i, ex in reg.items() if wanted is None or ex.lesson in wanted]
    skip = unwritten(reg) & set(ids)
    run = [i for i in ids if i not in skip]
    records: list[dict] = []
    if run:
        files = exercise_test_files(ROOT, {i[:2] for i in run})
        records = run_tests(
            [*files, "-m", markers, f"--exercises={','.join(run)}"], solutions=os.environ.get(ENV_VAR) or None
        )
    summary = summarise(records, skip, broken)
    if wanted is not None:
        summary = {k: v for k, v in summary.items() if v["lesson"] in wanted}
    return summary


MARKS = {
    "passing": "ok",
    "failing": "FAIL",
    "not started": "--",
    "blocked": "wait",
    "no tests": "?",
    "rejected": "NO",
    "not graded": "?",
}


def format_table(summary: dict[str, dict], verbose: bool = False) -> str:
    """The progress table; ``verbose`` adds every failing test under its exercise and
    why ``grade`` may score an exercise differently."""
    rows = [f"{'id':6} {'exercise':30} {'status':12} {'points':>13}  note"]
    core = bonus = core_max = bonus_max = 0.0
    differ = 0
    for ex_id, s in summary.items():
        name = s["name"] + (" (stretch)" if s["stretch"] else "")
        note = s["message"] if verbose else s["message"][:90]
        rows.append(
            f"{ex_id:6} {name:30} {MARKS.get(s['status'], '') + ' ' + s['status']:12} "
            f"{s['score']:6.1f}/{s['points']:5.1f}  {note}"
        )
        if verbose:
            rows += [f"{'':7}{line}" for line in s.get("failures", [])]
            rows += [f"{'':7}note: {line}" for line in s.get("notes", [])]
        differ += bool(s.get("notes"))
        if s["stretch"]:
            bonus, bonus_max = bonus + s["score"], bonus_max + s["points"]
        else:
            core, core_max = core + s["score"], core_max + s["points"]
    rows.append(
        f"total {core:.1f}/{core_max:.1f} points (the whole course is worth 100)"
        + (f" + bonus {bonus:.1f}/{bonus_max:.1f}" if bonus_max else "")
    )
    if differ and not verbose:
        rows.append(f"grade may score {differ} exercise(s) differently: `check -v` says why")
    return "\n".join(rows)


def clean_notebook(nb) -> None:
    """Strip machine-specific metadata so stored notebooks diff cleanly (the widgets'
    saved state stays: JupyterLab renders stored widgets from it before any kernel runs)."""
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        **{k: v for k, v in nb.metadata.items() if k in ("title", "interp_course", "widgets")},
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("needs_background", None)


def execute_notebook(path: pathlib.Path, timeout: int = 600) -> float:
    """Execute one lesson in place in solutions mode (one thread); returns seconds.

    The widgets' state is saved in the notebook (so they render on opening it) and
    progress bars are off (a stored bar would show frozen at 0 %)."""
    import time

    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    os.environ.update(
        {
            "INTERP_LIB_SOLUTIONS": "all",
            "INTERP_LIB_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "TQDM_DISABLE": "1",
        }
    )
    start = time.perf_counter()
    try:
        # the kernel is killed once the last cell has answered: its graceful shutdown (torch's
        # and matplotlib's exit handlers) takes one to two seconds and is no part of the lesson
        ExecutePreprocessor(
            timeout=timeout, kernel_name="python3", store_widget_state=True, shutdown_kernel="immediate"
        ).preprocess(nb, {"metadata": {"path": str(path.parent)}})
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    seconds = time.perf_counter() - start
    clean_notebook(nb)
    nbformat.write(nb, path)
    return seconds
