"""Lessons as a student runs them: a lesson always runs to the end.

Importing ``interp_lib`` inside an IPython kernel registers this module as an IPython
extension (``%load_ext interp_lib.lesson`` does the same by hand). From then on, a cell
that needs an exercise not yet written does not stop *Run All*:

* when the cell calls an exercise whose stub runs (:class:`~interp_lib.exercises.ExerciseNotWritten`),
  the cell stops there, prints one line (``needs 02.1 input_gradient — lesson 02``, or
  ``blocked by 02.1 ...`` when an exercise the student wrote calls an unwritten one) and
  shows the cell's *reference output* (what the course's solutions print and draw),
  marked as such; the cell counts as run, not as failed;
* the names the cell would have assigned (or changed) from that statement on become
  *missing*; a later cell that reads a missing name is skipped the same way, naming the
  exercise it ultimately needs. Running the cell successfully (after writing the
  exercise) makes its names available again.

Nothing else is caught: a student's own error is a normal traceback (the course's wrapper
frames are hidden from it). In solutions mode nothing is skipped, and the outputs are
exactly those of a plain kernel.

The reference outputs come from ``lessons/reference/LL.json`` (written into the student
release from the stored notebooks, so a student's save never destroys them) or, where
that is absent, from the lesson notebooks themselves; a cell is found by its id (sent by
JupyterLab) or by the hash of its source.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import pathlib
import re
import symtable
import sys
from collections.abc import Iterator
from typing import Any

#: lesson notebooks: ``LL_topic.ipynb`` and appendix notebooks ``LLb_topic.ipynb`` (a lesson's
#: second part, e.g. ``06b_``: its exercises keep the lesson's ids ``06.N``)
NOTEBOOK_GLOB = "[0-9][0-9]*_*.ipynb"
_KEY = re.compile(r"(\d\d[a-z]?)_")


def lesson_key(path: pathlib.Path | str) -> str:
    """``"06"`` for ``06_feature_visualisation.ipynb``, ``"06b"`` for an appendix ``06b_...``."""
    match = _KEY.match(pathlib.Path(path).name)
    if not match:
        raise ValueError(f"not a lesson notebook name: {pathlib.Path(path).name!r}")
    return match.group(1)


def lesson_notebooks(folder: pathlib.Path) -> list[pathlib.Path]:
    """The lesson and appendix notebooks in ``folder``, in course order (06, 06b, 07, ...)."""
    return sorted((p for p in folder.glob(NOTEBOOK_GLOB) if _KEY.match(p.name)), key=lambda p: lesson_key(p))


__all__ = ["load_ipython_extension", "unload_ipython_extension", "register", "reference_outputs"]

NAME = "__interp_lesson__"  # the runner's name in the kernel's namespace
PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
WIDGET = "application/vnd.jupyter.widget-view+json"
REFERENCE_NOTE = "── reference output (the course's solutions); your code will replace it ──"

# method names that change their receiver: a name they are called on counts as assigned
_MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "pop", "clear", "remove"}


def source_key(source: str) -> str:
    """The key of a cell's source in the reference files (sha256 of the text, 16 hex)."""
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()[:16]


