"""``python -m interp_lib grade`` and ``submit``: the autograder and the hand-in.

Grading a submission (a folder or a zip holding ``interp_lib/<topic>.py`` files):

1. Only the exercise modules (``interp_lib/<topic>.py`` files that define exercises in
   this course) are taken from the submission; everything else in it is ignored.
2. Each module is checked on its syntax tree before anything runs: an exercise that
   uses a reference library (captum, zennit, torchattacks, cleanlab, lucent, foolbox, ...)
   or the reference package ``solutions``, directly or through a helper, or that
   mentions the solutions switch, scores 0 with a message saying why.
3. The course's own tests run in a trusted pytest process (this checkout's ``tests/``)
   with the plugin :mod:`interp_lib.course.grading_remote`: while a test of exercise X runs,
   every other exercise uses its reference body and X's calls go to a child process
   that imported the student's module (time limit, memory watchdog); the assertions
   run in the trusted process on the values the child returns.
4. Scores: the registry's points normalised to 100 (stretch exercises are bonus); within
   an exercise, the tests' weights. Hidden tests (``@pytest.mark.hidden``) count, and
   their results are shown only after the due date.

Writes a Gradescope ``results.json`` and prints a table. See docs/GRADING.md for the
threat model.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime as _dt
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import zipfile

from ..exercises import ENV_VAR, load_all, weights
from . import grading_worker
from . import sandbox as S
from .common import (
    NOT_TRANSFERABLE,  # noqa: F401 - grading.NOT_TRANSFERABLE, as before
    ROOT,
    counted,
    exercise_status,
    exercise_test_files,
    format_table,
    share,
)

# Imports an exercise may not use (top-level package names).
FORBIDDEN = {
    "captum": "the reference library captum",
    "zennit": "the reference library zennit",
    "torchattacks": "the reference library torchattacks",
    "cleanlab": "the reference library cleanlab",
    "lucent": "the reference library lucent",
    "torch_lucent": "the reference library lucent",
    "foolbox": "the reference library foolbox",
    "art": "the reference library adversarial-robustness-toolbox",
    "shap": "the reference library shap",
    "lime": "the reference library lime",
    "solutions": "the course's reference solutions",
}


# --------------------------------------------------------------------------- static check


def _forbidden_in(node: ast.AST) -> str | None:
    """Why ``node`` (one statement or expression) is not allowed, or None."""
    for sub in ast.walk(node):
        names: list[str] = []
        if isinstance(sub, ast.Import):
            names = [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom):
            if sub.level == 0:  # from captum.attr import Saliency
                names = [sub.module or ""]
            elif sub.module is None:  # from .. import solutions
                names = [a.name for a in sub.names]
            elif sub.level >= 2:  # from ..solutions.labels import x
                names = [sub.module]
            # from .labels import x: a course module, allowed
        elif isinstance(sub, ast.Call):
            func = sub.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if (
                fname in ("__import__", "import_module", "find_spec", "run_module", "spec_from_file_location")
                and sub.args
                and isinstance(sub.args[0], ast.Constant)
                and isinstance(sub.args[0].value, str)
            ):
                names = [sub.args[0].value]
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            if ENV_VAR in sub.value:
                return f"it mentions the solutions switch {ENV_VAR}"
            if "solutions/" in sub.value or "solutions\\" in sub.value:
                return "it refers to the reference solutions' files"
        for name in names:
            top = name.split(".")[0]
            if top in FORBIDDEN:
                return f"it imports {name} ({FORBIDDEN[top]})"
    return None


def _bound_names(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    out = set()
    for sub in ast.walk(stmt):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            out.add(sub.id)
        elif isinstance(sub, ast.alias):
            out.add((sub.asname or sub.name).split(".")[0])
    return out


def _used_names(stmt: ast.stmt) -> set[str]:
    return {sub.id for sub in ast.walk(stmt) if isinstance(sub, ast.Name)}


def static_check(source: str, names: dict[str, str], filename: str = "<submission>") -> dict[str, str]:
    """Exercises (id -> reason) of one module that may not run, from its syntax tree.

    ``names`` maps exercise ids to their function names in this module. An exercise is
    rejected when its own code, or a module-level helper, class or variable it uses
    (transitively), imports a reference library or ``solutions`` or touches the switch;
    a module-level statement that does so and binds nothing rejects every exercise of
    the module. A syntax error rejects every exercise of the module.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        msg = f"{filename} has a syntax error (line {err.lineno}): {err.msg}"
        return {ex_id: msg for ex_id in names}
    tainted: dict[str, str] = {}  # bound name -> reason
    global_reason = None
    stmts = list(tree.body)
    for stmt in stmts:
        reason = _forbidden_in(stmt)
        if reason is None:
            continue
        bound = _bound_names(stmt)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or bound:
            for b in bound:
                tainted[b] = reason
        else:
            global_reason = reason
    changed = True
    while changed:  # propagate through helpers and variables
        changed = False
        for stmt in stmts:
            bound = _bound_names(stmt)
            if not bound or all(b in tainted for b in bound):
                continue
            hit = _used_names(stmt) & set(tainted)
            if hit:
                via = sorted(hit)[0]
                for b in bound:
                    if b not in tainted:
                        tainted[b] = f"{tainted[via].rstrip('.')} (through `{via}`)"
                        changed = True
    out = {}
    for ex_id, name in names.items():
        if global_reason:
            out[ex_id] = f"module-level code: {global_reason}"
        elif name in tainted:
            out[ex_id] = tainted[name]
    return {k: f"scored 0 without running: {v}" for k, v in out.items()}


