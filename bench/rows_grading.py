"""Benchmark row for the classroom workflow: grading a batch of 20 submissions."""

import atexit
import pathlib
import shutil

from interp_lib.course import grading
from interp_lib.course.bench import ROOT, Row, scratch_dir
from interp_lib.course.release import fill_bodies

EXERCISES = ["00.1", "01.1", "01.2"]


def _submissions(folder: pathlib.Path, n: int = 20) -> pathlib.Path:
    """``n`` hand-ins of the lesson 00-01 exercise modules with the reference bodies."""
    for i in range(n):
        dest = folder / f"student{i:02d}" / "interp_lib"
        dest.mkdir(parents=True)
        for module in ("basics", "labels"):
            src = fill_bodies(
                (ROOT / "interp_lib" / f"{module}.py").read_text(),
                (ROOT / "solutions" / f"{module}.py").read_text(),
            )
            (dest / f"{module}.py").write_text(src)
    return folder


def rows():
    tmp = scratch_dir("bench-grading-")
    subs = _submissions(tmp / "subs")

    def batch(workers):
        out = tmp / f"out{workers}"
        shutil.rmtree(out, ignore_errors=True)
        grading.grade_batch(subs, out, exercises=EXERCISES, workers=workers, skip_reference=True)

    return [
        Row(
            "grade --batch: 20 submissions, 00.1/01.1/01.2 (2 workers)",
            lambda: batch(2),
            lambda: batch(1),
            against="the same batch graded one at a time",
            goal=0.75,
            lesson="grading",
            runs=1,
            warmup=False,
        )
    ]


def _complete_submission(folder: pathlib.Path) -> pathlib.Path:
    """Every exercise module with its reference body: a submission that scores 100."""
    from interp_lib.exercises import load_all

    dest = folder / "complete" / "interp_lib"
    dest.mkdir(parents=True)
    for module in sorted({ex.module for ex in load_all().values()}):
        src = fill_bodies(
            (ROOT / "interp_lib" / f"{module}.py").read_text(),
            (ROOT / "solutions" / f"{module}.py").read_text(),
        )
        (dest / f"{module}.py").write_text(src)
    return dest.parent


def _plain_tests():
    """The same exercise tests, run directly on the reference bodies (2 processes)."""
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbval",
            "-o",
            "addopts=",
            "--solutions=all",
            "-m",
            "exercise",
            "-n",
            "2",
            "--dist",
            "loadfile",
            *grading.test_files(ROOT),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _child_start_up(iso, view_dir: pathlib.Path, submission: pathlib.Path, ex_id: str = "00.1"):
    """Start one exercise's child in a running sandbox and wait until it is ready."""
    import os

    from interp_lib.course import grading_remote as R
    from interp_lib.exercises import get

    env = {
        "INTERP_GRADE_VIEW": str(view_dir),
        "INTERP_GRADE_SUBMISSION": str(submission),
        "INTERP_GRADE_ISOLATION": iso.level,
        "INTERP_GRADE_EXERCISES": ex_id,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        session = R.GradingSession(ROOT / "tests")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return session, R.Remote(session, get(ex_id))


def startup_rows():
    from interp_lib.course import sandbox as S

    iso = S.detect()
    tmp = scratch_dir("bench-sandbox-")
    sub = _complete_submission(tmp)
    base = S.private_dir("bench-copies-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    (base / "modules").mkdir()
    for p in (sub / "interp_lib").glob("*.py"):
        shutil.copyfile(p, base / "modules" / p.name)
    copies = grading.build_copies(base, iso)
    session, remote = _child_start_up(iso, copies["view"], base / "modules")
    atexit.register(session.close)  # its sandbox server and private folder
    if iso.level == S.SANDBOX:
        session.sandbox_server()  # the once-per-process cost is not per exercise

    def one_exercise():
        remote._start()
        remote.stop()

    def plain_process():
        import subprocess
        import sys

        subprocess.run([sys.executable, "-c", "import torch, interp_lib.basics"], check=True)

    return [
        Row(
            f"grading: child start-up per exercise ({iso.level})",
            one_exercise,
            plain_process,
            against="a new Python process importing torch (what one process per exercise costs)",
            goal=0.5,
            lesson="grading",
            runs=5,
        )
    ]


_rows_batch = rows


def rows():
    tmp = scratch_dir("bench-complete-")
    sub = _complete_submission(tmp)
    complete = Row(
        "grade: one complete submission (all exercises, best isolation)",
        lambda: grading.grade(sub, quiet=True),
        _plain_tests,
        against="the same exercise tests run directly, pytest -n 2 (goal: <= 60 s in all)",
        lesson="grading",
        runs=1,
        warmup=False,
    )
    return [*_rows_batch(), complete, *startup_rows()]
