"""Benchmark row for the classroom workflow: grading a batch of 20 submissions."""
import pathlib
import shutil
import tempfile

from interp_lib.course import grading
from interp_lib.course.bench import ROOT, Row
from interp_lib.course.release import fill_bodies

EXERCISES = ["00.1", "01.1", "01.2"]


def _submissions(folder: pathlib.Path, n: int = 20) -> pathlib.Path:
    """``n`` hand-ins of the lesson 00-01 exercise modules with the reference bodies."""
    for i in range(n):
        dest = folder / f"student{i:02d}" / "interp_lib"
        dest.mkdir(parents=True)
        for module in ("basics", "labels"):
            src = fill_bodies((ROOT / "interp_lib" / f"{module}.py").read_text(),
                              (ROOT / "solutions" / f"{module}.py").read_text())
            (dest / f"{module}.py").write_text(src)
    return folder


def rows():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-grading-"))
    subs = _submissions(tmp / "subs")

    def batch(workers):
        out = tmp / f"out{workers}"
        shutil.rmtree(out, ignore_errors=True)
        grading.grade_batch(subs, out, exercises=EXERCISES, workers=workers, skip_reference=True)

    return [Row("grade --batch: 20 submissions, 00.1/01.1/01.2 (2 workers)",
                lambda: batch(2), lambda: batch(1),
                against="the same batch graded one at a time", goal=0.75, lesson="grading",
                runs=1, warmup=False)]