# --------------------------------------------------------------------------- submission


class SubmissionError(Exception):
    """A submission that cannot be taken in (corrupt, empty, links, unsafe paths)."""


MAX_MODULE_BYTES = 2_000_000


def _zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    parts = pathlib.PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"{name!r} is an absolute path"
    if ".." in parts:
        return f"{name!r} has a '..' entry"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return f"{name!r} is a symbolic link"
    return None


def collect_submission(source: pathlib.Path, dest: pathlib.Path) -> list[str]:
    """Copy the exercise modules of ``source`` (folder or zip) into ``dest``; returns
    the module names found. Nothing else is taken from a submission.

    Raises :class:`SubmissionError` for a corrupt or empty zip, an empty folder, and any
    symbolic link, absolute path or ``..`` entry (anywhere in the submission)."""
    modules = sorted({ex.module for ex in load_all().values()})
    dest.mkdir(parents=True, exist_ok=True)
    source = pathlib.Path(source)
    found = []
    if source.is_symlink():
        raise SubmissionError(f"the submission {source.name} is a symbolic link; hand in plain files")
    if source.is_file():
        try:
            with zipfile.ZipFile(source) as zf:
                infos = zf.infolist()
                bad = next((why for why in map(_zip_member_problem, infos) if why), None)
                if bad:
                    raise SubmissionError(f"unsafe zip: {bad}; hand in the zip that `submit` makes")
                if zf.testzip() is not None:
                    raise SubmissionError(f"corrupt zip: {zf.testzip()!r} does not match its checksum")
                files = {pathlib.PurePosixPath(i.filename): i for i in infos if not i.is_dir()}
                if not files:
                    raise SubmissionError("empty submission: the zip holds no files")
                for m in modules:
                    for candidate in (f"interp_lib/{m}.py", f"{m}.py"):
                        hits = [
                            i
                            for p, i in files.items()
                            if str(p) == candidate or str(p).endswith("/" + candidate)
                        ]
                        if hits:
                            info = sorted(hits, key=lambda i: len(i.filename))[0]
                            if info.file_size > MAX_MODULE_BYTES:
                                continue
                            (dest / f"{m}.py").write_bytes(zf.read(info))
                            found.append(m)
                            break
        except zipfile.BadZipFile as err:
            raise SubmissionError(f"corrupt zip: {err}") from None
        if not found:
            raise SubmissionError(
                "empty submission: the zip holds no exercise module "
                "(interp_lib/<topic>.py, as `submit` packs them)"
            )
        return found
    if not source.is_dir():
        raise SubmissionError(f"{source} is neither a folder nor a zip file")
    for path in [source, *source.rglob("*")]:
        if path.is_symlink():
            raise SubmissionError(
                f"the submission holds a symbolic link, {path.relative_to(source)}; hand in plain files"
            )
    base = source / "interp_lib" if (source / "interp_lib").is_dir() else source
    for m in modules:
        path = base / f"{m}.py"
        if path.is_file() and path.stat().st_size <= MAX_MODULE_BYTES:
            shutil.copyfile(path, dest / f"{m}.py")
            found.append(m)
    if not found and not any(source.iterdir()):
        raise SubmissionError("empty submission: the folder is empty")
    return found


