"""``python -m interp_lib release --out DIR``: the student copy of the course.

The release holds the stubs (never a reference body), no ``solutions/``, no hidden
tests, no answer keys, the lessons with their stored outputs, a Makefile whose
``make test`` prints check's progress table of the student's code (no ``--solutions``;
``make pytest`` for pytest's full output), a README for students.
It is built from the files of this checkout (no git history, no bytecode).
Also here: :func:`fill_bodies`, which writes function bodies into a module's exercise
stubs (the tests use it to turn the release's stubs into a correct submission).
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import re
import shutil
import textwrap

from ..lesson import lesson_notebooks, write_reference
from .common import ROOT, is_stub

# What the release takes from the checkout (everything else is left out).
TOP_FILES = ["pyproject.toml", "environment.yml", "LICENSE", ".gitignore"]
SOLUTION_MARKERS = ("solutions/answers", "model answer", "Model answer", "rubric", "Rubric")


# --------------------------------------------------------------------------- bodies


def _exercise_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "exercise"
            for d in node.decorator_list
        ):
            out[node.name] = node
    return out


def fill_bodies(stub_source: str, bodies_source: str) -> str:
    """``stub_source`` with the body of every exercise that ``bodies_source`` defines
    (a function of the same name) replaced by that function's body. The other top-level
    statements of ``bodies_source`` (imports, helpers) are appended at the end of the
    module, where they do not disturb its imports; function bodies find them at call time.
    """
    stub_tree, body_tree = ast.parse(stub_source), ast.parse(bodies_source)
    stubs = _exercise_functions(stub_tree)
    lines = stub_source.splitlines()
    body_lines = bodies_source.splitlines()
    replacements = []
    extra = []
    for node in body_tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in stubs:
            stmts = node.body
            if (
                stmts
                and isinstance(stmts[0], ast.Expr)
                and isinstance(getattr(stmts[0], "value", None), ast.Constant)
                and isinstance(stmts[0].value.value, str)
                and len(stmts) > 1
            ):
                stmts = stmts[1:]
            text = "\n".join(body_lines[stmts[0].lineno - 1 : stmts[-1].end_lineno])
            text = textwrap.dedent(text)
            stub = stubs[node.name]
            first = (
                stub.body[1] if (len(stub.body) > 1 and isinstance(stub.body[0], ast.Expr)) else stub.body[0]
            )
            indent = " " * first.col_offset
            replacements.append((first.lineno, stub.end_lineno, textwrap.indent(text, indent).splitlines()))
        elif isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue  # the stub module has its own; a second one would be a SyntaxError
        else:
            extra.append(
                "\n".join(
                    body_lines[node.lineno - 1 - len(getattr(node, "decorator_list", [])) : node.end_lineno]
                )
            )
    for start, end, new in sorted(replacements, reverse=True):
        # keep comment lines such as "# YOUR CODE HERE" out: replace the whole body
        lo = start - 1
        while lo > 0 and lines[lo - 1].strip().startswith("#"):
            lo -= 1
        lines[lo:end] = new
    out = "\n".join(lines).rstrip() + "\n"
    if extra:
        out += "\n\n# --- added ---\n" + "\n\n".join(extra) + "\n"
    return out


# --------------------------------------------------------------------------- checks


def stub_problems(source: str, filename: str) -> list[str]:
    """Exercises of a module whose body is not exactly the stub (``raise NotImplementedError``)."""
    return [
        f"{filename}: exercise `{name}` has a body, not the stub"
        for name, node in _exercise_functions(ast.parse(source)).items()
        if not is_stub(node)
    ]


def strip_hidden_tests(source: str) -> tuple[str, list[str]]:
    """``source`` without the tests (functions or classes) marked ``@pytest.mark.hidden``."""
    tree = ast.parse(source)

    def hidden(node) -> bool:
        for d in getattr(node, "decorator_list", []):
            target = d.func if isinstance(d, ast.Call) else d
            if isinstance(target, ast.Attribute) and target.attr == "hidden":
                return True
        return False

    removed = [n.name for n in tree.body if hidden(n)]
    if not removed:
        return source, []
    lines = source.splitlines()
    for node in sorted((n for n in tree.body if hidden(n)), key=lambda n: n.lineno, reverse=True):
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        del lines[first - 1 : node.end_lineno]
    return "\n".join(lines).rstrip() + "\n", removed


def _norm(line: str) -> str:
    return " ".join(line.split())


def _text_lines(path: pathlib.Path) -> set[str]:
    """Whitespace-normalised lines of a file (for a notebook: of its cell sources too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return set()
    lines = {_norm(line) for line in text.splitlines()}
    if path.suffix == ".ipynb":
        import json

        try:
            nb = json.loads(text)
            for cell in nb.get("cells", []):
                src = cell.get("source", "")
                src = "".join(src) if isinstance(src, list) else src
                lines.update(_norm(line) for line in src.splitlines())
        except ValueError:
            pass
    return lines


def solution_fingerprints(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """Per reference body (``solutions/<m>.py:<name>``) and answer key, its distinctive
    lines: at least 16 characters, found nowhere in the public course files
    (``interp_lib``, lessons, tests) - the lines a leak would carry."""
    public: set[str] = set()
    for folder in ("interp_lib", "lessons", "tests"):
        for path in (root / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".ipynb", ".md"):
                public |= _text_lines(path)
    prints: dict[str, set[str]] = {}
    for path in sorted((root / "solutions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                body = {_norm(line) for line in lines[node.lineno : node.end_lineno]}
                prints[f"solutions/{path.name}:{node.name}"] = {
                    line
                    for line in body
                    if len(line) >= 16 and line not in public and not line.startswith(("#", '"""'))
                }
    for path in sorted((root / "solutions" / "answers").glob("*.md")):
        prints[f"solutions/answers/{path.name}"] = {
            line for line in _text_lines(path) if len(line) >= 40 and line not in public
        }
    return prints


def find_solution_text(folder: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    """Problems of a release folder (empty list: clean): ``solutions/``, hidden tests,
    answer keys, bytecode or git history present; an exercise whose body is not the
    stub; a file carrying a reference body (at least half of its distinctive lines, and
    at least two) or any distinctive line of an answer key."""
    prints = solution_fingerprints(root)
    problems = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_dir():
            if path.name in (".git", "solutions", "__pycache__", "hidden", "answers"):
                problems.append(f"{rel}/ must not be in the release")
            continue
        if path.suffix in (".pyc", ".pyo"):
            problems.append(f"{rel}: bytecode")
            continue
        if path.suffix not in (".py", ".md", ".ipynb", ".txt", ".cfg", ".toml", ".yml", ".json", ""):
            continue
        lines = _text_lines(path)
        for key, fp in prints.items():
            hits = fp & lines
            if ("answers" in key and hits) or (len(hits) >= 2 and len(hits) >= 0.5 * len(fp)):
                problems.append(f"{rel}: holds text of {key} ({sorted(hits)[0][:50]!r})")
        if path.suffix == ".py":
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"^@exercise\(", text, re.M):
                problems += stub_problems(text, str(rel))
    return problems


# --------------------------------------------------------------------------- build

STUDENT_MAKEFILE = """\
# make lab | make test | make check | make submit | make pytest
PYTHON ?= python3
VENV   ?= .venv
PY     ?= $(VENV)/bin/python
VENV_DEPS ?= $(VENV)/.installed
PYTEST_ARGS ?= tests
# make test V=1: every failing check; make test PYTEST=1: pytest's full output
V ?=
PYTEST ?=

.PHONY: lab test pytest check submit help
.DEFAULT_GOAL := help

help:
\t@echo "make lab      open the course in JupyterLab (creates .venv when missing)"
\t@echo "make check    your progress, exercise by exercise"
\t@echo "make test     the tests of the exercises you wrote, as a progress table (V=1: every failing check)"
\t@echo "make pytest   the same tests with pytest's full output (also: make test PYTEST=1)"
\t@echo "make submit   zip your exercise modules for hand-in (submission.zip)"

$(VENV)/.installed: pyproject.toml
\t$(PYTHON) -m venv $(VENV)
\t$(VENV)/bin/python -m pip install --quiet --upgrade pip
\t$(VENV)/bin/python -m pip install --quiet -e .
\ttouch $@

lab: $(VENV_DEPS)
\t$(PY) -m interp_lib lab

ifeq ($(PYTEST),)
test: check
else
test: pytest
endif

pytest: $(VENV_DEPS)
\t$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

check: $(VENV_DEPS)
\t$(PY) -m interp_lib check $(if $(V),-v)

submit: $(VENV_DEPS)
\t$(PY) -m interp_lib submit
"""

STUDENT_README = """\
# How do neural networks "think"? - student copy

    make lab      # open the course in JupyterLab (creates .venv on the first run)
    make test     # your progress: the tests of what you wrote, as a table (= make check)
    make test V=1 # the same, with every failing check and its test's name
    make pytest   # the same tests with pytest's full output (= make test PYTEST=1)
    make submit   # zip your answers for hand-in

You need Python >= 3.10 and `make` (without it: `python -m venv .venv &&
.venv/bin/pip install -e . && .venv/bin/python -m interp_lib lab`).

## How it works
Every exercise is one function in `interp_lib/<topic>.py`, for example
`interp_lib/basics.py: predict` (exercise 00.1). Its docstring is the specification;
replace the line `raise NotImplementedError(...)` under `# YOUR CODE HERE` with your
code. The lessons in `lessons/` call your functions; their stored outputs show what a
correct implementation prints. A lesson always runs to the end: a cell that needs an
exercise you have not written prints `needs LL.N name — lesson LL` and shows its
reference output (from `lessons/reference/`), and every other cell runs on your code.

`python -m interp_lib check` (or `make test`, `make check`) runs the tests of the
exercises you have written (an untouched stub is "not started" without running
anything) and prints a table: passing, failing (with your own code's first failing
check), not started, or blocked by an earlier exercise you have not written yet.
`check -v` (`make test V=1`) lists every failing check with its test's name. The full
pytest output, tracebacks included, is `make pytest` (or `make test PYTEST=1`;
`make pytest PYTEST_ARGS=tests/test_02_attacks.py` for one lesson).

The points `check` shows are counted as the grader counts them. Each exercise is
graded on its own: when your answer to an earlier exercise is wrong or missing, the
grader uses a correct version of it for the later ones (so a "blocked" exercise can
still earn its points). The grader also runs hidden tests, and cross-checks against
reference libraries that your copy skips; `check -v` names what it could not run.

## Rules for your answers
* Write them with torch, numpy and the helpers in `interp_lib`. Solutions that import
  captum, zennit, torchattacks, cleanlab, lucent, foolbox (or any other interpretability
  library) score 0 for that exercise.
* An exercise must return its result: do not exit the process, print megabytes, or
  take much longer or much more memory than needed (the grader stops it and says why).

## Hand-in
`python -m interp_lib submit` (or `make submit`) runs the tests, then packs only your
exercise modules (`interp_lib/<topic>.py`) and a manifest into `submission.zip`.
Hand in that file.

## Real photographs and ImageNet networks
`interp_lib.data.load_photos()` gives the twelve photographs shipped in
`interp_lib/photos/` (licences in its SOURCES.md). ImageNet networks are optional:
`python -m interp_lib fetch-weights` downloads SqueezeNet 1.1, ResNet-18 and VGG-16 into
torch's cache (about 580 MB; name one to fetch less), then
`interp_lib.models.imagenet_model("squeezenet1_1")` loads one with its class names.

{lessons}
"""


def _lesson_list(root: pathlib.Path) -> str:
    rows = ["## Lessons", ""]
    for nb in lesson_notebooks(root / "lessons"):
        rows.append(f"* [{nb.stem.replace('_', ' ')}](lessons/{nb.name})")
    return "\n".join(rows) + "\n"


def build_release(out: pathlib.Path | str, root: pathlib.Path = ROOT) -> dict:
    """Build the student copy in ``out``; returns a summary (files, bytes)."""
    from .grading import test_files  # noqa: F401 - same test-file convention as the grader

    out = pathlib.Path(out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints", ".pytest_cache")
    # the package: stubs and infrastructure
    shutil.copytree(root / "interp_lib", out / "interp_lib", ignore=junk)
    # lessons with their stored outputs
    shutil.copytree(root / "lessons", out / "lessons", ignore=junk)
    # their reference outputs, which a student's save cannot erase (interp_lib.lesson)
    for nb in lesson_notebooks(root / "lessons"):
        write_reference(nb, out / "lessons" / "reference")
    # tests: the lesson test files without hidden tests, the shared fixtures
    (out / "tests").mkdir()
    hidden_removed: dict[str, list[str]] = {}
    for name in ("conftest.py", "helpers.py", "sanitize.cfg"):
        if (root / "tests" / name).exists():
            shutil.copyfile(root / "tests" / name, out / "tests" / name)
    for path in sorted((root / "tests").glob("test_[0-9][0-9]_*.py")):
        text, removed = strip_hidden_tests(path.read_text(encoding="utf-8"))
        (out / "tests" / path.name).write_text(text, encoding="utf-8")
        if removed:
            hidden_removed[path.name] = removed
    for name in TOP_FILES:
        if (root / name).exists():
            shutil.copyfile(root / name, out / name)
    if (root / "binder").is_dir():  # repo2docker's build recipe (Binder, JupyterHub images)
        shutil.copytree(root / "binder", out / "binder", ignore=junk)
    (out / "Makefile").write_text(STUDENT_MAKEFILE, encoding="utf-8")
    (out / "README.md").write_text(STUDENT_README.format(lessons=_lesson_list(root)), encoding="utf-8")
    problems = find_solution_text(out, root)
    if problems:
        raise RuntimeError("the release is not clean:\n  " + "\n  ".join(problems))
    files = [p for p in out.rglob("*") if p.is_file()]
    return {
        "out": str(out),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "hidden_removed": hidden_removed,
    }


def add_commands(sub) -> None:
    p = sub.add_parser("release", help="build the student copy of the course (instructors)")
    p.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    p.set_defaults(func=cmd_release)


def cmd_release(args: argparse.Namespace) -> int:
    info = build_release(args.out)
    print(
        f"student release in {info['out']}: {info['files']} files, {info['bytes'] / 2**20:.1f} MiB; "
        "no solutions/, no hidden tests, no answer keys, no bytecode or git history"
    )
    for name, tests in info["hidden_removed"].items():
        print(f"  hidden tests left out of {name}: {', '.join(tests)}")
    return 0
