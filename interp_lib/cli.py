"""``python -m interp_lib <command>``: the course's command line.

    lab        open the course in JupyterLab (the lessons/ folder)
    check      your progress, exercise by exercise
    execute    re-execute lessons in solutions mode and store their outputs (maintainers)
    train      reproduce the shipped model weights
    bench      benchmark lessons and methods against the reference libraries (maintainers)
    grade      grade a submission or a folder of them (instructors; interp_lib/grading.py)
    submit     zip your exercise modules for hand-in
    release    build the student copy of the course (instructors; interp_lib/release.py)
    slides     reveal.js lecture slides that work offline (interp_lib/slides.py)
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
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
        raise SystemExit(f"no lesson numbered {', '.join(sorted(missing))}; have: "
                         f"{', '.join(p.name[:2] for p in paths)}")
    return chosen


# --------------------------------------------------------------------------- lab

def cmd_lab(args: argparse.Namespace) -> int:
    """Serve JupyterLab from the repository root, opening the lessons."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT}",
           "--LabApp.default_url=/lab/tree/lessons"]
    if args.port:
        cmd.append(f"--port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines run as root
    cmd += args.extra
    return subprocess.call(cmd, cwd=ROOT)


# --------------------------------------------------------------------------- check

def run_tests(selection: list[str], solutions: str | None, extra: list[str] | None = None,
              timeout: float | None = None) -> list[dict]:
    """Run pytest on ``selection`` in a child process and return its per-test records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "results.json"
        env = dict(os.environ)
        env.pop("INTERP_LIB_SOLUTIONS", None)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
               f"--results-json={out}", "-o", "addopts=", *selection, *(extra or [])]
        if solutions is not None:
            cmd.append(f"--solutions={solutions}")
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout)
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
        needed = sorted({m.group(0) for r in stub_stops
                         for m in [re.search(r"exercise \d\d\.\d+ `\w+`", r["message"])] if m})
        return "blocked", "needs " + ", ".join(needed) + " first"
    return "failing", failed[0]["message"]


def summarise(records: list[dict]) -> dict[str, dict]:
    """Per exercise: status (passing / failing / not started / no tests), score, message."""
    from .exercises import load_all, weights

    reg = load_all(errors={})  # a module that does not import shows as failing, not as a crash
    points = weights(reg)
    summary = {}
    for ex_id, ex in reg.items():
        mine = [r for r in records if r["exercise"] == ex_id and r["outcome"] != "skipped"]
        total = sum(r["weight"] for r in mine)
        passed = sum(r["weight"] for r in mine if r["outcome"] == "passed")
        failed = [r for r in mine if r["outcome"] == "failed"]
        status, message = ("no tests", "") if not mine else exercise_status(ex, mine)
        summary[ex_id] = {
            "name": ex.name, "lesson": ex.lesson, "stretch": ex.stretch,
            "points": points[ex_id], "score": points[ex_id] * (passed / total if total else 0.0),
            "status": status, "message": message,
        }
    return summary


def cmd_check(args: argparse.Namespace) -> int:
    """Run the exercise tests on your code and print a progress table."""
    from .exercises import load_all

    broken: dict[str, str] = {}
    reg = load_all(errors=broken)
    for message in broken.values():
        print(f"cannot import {message}\n  -> its exercises cannot run until you fix it")
    print(f"checking the exercises in {pathlib.Path(__file__).resolve().parent}")
    selection = ["tests", "-m", "exercise"]
    if args.lesson:
        wanted = {n.zfill(2) for n in args.lesson}
        ids = [e.id for e in reg.values() if e.lesson in wanted]
        if not ids:
            raise SystemExit(f"no exercises in lesson(s) {', '.join(sorted(wanted))}"
                             + (" could be loaded: fix the error above first" if broken else ""))
        files = sorted(str(p.relative_to(ROOT)) for n in wanted for p in (ROOT / "tests").glob(f"test_{n}_*.py"))
        selection = [*(files or ["tests"]), "-m", "exercise", f"--exercises={','.join(ids)}"]
    print("Running the exercise tests on your code ...", flush=True)
    summary = summarise(run_tests(selection, solutions=None))
    if args.lesson:
        summary = {k: v for k, v in summary.items() if v["lesson"] in wanted}
    print(format_table(summary))
    return 0


def format_table(summary: dict[str, dict]) -> str:
    marks = {"passing": "ok", "failing": "FAIL", "not started": "--", "blocked": "wait", "no tests": "?",
             "rejected": "NO", "not graded": "?"}
    rows = [f"{'id':6} {'exercise':30} {'status':12} {'points':>13}  note"]
    core = bonus = core_max = bonus_max = 0.0
    for ex_id, s in summary.items():
        name = s["name"] + (" (stretch)" if s["stretch"] else "")
        rows.append(f"{ex_id:6} {name:30} {marks.get(s['status'], '') + ' ' + s['status']:12} "
                    f"{s['score']:6.1f}/{s['points']:5.1f}  {s['message'][:90]}")
        if s["stretch"]:
            bonus, bonus_max = bonus + s["score"], bonus_max + s["points"]
        else:
            core, core_max = core + s["score"], core_max + s["points"]
    rows.append(f"total {core:.1f}/{core_max:.1f} points (the whole course is worth 100)"
                + (f" + bonus {bonus:.1f}/{bonus_max:.1f}" if bonus_max else ""))
    return "\n".join(rows)


# --------------------------------------------------------------------------- execute

def clean_notebook(nb) -> None:
    """Strip machine-specific metadata so stored notebooks diff cleanly."""
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        **{k: v for k, v in nb.metadata.items() if k in ("title", "interp_course")},
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("needs_background", None)


def execute_notebook(path: pathlib.Path, timeout: int = 600) -> float:
    """Execute one lesson in place in solutions mode (one thread); returns seconds."""
    import time

    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    os.environ.update({"INTERP_LIB_SOLUTIONS": "all", "INTERP_LIB_THREADS": "1",
                       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    start = time.perf_counter()
    try:
        ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(
            nb, {"metadata": {"path": str(path.parent)}})
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    seconds = time.perf_counter() - start
    clean_notebook(nb)
    nbformat.write(nb, path)
    return seconds


def cmd_execute(args: argparse.Namespace) -> int:
    for path in lesson_paths(args.lessons):
        seconds = execute_notebook(path)
        print(f"{path.name}: executed and stored ({seconds:.1f} s)")
    return 0


# --------------------------------------------------------------------------- train / bench

def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    train(args.names)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args)


# --------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m interp_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lab", help="open the course in JupyterLab")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_lab)
    p = sub.add_parser("check", help="your progress, exercise by exercise")
    p.add_argument("lesson", nargs="*", help="lesson numbers (default: all)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("execute", help="re-execute lessons (solutions mode) and store outputs")
    p.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    p.set_defaults(func=cmd_execute)
    p = sub.add_parser("train", help="reproduce the shipped model weights")
    p.add_argument("names", nargs="*", help="model names (default: all)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("bench", help="benchmark lessons and methods (writes bench/results.json)")
    p.add_argument("--runs", type=int, default=5, help="repetitions per measurement (median)")
    p.add_argument("--only", nargs="*", default=None, help="only rows whose name contains one of these")
    p.add_argument("--no-lessons", action="store_true", help="skip the lesson timings")
    p.add_argument("--readme", action="store_true", help="also rewrite README.md's Performance section")
    p.set_defaults(func=cmd_bench)
    from . import grading, release  # grade, submit (interp_lib/grading.py); release
    grading.add_commands(sub)
    release.add_commands(sub)
    from . import slides  # lecture slides (interp_lib/slides.py)
    slides.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.extra = unknown  # lab passes them on to JupyterLab
    return args.func(args) or 0