# --------------------------------------------------------------------------- grading


def test_files(root: pathlib.Path = ROOT, lessons: set[str] | None = None) -> list[str]:
    """The exercise test files of ``lessons`` (all when None): ``tests/test_LL_*.py`` and
    instructors' hidden tests in ``tests/hidden/test_LL_*.py`` (the files check runs)."""
    return exercise_test_files(root, lessons)


def build_copies(base: pathlib.Path, isolation: S.Isolation, root: pathlib.Path = ROOT) -> dict:
    """A submission's fresh copies, made from the installed course: ``trusted`` (the tests,
    hidden ones included, with their conftest and configuration; only the grader reads
    it) and ``view`` (what the children see: the course package without its machinery,
    the public tests, the child's script, links to the student environment's packages).
    """
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "fixtures", "artifacts")
    user = S.sandbox_user() if isolation.level == S.SEPARATE_USER else None
    trusted, view = base / "trusted", base / "view"
    trusted.mkdir(mode=0o700)
    shutil.copytree(root / "tests", trusted / "tests", ignore=junk)
    shutil.copyfile(root / "pyproject.toml", trusted / "pyproject.toml")
    course = view / "course"
    shutil.copytree(
        root / "interp_lib",
        course / "interp_lib",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "course"),
    )
    (course / "tests").mkdir()
    for path in (root / "tests").glob("*.py"):
        shutil.copyfile(path, course / "tests" / path.name)
    shutil.copyfile(pathlib.Path(grading_worker.__file__), view / "worker.py")
    site = view / "site-packages"
    site.mkdir()
    for entry in S.student_site_entries():
        (site / entry.name).symlink_to(entry)
    if user is not None:
        S.share_tree(view, user)
        S.share_tree(base / "modules", user)
        os.chown(base, 0, user.pw_gid)
        base.chmod(0o750)
    return {"trusted": trusted, "view": view}


