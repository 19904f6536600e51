"""The benchmark: ``python -m interp_lib bench`` (maintainers; not part of ``make test``).

Two kinds of measurement, written to ``bench/results.json`` and printed as a table:

* **lessons** - wall-clock time and peak memory (resident set of the kernel) of
  executing each lesson top to bottom in solutions mode, one thread (from starting its
  kernel to the last cell's answer, as ``execute`` runs it: the kernel is then killed);
* **methods** - rows defined in ``bench/rows_*.py``. Each file has a function
  ``rows()`` returning :class:`Row` objects: our method and the reference library's
  (or the physical limit, e.g. the forward and backward passes a method must make) on
  the same work. Both are timed interleaved, ``--runs`` times (median), in one process.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from .common import ROOT

BENCH_DIR = ROOT / "bench"
RESULTS = BENCH_DIR / "results.json"

__all__ = ["Row", "scratch_dir", "time_call", "run_rows", "run_lessons", "main"]


@dataclasses.dataclass
class Row:
    """One comparison: ``ours()`` against ``reference()`` on the same work."""

    name: str  # e.g. "label issues (digits, 1797 x 10)"
    ours: Callable[[], object]
    reference: Callable[[], object]
    against: str  # e.g. "cleanlab 2.9" or "limit: 64 forward+backward"
    goal: float | None = None  # the ratio ours/reference we aim at (<=)
    lesson: str = ""
    runs: int | None = None  # repetitions for this row (default: --runs); long rows use 1
    warmup: bool = True  # run both once before timing


def scratch_dir(prefix: str) -> pathlib.Path:
    """A new temporary folder for a row file's fixtures, removed when the benchmark exits."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def time_call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _discover() -> list[Row]:
    rows: list[Row] = []
    for path in sorted(BENCH_DIR.glob("rows_*.py")):
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.rows())
    return rows


def run_rows(runs: int = 5, only: list[str] | None = None) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    os.environ["INTERP_LIB_SOLUTIONS"] = "all"
    out = []
    for row in _discover():
        if only and not any(o in row.name for o in only):
            continue
        if row.warmup:
            row.ours(), row.reference()  # warm-up (imports, caches)
        ours, ref = [], []
        n_runs = row.runs or runs
        for _ in range(max(n_runs, 1)):
            ours.append(time_call(row.ours))
            ref.append(time_call(row.reference))
        t_ours, t_ref = statistics.median(ours), statistics.median(ref)
        result = {
            "name": row.name,
            "lesson": row.lesson,
            "against": row.against,
            "ours_s": round(t_ours, 5),
            "reference_s": round(t_ref, 5),
            "ratio": round(t_ours / t_ref, 3),
            "goal": row.goal,
            "runs": n_runs,
        }
        result["met"] = None if row.goal is None else result["ratio"] <= row.goal
        print(
            f"  {row.name:52} {t_ours * 1e3:9.1f} ms vs {t_ref * 1e3:9.1f} ms  "
            f"x{result['ratio']:.2f}  ({row.against})",
            flush=True,
        )
        out.append(result)
    return out


