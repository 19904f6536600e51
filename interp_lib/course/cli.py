"""``python -m interp_lib <command>``: the course's command line.

lab        open the course in JupyterLab (the lessons/ folder)
check      your progress, exercise by exercise
execute    re-execute lessons in solutions mode and store their outputs (maintainers)
train      reproduce the shipped model weights
bench      benchmark lessons and methods against the reference libraries (maintainers)
grade      grade a submission or a folder of them (instructors; interp_lib/course/grading.py)
submit     zip your exercise modules for hand-in
release    build the student copy of the course (instructors; interp_lib/course/release.py)
slides     reveal.js lecture slides that work offline (interp_lib/course/slides.py)
mutants    do the tests catch plausible student bugs? (maintainers; interp_lib/course/mutants.py)
fetch-weights  torchvision's ImageNet weights into torch's cache (interp_lib/course/fetch_weights.py)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from .common import ROOT, execute_notebook, format_table, lesson_paths, run_tests, summarise

# --------------------------------------------------------------------------- lab


def cmd_lab(args: argparse.Namespace) -> int:
    """Serve JupyterLab from the repository root, opening the lessons."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={ROOT}",
        "--LabApp.default_url=/lab/tree/lessons",
    ]
    if args.port:
        cmd.append(f"--port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines run as root
    cmd += args.extra
    os.chdir(ROOT)
    os.execv(sys.executable, cmd)  # JupyterLab replaces this process: stopping it stops the server


# --------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    """Run the exercise tests on your code and print a progress table."""
    from ..exercises import load_all

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
            raise SystemExit(
                f"no exercises in lesson(s) {', '.join(sorted(wanted))}"
                + (" could be loaded: fix the error above first" if broken else "")
            )
        files = sorted(
            str(p.relative_to(ROOT)) for n in wanted for p in (ROOT / "tests").glob(f"test_{n}_*.py")
        )
        selection = [*(files or ["tests"]), "-m", "exercise", f"--exercises={','.join(ids)}"]
    print("Running the exercise tests on your code ...", flush=True)
    summary = summarise(run_tests(selection, solutions=None))
    if args.lesson:
        summary = {k: v for k, v in summary.items() if v["lesson"] in wanted}
    print(format_table(summary))
    return 0


# --------------------------------------------------------------------------- execute


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


# --------------------------------------------------------------------------- fetch-weights


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    from .fetch_weights import fetch_weights

    fetch_weights(args.names, progress=not args.quiet)
    return 0


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interp_lib", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    p = sub.add_parser("fetch-weights", help="download torchvision's ImageNet weights into torch's cache")
    p.add_argument("names", nargs="*", help="squeezenet1_1 resnet18 vgg16 (default), vgg16_bn, googlenet")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fetch_weights)
    from . import grading, release  # grade, submit (interp_lib/course/grading.py); release

    grading.add_commands(sub)
    release.add_commands(sub)
    from . import slides  # lecture slides (interp_lib/course/slides.py)

    slides.add_command(sub)
    from . import mutants  # plausible student bugs vs the tests (interp_lib/course/mutants.py)

    mutants.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.extra = unknown  # lab passes them on to JupyterLab
    return args.func(args) or 0