def grade(
    submission: pathlib.Path | str | None = None,
    exercises: list[str] | None = None,
    results_json: pathlib.Path | str | None = None,
    *,
    time_factor: float = 20.0,
    time_floor: float = 3.0,
    memory_mb: float = 2048.0,
    timeout: float = 1800.0,
    root: pathlib.Path = ROOT,
    quiet: bool = False,
    skip_reference: bool = False,
    isolation: S.Isolation | str | None = None,
    require_isolation: bool = False,
    jobs: int = 2,
) -> dict:
    """Grade one submission; returns the Gradescope results dict (and writes it).

    ``skip_reference`` leaves out the cross-checks against reference libraries
    (``@pytest.mark.reference``; quicker, and what a student environment can run).
    ``isolation``: a level of :mod:`.sandbox` (default: the best available);
    ``require_isolation`` refuses to grade below the separate-user level. ``jobs``: the
    lessons are split over this many trusted test processes."""
    start = time.perf_counter()
    reg = load_all()
    points = weights()
    wanted = [e for e in (exercises or list(reg)) if e in reg] if exercises else list(reg)
    unknown = set(exercises or []) - set(reg)
    if unknown:
        raise SystemExit(f"unknown exercise(s): {', '.join(sorted(unknown))}")
    iso = isolation if isinstance(isolation, S.Isolation) else S.detect(isolation)
    if iso.level == S.SEPARATE_USER:
        jobs = 1  # every process of the sandbox user is killed after each exercise
    if require_isolation and iso.level == S.PROCESS_ONLY:
        raise SystemExit(
            f"refusing to grade: the best isolation here is {iso.description}; "
            "install bubblewrap, or run the grader as root with a user "
            f"{S.SANDBOX_USER!r} (see docs/GRADING.md)"
        )
    warnings = S.exposure_warnings(iso, root)
    submission = pathlib.Path(submission) if submission else root
    base = S.private_dir("interp-submission-")
    rejected: dict[str, str] = {}
    records: list[dict] = []
    error = intake = ""
    found: list[str] = []
    try:
        (base / "modules").mkdir()
        try:
            found = collect_submission(submission, base / "modules")
        except SubmissionError as err:
            intake = str(err)
        for module in found:
            names = {i: reg[i].name for i in wanted if reg[i].module == module}
            source = (base / "modules" / f"{module}.py").read_text(encoding="utf-8", errors="replace")
            rejected.update(static_check(source, names, f"interp_lib/{module}.py"))
        # an exercise whose module is not in the submission is not run (it is a stub)
        to_run = [i for i in wanted if i not in rejected and reg[i].module in found]
        if to_run:
            copies = build_copies(base, iso, root)
            records, error = _run_trusted(
                base,
                copies,
                to_run,
                iso,
                jobs=jobs,
                time_factor=time_factor,
                time_floor=time_floor,
                memory_mb=memory_mb,
                timeout=timeout,
                skip_reference=skip_reference,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    missing = [i for i in wanted if reg[i].module not in found]
    results = build_results(
        wanted, records, rejected, points, reg, error or intake, missing=missing, intake=intake
    )
    results["execution_time"] = round(time.perf_counter() - start, 2)
    results["extra_data"]["isolation"] = {
        "level": iso.level,
        "description": iso.description,
        "warnings": warnings,
    }
    if results_json:
        path = pathlib.Path(results_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    if not quiet:
        print(f"isolation: {iso.description}")
        for w in warnings:
            print(f"warning: {w}")
        print(format_results(results))
    return results


# Seconds the exercise tests of each lesson take with the reference bodies (pytest
# --durations on a quiet machine): only a scheduling hint for splitting lessons over jobs.
LESSON_COST = {
    "00": 4,
    "01": 9,
    "02": 12,
    "03": 3,
    "04": 9,
    "05": 18,
    "06": 6,
    "07": 12,
    "08": 21,
    "09": 1,
    "10": 6,
    "11": 8,
    "12": 12,
    "13": 12,
    "14": 12,
}


def _split(ids: list[str], jobs: int) -> list[list[str]]:
    """Exercise ids in at most ``jobs`` groups of whole lessons, the most expensive lesson
    first into the cheapest group (balanced by :data:`LESSON_COST`)."""
    lessons: dict[str, list[str]] = {}
    for i in ids:
        lessons.setdefault(i.split(".")[0], []).append(i)
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(max(1, min(jobs, len(lessons))))]
    for lesson in sorted(lessons, key=lambda k: -LESSON_COST.get(k, 5)):
        k = min(range(len(groups)), key=lambda g: groups[g][0])
        cost, members = groups[k]
        groups[k] = (cost + LESSON_COST.get(lesson, 5), members + lessons[lesson])
    return [sorted(g) for _, g in groups if g]


def _run_trusted(
    base: pathlib.Path, copies: dict, ids: list[str], iso: S.Isolation, *, jobs: int, **options
) -> tuple[list[dict], str]:
    """Run the trusted tests of ``ids`` in ``jobs`` processes; a run that ends abnormally
    is retried once, then its exercises are reported as a grader problem (no records)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(group: list[str]) -> tuple[list[dict], str]:
        records, error = _run_trusted_pytest(base, copies, group, iso, **options)
        if error:
            records, error = _run_trusted_pytest(base, copies, group, iso, **options)
        return ([], f"{error} (exercises {', '.join(group)}; tried twice)") if error else (records, "")

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(one, _split(ids, jobs)))
    return [r for recs, _ in outcomes for r in recs], "; ".join(e for _, e in outcomes if e)


def _run_trusted_pytest(
    base: pathlib.Path,
    copies: dict,
    ids: list[str],
    iso: S.Isolation,
    *,
    time_factor: float,
    time_floor: float,
    memory_mb: float,
    timeout: float,
    skip_reference: bool = False,
) -> tuple[list[dict], str]:
    """Run the course's exercise tests of ``ids`` in a trusted pytest process (in the
    submission's fresh ``trusted`` copy); its per-test records come back through a pipe
    that no child process inherits, and count only when pytest ended normally."""
    read_fd, write_fd = os.pipe()
    trusted = copies["trusted"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERP_", "PYTEST_"))}
    env.update(
        {
            "INTERP_GRADE_SUBMISSION": str(base / "modules"),
            "INTERP_GRADE_EXERCISES": ",".join(ids),
            "INTERP_GRADE_VIEW": str(copies["view"]),
            "INTERP_GRADE_ISOLATION": iso.level,
            "INTERP_GRADE_TIME_FACTOR": str(time_factor),
            "INTERP_GRADE_TIME_FLOOR": str(time_floor),
            "INTERP_GRADE_MEMORY_MB": str(memory_mb),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--continue-on-collection-errors",
        "-c",
        str(trusted / "pyproject.toml"),
        "--rootdir",
        str(trusted),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:nbval",
        "-p",
        "no:xdist",
        "-p",
        "interp_lib.course.grading_remote",
        "-o",
        "addopts=",
        "--solutions=all",
        f"--results-json=/dev/fd/{write_fd}",
        "-m",
        "exercise and not reference" if skip_reference else "exercise",
        *test_files(trusted, {i.split(".")[0] for i in ids}),
    ]
    chunks: list[bytes] = []
    import threading

    def drain() -> None:
        with os.fdopen(read_fd, "rb") as fh:
            while True:
                block = fh.read(1 << 16)
                if not block:
                    return
                chunks.append(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    error = ""
    proc = subprocess.Popen(
        cmd,
        cwd=trusted,
        env=env,
        pass_fds=[write_fd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(write_fd)
    try:
        out, _ = proc.communicate(timeout=timeout)
        tail = out.decode("utf-8", "replace")[-2000:]
        if proc.returncode not in (0, 1, 5):  # 5: no tests collected
            error = f"the grader's test run ended with code {proc.returncode}: {tail[-600:]}"
    except subprocess.TimeoutExpired:
        error = f"the grader's test run took longer than {timeout:.0f} s"
    finally:
        S.kill_tree(proc.pid)
        proc.wait()
    reader.join(timeout=10)
    if error:
        return [], error
    try:
        records = json.loads(b"".join(chunks).decode()) if chunks else []
    except ValueError:
        return [], "the grader's test run wrote unreadable results"
    if not isinstance(records, list):
        return [], "the grader's test run wrote unreadable results"
    records = [r for r in records if isinstance(r, dict) and r.get("exercise") in ids]
    return records, ""


def build_results(
    ids: list[str],
    records: list[dict],
    rejected: dict[str, str],
    points: dict[str, float],
    reg: dict,
    error: str = "",
    missing: list[str] | None = None,
    intake: str = "",
) -> dict:
    """The Gradescope results dict: per exercise one visible entry and, when the
    exercise has hidden tests, one entry shown only after the due date."""
    tests = []
    total = 0.0
    summary = {}
    for ex_id in ids:
        ex = reg[ex_id]
        everything = [r for r in records if r["exercise"] == ex_id and r["outcome"] != "skipped"]
        mine = counted(everything)  # the same rule as check's (common.counted)
        excluded = [r for r in everything if r not in mine]
        weight_all = sum(r["weight"] for r in mine)
        status, message = "passing", ""
        failed = [r for r in mine if r["outcome"] != "passed"]
        if ex_id in rejected:
            status, message = "rejected", rejected[ex_id]
        elif intake:
            status, message = "not graded", f"submission refused: {intake}"
        elif missing and ex_id in missing:
            status, message = "not started", f"{ex.path} was not in the submission"
        elif not mine:
            status = "not graded"
            message = error or "no tests of this exercise could run"
        elif failed:
            status, message = exercise_status(ex, mine)
            if status == "failing":  # hidden tests' messages are not shown before the due date
                visible = [r for r in mine if not r.get("hidden")]
                shown = any(r["outcome"] != "passed" for r in visible)
                message = exercise_status(ex, visible)[1] if shown else "a hidden test failed"
        pts = points[ex_id]
        parts = [
            ("visible", [r for r in mine if not r.get("hidden")]),
            ("hidden", [r for r in mine if r.get("hidden")]),
        ]
        ex_score = 0.0
        for kind, rs in parts:
            if kind == "hidden" and not rs:
                continue
            w = sum(r["weight"] for r in rs)
            worth = pts * (w / weight_all) if weight_all else (pts if kind == "visible" else 0.0)
            got = 0.0 if ex_id in rejected else pts * share(rs, mine)
            ex_score += got
            lines = []
            if ex_id in rejected:
                lines.append(rejected[ex_id])
            for r in rs:
                name = r["nodeid"].split("::")[-1]
                lines.append(
                    f"{'PASS' if r['outcome'] == 'passed' else 'FAIL'} {name} (weight {r['weight']:g})"
                    + ("" if r["outcome"] == "passed" else f": {r['message']}")
                )
            if kind == "visible":
                for r in excluded:
                    lines.append(f"NOT COUNTED {r['nodeid'].split('::')[-1]}: {r['message']}")
                if status in ("not graded", "not started") and message and not rs:
                    lines.append(message)
            entry = {
                "name": f"{ex_id} {ex.name}"
                + (" (hidden tests)" if kind == "hidden" else "")
                + (" (bonus)" if ex.stretch else ""),
                "number": ex_id + (".h" if kind == "hidden" else ""),
                "score": round(got, 4),
                "max_score": 0.0 if ex.stretch else round(worth, 4),
                "status": "passed"
                if rs and all(r["outcome"] == "passed" for r in rs) and ex_id not in rejected
                else "failed",
                "output": "\n".join(lines)[:20000],
                "visibility": "after_due_date" if kind == "hidden" else "visible",
            }
            tests.append(entry)
        total += ex_score
        summary[ex_id] = {
            "name": ex.name,
            "lesson": ex.lesson,
            "stretch": ex.stretch,
            "points": pts,
            "score": ex_score,
            "status": status,
            "message": message,
        }
    out = {
        "score": round(total, 4),
        "tests": tests,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"summary": summary},
    }
    if intake:
        out["output"] = f"Submission refused: {intake}"
    elif error:
        out["output"] = f"Grader problem (not your code): {error}"
    return out


def format_results(results: dict) -> str:
    table = format_table(results["extra_data"]["summary"])
    return table + (f"\n{results['output']}" if results.get("output") else "")


# --------------------------------------------------------------------------- batch


def grade_batch(
    folder: pathlib.Path,
    out_dir: pathlib.Path | None = None,
    exercises: list[str] | None = None,
    workers: int = 2,
    **options,
) -> pathlib.Path:
    """Grade every submission (sub-folder or zip) in ``folder`` into ``grades.csv`` plus
    one results.json each; a broken submission never stops the batch."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    folder = pathlib.Path(folder)
    iso = options.pop("isolation", None)
    options["isolation"] = iso = iso if isinstance(iso, S.Isolation) else S.detect(iso)
    if iso.level == S.SEPARATE_USER:
        workers = 1  # every process of the sandbox user is killed after each exercise
    options.setdefault("jobs", 1 if workers > 1 or iso.level == S.SEPARATE_USER else 2)
    out_dir = pathlib.Path(out_dir or folder / "graded")
    out_dir.mkdir(parents=True, exist_ok=True)
    subs = sorted(
        p
        for p in folder.iterdir()
        if (p.is_dir() and p.resolve() != out_dir.resolve()) or p.suffix == ".zip" or p.is_symlink()
    )
    rows: dict[str, dict] = {}

    def one(path: pathlib.Path) -> tuple[str, dict]:
        name = path.stem if path.suffix == ".zip" else path.name
        try:
            res = grade(path, exercises, out_dir / name / "results.json", quiet=True, **options)
            row = {"submission": name, "score": res["score"], "error": res.get("output", "")}
            row.update({k: round(v["score"], 2) for k, v in res["extra_data"]["summary"].items()})
        except Exception as err:  # noqa: BLE001 - one broken submission never stops the batch
            row = {"submission": name, "score": 0.0, "error": f"{type(err).__name__}: {err}"}
        return name, row

    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, p) for p in subs]
        done = as_completed(futures)
        if tqdm is not None:
            done = tqdm(done, total=len(futures), desc="grading", unit="submission")
        for fut in done:
            name, row = fut.result()
            rows[name] = row
    ids = exercises or list(load_all())
    path = out_dir / "grades.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["submission", "score", *ids, "error"], extrasaction="ignore")
        writer.writeheader()
        for name in sorted(rows):
            writer.writerow(rows[name])
    return path