_LESSON_RUNNER = """
import json, resource, sys, time
from interp_lib.course.common import execute_notebook
import pathlib, shutil, tempfile
src = pathlib.Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    dst = pathlib.Path(tmp) / src.name
    shutil.copy(src, dst)
    for extra in src.parent.iterdir():
        if extra.suffix != ".ipynb" and extra.is_file():
            shutil.copy(extra, pathlib.Path(tmp) / extra.name)
    seconds = execute_notebook(dst)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


#: every lesson (and appendix) runs top to bottom within this on two CPU cores (issue #14)
LESSON_GOAL_S = 20


def run_lessons(numbers: list[str] | None = None) -> list[dict]:
    from .common import lesson_paths

    out = []
    for path in lesson_paths(numbers):
        proc = subprocess.run(
            [sys.executable, "-c", _LESSON_RUNNER, str(path)], cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0:
            print(f"  {path.name}: FAILED\n{proc.stderr[-2000:]}")
            out.append({"lesson": path.name, "error": proc.stderr[-2000:]})
            continue
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        row = {
            "lesson": path.name,
            "seconds": round(data["seconds"], 2),
            "peak_mb": round(data["peak_mb"], 1),
            "goal_s": LESSON_GOAL_S,
            "met": data["seconds"] <= LESSON_GOAL_S,
        }
        print(f"  {path.name:40} {row['seconds']:7.1f} s  {row['peak_mb']:7.0f} MB peak", flush=True)
        out.append(row)
    return out


def machine() -> dict:
    import torch

    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": 1,
    }


README = ROOT / "README.md"
_BEGIN, _END = "<!-- performance:begin -->", "<!-- performance:end -->"


def readme_section(result: dict) -> str:
    """The README's "Performance" section, generated from a results dict."""
    m = result["machine"]
    lines = [
        _BEGIN,
        "",
        f"Measured by `python -m interp_lib bench` on {m['date']}: {m['cores']} CPU cores "
        f"({m['cpu']}), one torch thread, Python {m['python']}, torch {m['torch']}. "
        "Ratios are medians of repeated runs, ours divided by the reference on the same work "
        "(below 1: we are faster).",
        "",
    ]
    if result.get("lessons"):
        lines += ["| lesson | seconds | goal | peak memory (MB) |", "|---|---:|---:|---:|"]
        for row in result["lessons"]:
            if "seconds" in row:
                mark = "✓" if row["seconds"] <= row.get("goal_s", LESSON_GOAL_S) else "✗"
                goal = f"≤ {row.get('goal_s', LESSON_GOAL_S)} {mark}"
                lines.append(f"| {row['lesson']} | {row['seconds']:.1f} | {goal} | {row['peak_mb']:.0f} |")
            else:
                lines.append(f"| {row['lesson']} | failed | | |")
        if "course_seconds" in result:
            lines.append(f"| **whole course** | **{result['course_seconds']:.1f}** | | |")
        lines += [
            "",
            "Each lesson once, alone, in a fresh kernel: from the kernel's start to the last cell's "
            "answer. On a shared 2-core VM one lesson's time varies by up to 20 % from run to run.",
            "",
        ]
    if result.get("methods"):
        lines += [
            "| method | against | ours (ms) | reference (ms) | ratio | goal |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in result["methods"]:
            goal = "" if row["goal"] is None else f"≤ {row['goal']}" + (" ✓" if row["met"] else " ✗")
            lines.append(
                f"| {row['name']} | {row['against']} | {row['ours_s'] * 1e3:.1f} | "
                f"{row['reference_s'] * 1e3:.1f} | {row['ratio']:.2f} | {goal} |"
            )
        lines.append("")
    lines.append(_END)
    return "\n".join(lines)


def update_readme(result: dict) -> None:
    """Replace the section between the performance markers in README.md (or append it)."""
    text = README.read_text()
    section = readme_section(result)
    if _BEGIN in text and _END in text:
        text = text[: text.index(_BEGIN)] + section + text[text.index(_END) + len(_END) :]
    else:
        text = text.rstrip() + "\n\n## Performance\n\n" + section + "\n"
    README.write_text(text)


def _previous() -> dict:
    try:
        return json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}


def main(args) -> int:
    """Run the benchmark. A partial run (``--no-lessons``, ``--only``) updates its rows in
    ``bench/results.json`` and keeps the others."""
    previous = _previous()
    result = {"machine": machine(), "lessons": previous.get("lessons", []), "methods": []}
    if "course_seconds" in previous:
        result["course_seconds"] = previous["course_seconds"]
    if not args.no_lessons:
        print("Lessons (solutions mode, one thread):")
        result["lessons"] = run_lessons()
        ok = [r["seconds"] for r in result["lessons"] if "seconds" in r]
        result["course_seconds"] = round(sum(ok), 1)
        print(f"  whole course: {result['course_seconds']} s")
    print(f"Methods (median of {args.runs} runs; ours vs reference):")
    fresh = run_rows(args.runs, args.only)
    if args.only:  # replace the rows measured now, keep the rest in their order
        by_name = {row["name"]: row for row in fresh}
        old = previous.get("methods", [])
        old_names = {row["name"] for row in old}
        fresh = [by_name.get(row["name"], row) for row in old] + [
            r for r in fresh if r["name"] not in old_names
        ]
    result["methods"] = fresh
    BENCH_DIR.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {RESULTS.relative_to(ROOT)}")
    if getattr(args, "readme", False):
        update_readme(result)
        print("README.md: Performance section updated")
    return 0