def reference_entries(nb: dict) -> dict[str, dict]:
    """``{cell id: {"source": key, "outputs": [...]}}`` of a notebook's code cells with
    outputs, ready to show again: execution counts dropped, results as display data,
    widget views (which need a kernel) replaced by a note."""
    entries = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or not cell.get("outputs"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        outputs = []
        for out in cell["outputs"]:
            kind = out.get("output_type")
            if kind == "stream":
                text = out.get("text", "")
                outputs.append(
                    {"output_type": "stream", "name": out.get("name", "stdout"), "text": _text(text)}
                )
            elif kind in ("display_data", "execute_result"):
                data = {k: _text(v) for k, v in out.get("data", {}).items()}
                if WIDGET in data:
                    data = {
                        "text/plain": "(an interactive widget: it works once the exercises it uses are written)"
                    }
                outputs.append(
                    {"output_type": "display_data", "data": data, "metadata": out.get("metadata", {})}
                )
        if outputs:
            entries[cell.get("id") or source_key(source)] = {"source": source_key(source), "outputs": outputs}
    return entries


def _text(value: Any) -> Any:
    return "".join(value) if isinstance(value, list) else value


def write_reference(notebook: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """Write ``folder/LL.json``, the reference outputs of lesson ``notebook``."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lesson_key(notebook)}.json"
    path.write_text(json.dumps(reference_entries(nb), separators=(",", ":")), encoding="utf-8")
    return path


def trust_lessons(folder: pathlib.Path) -> int:
    """Sign the lesson notebooks in ``folder`` as trusted (Jupyter's signature database of
    this user); returns how many were signed. An untrusted notebook shows only "safe"
    outputs, so its stored widgets would be text (``VBox(children=...``) until run."""
    try:
        import nbformat
        from nbformat.sign import NotebookNotary
    except ImportError:
        return 0
    notary, signed = NotebookNotary(), 0
    for path in lesson_notebooks(folder):
        try:
            nb = nbformat.read(path, as_version=4)
            if not notary.check_signature(nb):
                notary.sign(nb)
                signed += 1
        except Exception:  # noqa: BLE001 - a broken notebook opens untrusted, as before
            continue
    return signed


class _Index:
    """Reference outputs of every lesson, by cell id and by source key (read lazily)."""

    def __init__(self) -> None:
        self.by_id: dict[str, list] | None = None
        self.by_source: dict[str, list] = {}

    def folders(self) -> list[pathlib.Path]:
        found = []
        for base in (pathlib.Path.cwd(), pathlib.Path.cwd() / "lessons", PACKAGE_DIR.parent / "lessons"):
            if base.is_dir() and base.resolve() not in found:
                found.append(base.resolve())
        return found

    def load(self) -> None:
        self.by_id = {}
        for folder in self.folders():
            # the notebooks first, the reference files (which a save cannot touch) over them
            files = lesson_notebooks(folder) + sorted((folder / "reference").glob("*.json"))
            for path in files:
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    entries = reference_entries(data) if path.suffix == ".ipynb" else data
                except (OSError, ValueError):
                    continue
                for cell_id, entry in entries.items():
                    self.by_id[cell_id] = entry["outputs"]
                    self.by_source[entry["source"]] = entry["outputs"]

    def find(self, cell_id: str | None, source: str) -> list | None:
        if self.by_id is None:
            self.load()
        assert self.by_id is not None
        found = self.by_source.get(source_key(source))
        if found is None and cell_id:
            found = self.by_id.get(cell_id)
        return found


_INDEX = _Index()


def reference_outputs(cell_id: str | None, source: str) -> list | None:
    """The stored reference outputs of a cell (None when there are none)."""
    return _INDEX.find(cell_id, source)


# --------------------------------------------------------------------------- analysis


def _scopes(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    for child in table.get_children():
        yield child
        yield from _scopes(child)


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _scope_reads(node: ast.AST) -> set[str]:
    """The global names a function, class, lambda or comprehension reads: what it reads
    when it is made (decorators, defaults, a comprehension's first iterable) and the
    global names its body reads (a function counts as reading them when it is defined)."""
    source = ast.unparse(node if isinstance(node, ast.stmt) else ast.Expr(node))
    table = symtable.symtable(source, "<cell>", "exec")
    reads = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    for scope in _scopes(table):
        reads |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
    return reads


class _Reads(ast.NodeVisitor):
    """The names a statement reads before it binds them itself, in execution order: the
    loop variable of ``for name in names: print(name)`` is bound by the loop before its
    body reads it, while ``x = f(x)`` reads ``x`` first."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.reads: set[str] = set()

    def _read(self, name: str) -> None:
        if name not in self.bound:
            self.reads.add(name)

    def _visit_all(self, *nodes: Any) -> None:
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if item is not None:
                    self.visit(item)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.bound.add(node.id)
        else:  # Load, Del
            self._read(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._visit_all(node.value, node.targets)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._visit_all(node.value, node.annotation, node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._read(node.target.id)
        self._visit_all(node.value, node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._visit_all(node.value, node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._visit_all(node.iter, node.target, node.body, node.orelse)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self._visit_all(item.context_expr, item.optional_vars)
        self._visit_all(node.body)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._visit_all(node.type)
        if node.name:
            self.bound.add(node.name)
        self._visit_all(node.body)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self.bound.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, _NESTED + _COMPREHENSIONS):
            for name in _scope_reads(node):
                self._read(name)
            if isinstance(node, _NESTED) and not isinstance(node, ast.Lambda):
                self.bound.add(node.name)
            return
        super().generic_visit(node)


def _loads_and_stores(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """Global names one top-level statement reads before assigning them itself, and those
    it assigns or changes."""
    try:
        table = symtable.symtable(ast.unparse(stmt), "<cell>", "exec")
        reads = _Reads()
        reads.visit(stmt)
    except (SyntaxError, ValueError):
        return set(), set()
    loads = reads.reads
    stores = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    for scope in _scopes(table):
        for s in scope.get_symbols():
            if s.is_declared_global() and s.is_assigned():
                stores.add(s.get_name())
    for node in ast.walk(stmt):
        target = None
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in _MUTATORS or (attr.endswith("_") and not attr.startswith("_")):
                target = node.func.value
        while isinstance(target, (ast.Subscript, ast.Attribute)):
            target = target.value
        if isinstance(target, ast.Name):
            stores.add(target.id)
    return loads, stores


def _contains(node: ast.AST, kinds: tuple) -> bool:
    return any(isinstance(n, kinds) for n in ast.walk(node))


# --------------------------------------------------------------------------- runtime


class Runner:
    """The kernel-side state: which names are missing, and for which exercise."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.missing: dict[str, tuple[str, str]] = {}  # name -> (exercise "02.1 input_gradient", line)
        self.cell_id: str | None = None
        self.source = ""
        self.statements: list[tuple[int, int, set[str]]] = []  # (first line, last line, stores)
        self.stores: set[str] = set()
        self.skipped = False

    # events
    def pre_run_cell(self, info: Any) -> None:
        self.cell_id = getattr(info, "cell_id", None)
        self.source = getattr(info, "raw_cell", "") or ""
        self.statements, self.stores, self.skipped = [], set(), False

    def post_run_cell(self, result: Any) -> None:
        if not self.skipped and getattr(result, "success", False):
            for name in self.stores:
                self.missing.pop(name, None)

    # the AST transformation
    def transform(self, module: ast.Module) -> ast.Module:
        body = module.body
        if not body:
            return module
        bound: set[str] = set()
        needed: tuple[str, str] | None = None
        self.statements = []
        for stmt in body:
            loads, stores = _loads_and_stores(stmt)
            if needed is None:
                for name in sorted(loads - bound):
                    if name in self.missing:
                        needed = self.missing[name]
                        break
            bound |= stores
            self.statements.append((stmt.lineno, stmt.end_lineno or stmt.lineno, stores))
        self.stores = bound
        if needed is not None:
            call = ast.parse(f"{NAME}.skip({needed[0]!r}, {needed[1]!r})").body
            module.body = call
            return ast.fix_missing_locations(module)
        last = body[-1]
        wrap_last = isinstance(last, ast.Expr) and not _contains(
            last, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)
        )
        head = body[:-1] if wrap_last else body
        handler = ast.parse(
            f"try:\n    pass\nexcept NotImplementedError as __interp_error__:\n"
            f"    if not {NAME}.caught(__interp_error__):\n        raise"
        ).body[0]
        new_body: list[ast.stmt] = []
        if head:
            handler.body = head
            new_body.append(handler)
        if wrap_last:
            lam = ast.Lambda(
                args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                body=last.value,
            )
            call = ast.Call(
                func=ast.Attribute(value=ast.Name(NAME, ast.Load()), attr="last", ctx=ast.Load()),
                args=[lam],
                keywords=[],
            )
            new_body.append(ast.copy_location(ast.Expr(call), last))
        module.body = new_body
        return ast.fix_missing_locations(module)

    # called from the transformed cell
    def last(self, fn: Any) -> Any:
        __tracebackhide__ = True
        if self.skipped:
            return None
        try:
            return fn()
        except NotImplementedError as err:
            if not self.caught(err, last=True):
                raise
            return None

    def caught(self, err: BaseException, last: bool = False) -> bool:
        """Skip the rest of the cell if ``err`` is an unwritten exercise (else False)."""
        if getattr(err, "exercise_id", None) is None:
            return False
        if last:  # raised by the cell's last expression
            done = self.statements[:-1]
        else:
            line = self._line(err)
            done = [s for s in self.statements if s[1] < line]
        stores = set().union(*(names for _, _, names in self.statements[len(done) :]))
        callers = self._callers(err)
        needed = f"{err.exercise_id} {err.name}"
        if callers and callers[0] != err.exercise_id:
            headline = f"blocked by {needed} — lesson {err.lesson} ({callers[0]} uses it)"
        else:
            headline = f"needs {needed} — lesson {err.lesson}"
        for name in stores:
            self.missing[name] = (needed, f"needs {needed} — lesson {err.lesson}")
        self._skip(headline)
        return True

    def skip(self, needed: str, line: str) -> None:
        for name in self.stores:
            self.missing[name] = (needed, line)
        self._skip(line)

    def _skip(self, headline: str) -> None:
        self.skipped = True
        from IPython.display import clear_output, display

        if "matplotlib.pyplot" in sys.modules:  # a half-drawn figure must not be shown
            sys.modules["matplotlib.pyplot"].close("all")
        clear_output()
        print(headline)
        outputs = reference_outputs(self.cell_id, self.source)
        if not outputs:
            return
        print(REFERENCE_NOTE)
        for out in outputs:
            if out["output_type"] == "stream":
                stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
                stream.write(out["text"])
                stream.flush()
            else:
                display(out["data"], raw=True, metadata=out.get("metadata") or None)

    @staticmethod
    def _line(err: BaseException) -> int:
        tb = err.__traceback__
        # the first frame of the traceback is the cell's own (where the error was caught)
        return tb.tb_lineno if tb is not None else 0

    @staticmethod
    def _callers(err: BaseException) -> list[str]:
        """Exercise ids on the way from the cell to the stub, outermost first."""
        ids = []
        tb = err.__traceback__
        while tb is not None:
            ex = tb.tb_frame.f_locals.get("ex") if tb.tb_frame.f_code.co_name == "wrapper" else None
            ex_id = getattr(ex, "id", None)
            if isinstance(ex_id, str) and ex_id not in ids:
                ids.append(ex_id)
            tb = tb.tb_next
        return ids


class _Transformer(ast.NodeTransformer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def visit(self, node: ast.AST) -> ast.AST:
        if not isinstance(node, ast.Module):
            return node
        try:
            return self.runner.transform(node)
        except Exception:  # noqa: BLE001 - never break a student's cell over the runner
            return node


def load_ipython_extension(shell: Any) -> None:
    """Install the runner in ``shell`` (idempotent)."""
    if isinstance(shell.user_ns.get(NAME), Runner) or getattr(shell, "_interp_lesson_runner", None):
        return
    runner = Runner(shell)
    shell._interp_lesson_runner = runner
    shell.user_ns[NAME] = runner
    shell.user_ns_hidden[NAME] = runner
    shell.events.register("pre_run_cell", runner.pre_run_cell)
    shell.events.register("post_run_cell", runner.post_run_cell)
    shell.ast_transformers.append(_Transformer(runner))


def unload_ipython_extension(shell: Any) -> None:
    runner = getattr(shell, "_interp_lesson_runner", None)
    if runner is None:
        return
    shell.events.unregister("pre_run_cell", runner.pre_run_cell)
    shell.events.unregister("post_run_cell", runner.post_run_cell)
    shell.ast_transformers[:] = [t for t in shell.ast_transformers if not isinstance(t, _Transformer)]
    shell.user_ns.pop(NAME, None)
    shell.user_ns_hidden.pop(NAME, None)
    shell._interp_lesson_runner = None


def register() -> None:
    """Install the runner when running inside an IPython kernel (what ``import interp_lib`` does)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return
    with contextlib.suppress(Exception):
        shell = ipython.get_ipython()
        if shell is not None:
            load_ipython_extension(shell)