# --------------------------------------------------------------------------- Gradescope

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this in a fresh container per submission: source/ holds the course,
# submission/ the student's files, results/results.json is what Gradescope reads.
# AUTOGRADER_ROOT (default /autograder) and AUTOGRADER_PYTHON (default python3) make it
# testable outside Gradescope.
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-python3}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
"$PY" -m interp_lib grade --submission "$ROOT/submission" \\
    --results "$ROOT/results/results.json" ${GRADE_ARGS:-}
if [ ! -s "$ROOT/results/results.json" ]; then
    echo '{"score": 0, "output": "The autograder failed before grading; please tell the course staff."}' \\
        > "$ROOT/results/results.json"
fi
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope image setup (runs once when the autograder is built).
set -eu
cd /autograder/source
# The grader's isolation (docs/GRADING.md): bubblewrap where the container allows user
# namespaces; otherwise a dedicated unprivileged user who cannot read the course, the
# reference solutions or the reference libraries.
apt-get update -qq && apt-get install -y -qq bubblewrap || echo "bubblewrap not installed"
id interp-sandbox >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin interp-sandbox
python3 -m pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
python3 -m pip install --quiet --no-deps -e .
chmod -R o-rwx /autograder/source/solutions /autograder/source/tests
for lib in captum zennit torchattacks cleanlab; do
    dir=$(python3 -c "import importlib.util as u, os; s = u.find_spec('$lib'); print(os.path.dirname(s.origin) if s else '')")
    [ -n "$dir" ] && chmod -R o-rwx "$dir"
