"""``python -m interp_lib release --out DIR``: the student copy of the course.

The release holds the stubs (never a reference body), no ``solutions/``, no hidden
tests, no answer keys, the lessons with their stored outputs, a Makefile whose
``make test`` runs the student's tests (no ``--solutions``), a README for students.
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

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What the release takes from the checkout (everything else is left out).
TOP_FILES = ["pyproject.toml", "environment.yml", "LICENSE", ".gitignore"]
SKIP_LIB = {"grading.py", "grading_remote.py", "grading_worker.py", "release.py", "train.py", "bench.py"}
SOLUTION_MARKERS = ("solutions/answers", "model answer", "Model answer", "rubric", "Rubric")


# --------------------------------------------------------------------------- bodies

def _exercise_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "exercise"
                for d in node.decorator_list):
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
            if stmts and isinstance(stmts[0], ast.Expr) and isinstance(getattr(stmts[0], "value", None), ast.Constant) \
                    and isinstance(stmts[0].value.value, str) and len(stmts) > 1:
                stmts = stmts[1:]
            text = "\n".join(body_lines[stmts[0].lineno - 1:stmts[-1].end_lineno])
            text = textwrap.dedent(text)
            stub = stubs[node.name]
            first = stub.body[1] if (len(stub.body) > 1 and isinstance(stub.body[0], ast.Expr)) else stub.body[0]
            indent = " " * first.col_offset
            replacements.append((first.lineno, stub.end_lineno, textwrap.indent(text, indent).splitlines()))
        else:
            extra.append("\n".join(body_lines[node.lineno - 1 - len(getattr(node, "decorator_list", [])):
                                              node.end_lineno]))
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


def add_commands(sub) -> None:
    p = sub.add_parser("release", help="build the student copy of the course (instructors)")
    p.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    p.set_defaults(func=cmd_release)


def cmd_release(args: argparse.Namespace) -> int:
    raise SystemExit("release: not implemented yet")
