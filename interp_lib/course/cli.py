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

from .common import ROOT, execute_notebook, format_table, lesson_paths, progress

# --------------------------------------------------------------------------- lab


#: Jupyter configuration the ``lab`` command adds to JupyterLab's search path (never to the
#: user's own): labconfig/page_config.json disables the news/update announcements plugin,
#: so a first start does not ask about "official Jupyter news".
LAB_CONFIG = pathlib.Path(__file__).resolve().parent / "jupyter"


def lab_environment(environ=None) -> dict[str, str]:
    """The environment JupyterLab runs with: ``LAB_CONFIG`` first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if environ is None else environ)
    paths = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != str(LAB_CONFIG)]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(LAB_CONFIG), *paths])
    return env


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
    from ..lesson import trust_lessons

    trust_lessons(ROOT / "lessons")  # the course's own outputs: stored widgets render on opening
    os.chdir(ROOT)
    # JupyterLab replaces this process: stopping it stops the server
    os.execve(sys.executable, cmd, lab_environment())


# --------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    """Run the tests of the exercises you have written and print a progress table."""
    import json

    from ..exercises import load_all

    broken: dict[str, str] = {}
    reg = load_all(errors=broken)
    for message in broken.values():
        print(f"cannot import {message}\n  -> its exercises cannot run until you fix it")
    print(f"checking the exercises in {pathlib.Path(__file__).resolve().parents[1]}")
    if args.lesson:
        wanted = {n.zfill(2) for n in args.lesson}
        if not any(e.lesson in wanted for e in reg.values()) and not broken:
            raise SystemExit(f"no exercises in lesson(s) {', '.join(sorted(wanted))}")
    print("Running the tests of the exercises you have written ...", flush=True)
    summary = progress(args.lesson, "exercise and not reference" if args.skip_reference else "exercise")
    if args.lesson and not summary:
        raise SystemExit(
            f"no exercises in lesson(s) {', '.join(sorted(wanted))}"
            + (" could be loaded: fix the error above first" if broken else "")
        )
    ran = [i for i, s in summary.items() if s.get("tests")]
    idle = [i for i, s in summary.items() if s["status"] == "not started" and not s.get("tests")]
    print(
        f"ran {sum(s.get('tests', 0) for s in summary.values())} tests of "
        f"{', '.join(ran) or 'no exercise'}; {len(idle)} not started (nothing to run)"
    )
    print(format_table(summary, verbose=args.verbose))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- execute


def cmd_execute(args: argparse.Namespace) -> int:
    for path in lesson_paths(args.lessons):
        seconds = execute_notebook(path)
        print(f"{path.name}: executed and stored ({seconds:.1f} s)")
    return 0


# --------------------------------------------------------------------------- train / bench


def cmd_train(args: argparse.Namespace) -> int:
    from .train import CAPSTONE, train, train_capstone

    if args.shortcut is not None or args.seed is not None:
        if args.names != [CAPSTONE] or args.shortcut is None:
            raise SystemExit(f"--shortcut KIND [--seed S] plants a fresh secret in `train {CAPSTONE}` only")
        train_capstone(args.shortcut, args.seed)
        return 0
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
    p.add_argument(
        "-v", "--verbose", action="store_true", help="every failing test, and why grade may differ"
    )
    p.add_argument(
        "--skip-reference",
        action="store_true",
        help="leave out the cross-checks against reference libraries (as grade --skip-reference)",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="also write the table's data as JSON")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("execute", help="re-execute lessons (solutions mode) and store outputs")
    p.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    p.set_defaults(func=cmd_execute)
    p = sub.add_parser("train", help="reproduce the shipped model weights")
    p.add_argument("names", nargs="*", help="model names (default: all)")
    p.add_argument(
        "--shortcut",
        default=None,
        metavar="KIND",
        help="instructors, with `train capstone`: plant a fresh secret shortcut of this kind "
        "(solutions/capstone_shortcut.py lists them) and rewrite the key",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="with --shortcut: which one of its kind (default 0)"
    )
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