done
py=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))'); d=$(dirname "$py")
while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
"""

# Dev extras that the trusted grader does not need (browser, hub and build tooling).
NOT_FOR_GRADING = {
    "pytest-xdist",
    "playwright",
    "jupyterhub",
    "nbgitpuller",
    "jupyter-repo2docker",
    "requests",
    "websocket-client",
    "ruff",
}


def _pinned_requirements() -> list[str]:
    import importlib.metadata as md

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = list(project.get("dependencies", [])) + list(
        project.get("optional-dependencies", {}).get("dev", [])
    )
    out = []
    for spec in names:
        name = spec.split(";")[0].split("[")[0]
        for op in ("==", ">=", "<=", "~=", ">", "<"):
            name = name.split(op)[0]
        name = name.strip()
        if name in NOT_FOR_GRADING:
            continue
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            continue
        version = version.split("+")[0]
        out.append(f"{name}=={version}")
    return out


def build_gradescope_bundle(out: pathlib.Path | str, root: pathlib.Path = ROOT) -> pathlib.Path:
    """A Gradescope autograder zip: setup.sh, run_autograder, pinned requirements and
    the course (interp_lib, solutions without answer keys, the exercise tests)."""
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def add_tree(zf: zipfile.ZipFile, folder: str, skip=("__pycache__", "answers", "fixtures")) -> None:
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not set(rel.parts) & set(skip) and path.suffix != ".pyc":
                zf.write(path, str(rel))

    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("run_autograder", RUN_AUTOGRADER), ("setup.sh", SETUP_SH)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
        zf.writestr("requirements.txt", "\n".join(_pinned_requirements()) + "\n")
        add_tree(zf, "interp_lib")
        add_tree(zf, "solutions")
        for path in ["tests/conftest.py", "tests/sanitize.cfg", *test_files(root)]:
            if (root / path).exists():
                zf.write(root / path, path)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).exists():
                zf.write(root / name, name)
    return out


# --------------------------------------------------------------------------- submit


def submit(
    out: pathlib.Path | str | None = None, run_check: bool = True, root: pathlib.Path = ROOT
) -> pathlib.Path:
    """Zip the student's exercise modules (and nothing else) with a manifest."""
    import hashlib

    reg = load_all()
    modules = sorted({ex.module for ex in reg.values()})
    summary = None
    if run_check:
        from .common import progress

        print("Running the tests of the exercises you have written ...", flush=True)
        summary = progress()
    out = pathlib.Path(out) if out else root / "submission.zip"
    manifest = {
        "course": "interp-course",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "files": {},
        "check": {k: v["status"] for k, v in summary.items()} if summary else None,
    }
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in modules:
            path = root / "interp_lib" / f"{m}.py"
            data = path.read_bytes()
            zf.writestr(f"interp_lib/{m}.py", data)
            manifest["files"][f"interp_lib/{m}.py"] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "exercises": [f"{e.id} {e.name}" for e in reg.values() if e.module == m],
            }
        zf.writestr("MANIFEST.json", json.dumps(manifest, indent=1))
    if summary:
        from .common import format_table

        print(format_table(summary))
    print(f"Packed {len(modules)} exercise modules into {out}:")
    for f, info in manifest["files"].items():
        print(f"  {f}  ({info['bytes']} bytes; {', '.join(info['exercises'])})")
    print("  MANIFEST.json")
    print("Nothing else was packed (no notebooks, data or other files). Hand in this zip file.")
    return out


