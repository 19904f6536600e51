"""Helpers shared by the course's commands (check, grade, submit, release, slides, bench).

This module sits below every command: it imports none of them, so each command imports
what it needs from here and nothing imports back up.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"


def lesson_paths(numbers: list[str] | None = None) -> list[pathlib.Path]:
    """Lesson notebooks, all or those whose number is given (``"1"`` or ``"01"``)."""
    paths = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    if not numbers:
        return paths
    wanted = {n.zfill(2) for n in numbers}
    chosen = [p for p in paths if p.name[:2] in wanted]
    missing = wanted - {p.name[:2] for p in chosen}
    if missing:
        raise SystemExit(
            f"no lesson numbered {', '.join(sorted(missing))}; have: {', '.join(p.name[:2] for p in paths)}"
        )
    return chosen


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


def exercise_status(ex, records: list[dict]) -> tuple[str, str]:
    """``(status, message)`` of one exercise from its test records (none skipped).

    passing: every test passed. not started: a test stopped at the exercise's own stub and
    none passed. blocked: the failures all stop at *other* exercises' stubs (their ids are
    named). failing: anything else, with the first failure's message.
    """
    failed = [r for r in records if r["outcome"] != "passed"]
    if not failed:
        return "passing", ""
    own = f"exercise {ex.id} `{ex.name}`"
    stub_stops = [r for r in failed if "NotImplementedError" in r["message"] and "exercise " in r["message"]]
    if any(own in r["message"] for r in stub_stops) and len(failed) == len(records):
        return "not started", f"write it in {ex.path}"
    if len(stub_stops) == len(failed):
        needed = sorted(
            {
                m.group(0)
                for r in stub_stops
                for m in [re.search(r"exercise \d\d\.\d+ `\w+`", r["message"])]
                if m
            }
        )
        return "blocked", "needs " + ", ".join(needed) + " first"
    return "failing", failed[0]["message"]


def summarise(records: list[dict]) -> dict[str, dict]:
    """Per exercise: status (passing / failing / not started / no tests), score, message."""
    from ..exercises import load_all, weights

    reg = load_all(errors={})  # a module that does not import shows as failing, not as a crash
    points = weights(reg)
    summary = {}
    for ex_id, ex in reg.items():
        mine = [r for r in records if r["exercise"] == ex_id and r["outcome"] != "skipped"]
        total = sum(r["weight"] for r in mine)
        passed = sum(r["weight"] for r in mine if r["outcome"] == "passed")
        status, message = ("no tests", "") if not mine else exercise_status(ex, mine)
        summary[ex_id] = {
            "name": ex.name,
            "lesson": ex.lesson,
            "stretch": ex.stretch,
            "points": points[ex_id],
            "score": points[ex_id] * (passed / total if total else 0.0),
            "status": status,
            "message": message,
        }
    return summary


def format_table(summary: dict[str, dict]) -> str:
    marks = {
        "passing": "ok",
        "failing": "FAIL",
        "not started": "--",
        "blocked": "wait",
        "no tests": "?",
        "rejected": "NO",
        "not graded": "?",
    }
    rows = [f"{'id':6} {'exercise':30} {'status':12} {'points':>13}  note"]
    core = bonus = core_max = bonus_max = 0.0
    for ex_id, s in summary.items():
        name = s["name"] + (" (stretch)" if s["stretch"] else "")
        rows.append(
            f"{ex_id:6} {name:30} {marks.get(s['status'], '') + ' ' + s['status']:12} "
            f"{s['score']:6.1f}/{s['points']:5.1f}  {s['message'][:90]}"
        )
        if s["stretch"]:
            bonus, bonus_max = bonus + s["score"], bonus_max + s["points"]
        else:
            core, core_max = core + s["score"], core_max + s["points"]
    rows.append(
        f"total {core:.1f}/{core_max:.1f} points (the whole course is worth 100)"
        + (f" + bonus {bonus:.1f}/{bonus_max:.1f}" if bonus_max else "")
    )
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
        ExecutePreprocessor(timeout=timeout, kernel_name="python3", store_widget_state=True).preprocess(
            nb, {"metadata": {"path": str(path.parent)}}
        )
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    seconds = time.perf_counter() - start
    clean_notebook(nb)
    nbformat.write(nb, path)
    return seconds