# --------------------------------------------------------------------------- CLI


def add_commands(sub) -> None:
    p = sub.add_parser("grade", help="grade a submission (instructors): results.json + table")
    p.add_argument("--submission", default=None, help="folder or zip (default: this checkout)")
    p.add_argument("--exercises", default=None, help="comma-separated ids (default: all)")
    p.add_argument("--results", default="results.json", help="where to write results.json")
    p.add_argument("--batch", default=None, help="grade every submission in this folder -> grades.csv")
    p.add_argument("--workers", type=int, default=2, help="parallel submissions with --batch")
    p.add_argument("--time-factor", type=float, default=20.0, help="time limit: x reference time")
    p.add_argument("--memory-mb", type=float, default=2048.0, help="resident memory limit per child")
    p.add_argument(
        "--gradescope-bundle",
        default=None,
        metavar="OUT.zip",
        help="build a Gradescope autograder zip instead of grading",
    )
    p.add_argument(
        "--skip-reference",
        action="store_true",
        help="leave out the cross-checks against reference libraries (quicker)",
    )
    p.add_argument(
        "--isolation",
        choices=["sandbox", "separate-user", "process"],
        default=None,
        help="isolation level for student code (default: the best available)",
    )
    p.add_argument(
        "--require-isolation", action="store_true", help="refuse to grade below the separate-user level"
    )
    p.add_argument("--jobs", type=int, default=2, help="trusted test processes per submission")
    p.set_defaults(func=cmd_grade)
    p = sub.add_parser("submit", help="zip your exercise modules for hand-in")
    p.add_argument("--out", default=None, help="zip file (default: submission.zip)")
    p.add_argument("--no-check", action="store_true", help="do not run the tests first")
    p.set_defaults(func=cmd_submit)


def cmd_grade(args: argparse.Namespace) -> int:
    ids = [t.strip() for t in args.exercises.split(",") if t.strip()] if args.exercises else None
    if args.gradescope_bundle:
        path = build_gradescope_bundle(args.gradescope_bundle)
        print(
            f"wrote the Gradescope autograder {path} ({path.stat().st_size / 2**20:.1f} MiB): "
            "upload it as the assignment's autograder (zip file)"
        )
        return 0
    level = {"sandbox": S.SANDBOX, "separate-user": S.SEPARATE_USER, "process": S.PROCESS_ONLY}.get(
        args.isolation or ""
    )
    iso = S.detect(level)
    if args.isolation and iso.level != level:
        raise SystemExit(f"--isolation {args.isolation} is not available here: {iso.reason}")
    options = dict(
        time_factor=args.time_factor,
        memory_mb=args.memory_mb,
        skip_reference=args.skip_reference,
        isolation=iso,
        require_isolation=args.require_isolation,
    )
    if args.batch:
        path = grade_batch(pathlib.Path(args.batch), exercises=ids, workers=args.workers, **options)
        print(f"wrote {path}")
        return 0
    grade(args.submission, ids, args.results, jobs=args.jobs, **options)
    print(f"wrote {args.results}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    submit(args.out, run_check=not args.no_check)
    return 0
