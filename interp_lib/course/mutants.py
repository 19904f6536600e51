"""``python -m interp_lib mutants``: do the exercise tests catch plausible student bugs?

Maintainers only. The catalogue (``tests/mutants/catalogue.py``, data: one entry per
mutant with the exercise id, a short name, the kind of bug and an exact ``old`` -> ``new``
text replacement in the reference body in ``solutions/<module>.py``) lists bugs a student
could plausibly write: sign flips, off-by-one steps, a wrong axis, a missing detach, an
ignored option, a target replaced by the predicted class, a wrong normalisation, ...

For each mutant the tool copies ``solutions/`` into a temporary directory, applies the one
replacement there (the tree is never edited) and runs that exercise's own tests with the
mutated copy first on the import path::

    pytest tests/test_LL_*.py tests/hidden/test_LL_*.py -m "exercise and not reference"
           --solutions=all --exercises=LL.N -x

The reference-library cross-checks are left out on purpose: every behaviour they pin must
be pinned by a library-free test too, so a mutant they alone would catch counts as
survived. A mutant is *caught* when a test fails, *survived* when all pass, *stale* when
its ``old`` text no longer occurs exactly once in the current ``solutions/<module>.py``
(the reference changed under it: fix the entry), and *error* when pytest could not run
(no tests collected, a timeout, an internal error).

``solutions`` is a top-level package of the editable install, and ``python -m``/``-c``
put the working directory (the repository root) first on ``sys.path``: the child
therefore starts with a two-line bootstrap that puts the temporary copy at
``sys.path[0]`` and imports ``solutions`` from there before pytest starts (later imports
of ``solutions.<module>`` follow that package's ``__path__``); it refuses to run when
the package came from anywhere else. ``PYTHONPATH`` points to the copy as well, for any
process the tests start. A built-in sanity mutant, whose body raises a marker error, runs
first: the run stops unless a test fails with that very marker.

    python -m interp_lib mutants                # the whole catalogue, 2 workers
    python -m interp_lib mutants 02.3 08.1-zplus-bias --workers 1
    python -m interp_lib mutants --list         # the catalogue and whether each entry applies

The full run writes ``tests/mutants/report.json`` (per mutant: id, exercise, status,
caught, the test that caught it, seconds) and prints a table per exercise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import runpy
import shutil
import subprocess
import sys
import tempfile
import time

from .common import ROOT

CATALOGUE = ROOT / "tests" / "mutants" / "catalogue.py"
REPORT = ROOT / "tests" / "mutants" / "report.json"
SOLUTIONS = ROOT / "solutions"
SANITY_MARKER = "interp-course mutants: sanity mutant ran"
KINDS = (
    "outcome-only",
    "two-runs",
    "predicted-target",
    "loose-tolerance",
    "tie-edge",
    "sign",
    "off-by-one",
    "axis",
    "detach",
    "in-place",
    "ignored-option",
    "normalisation",
    "formula",
    "draw-order",
)

# Put the temporary copy first and import `solutions` from it before pytest starts.
_BOOTSTRAP = (
    "import sys; tmp = sys.argv.pop(1); sys.path.insert(0, tmp); import solutions, os\n"
    "if not os.path.realpath(solutions.__file__).startswith(os.path.realpath(tmp) + os.sep):\n"
    "    raise SystemExit('mutants: solutions imported from ' + solutions.__file__ + ', not ' + tmp)\n"
    "import pytest; sys.exit(pytest.main(sys.argv[1:]))\n"
)


@dataclasses.dataclass(frozen=True)
class Mutant:
    exercise: str  # "02.3"
    name: str  # "no-projection"
    kind: str  # one of KINDS
    old: str  # exact text in solutions/<module>.py (must occur exactly once)
    new: str
    why: str = ""  # the student's reasoning that leads to the bug (optional)

    @property
    def id(self) -> str:
        return f"{self.exercise}-{self.name}"


class Stale(ValueError):
    """The mutant's ``old`` text does not occur exactly once in the current source."""


def load_catalogue(path: pathlib.Path | str = CATALOGUE) -> list[Mutant]:
    """The mutants of the catalogue file (a Python file defining ``MUTANTS``, a list of dicts)."""
    entries = runpy.run_path(str(path))["MUTANTS"]
    return [Mutant(**entry) for entry in entries]


def _exercises() -> dict:
    from ..exercises import load_all

    return load_all()


def source_path(mutant: Mutant, root: pathlib.Path = SOLUTIONS) -> pathlib.Path:
    return root / f"{_exercises()[mutant.exercise].module}.py"


def mutated_source(mutant: Mutant, root: pathlib.Path = SOLUTIONS) -> str:
    """The text of ``solutions/<module>.py`` with the replacement applied (raises :class:`Stale`)."""
    text = source_path(mutant, root).read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        raise Stale(
            f"{mutant.id}: the old text occurs {count} times in "
            f"solutions/{source_path(mutant, root).name} (must be exactly once)"
        )
    return text.replace(mutant.old, mutant.new, 1)


def check_catalogue(mutants: list[Mutant], root: pathlib.Path = SOLUTIONS) -> list[str]:
    """Problems with the catalogue: unknown exercises or kinds, duplicate ids, stale or
    no-op replacements. An empty list means well formed."""
    reg = _exercises()
    problems, seen = [], set()
    for m in mutants:
        if m.exercise not in reg:
            problems.append(f"{m.id}: no exercise {m.exercise}")
            continue
        if m.kind not in KINDS:
            problems.append(f"{m.id}: unknown kind {m.kind!r} (one of {', '.join(KINDS)})")
        if m.id in seen:
            problems.append(f"{m.id}: duplicate id")
        seen.add(m.id)
        if m.old == m.new:
            problems.append(f"{m.id}: old and new are the same")
        try:
            mutated_source(m, root)
        except Stale as err:
            problems.append(f"stale: {err}")
    return problems


def sanity_mutant() -> Mutant:
    """A mutant every run must catch: ``predict`` raises a marker error (proves the copy ran)."""
    return Mutant(
        "00.1",
        "sanity-raises",
        "formula",
        "    with torch.no_grad():\n",
        f"    raise RuntimeError({SANITY_MARKER!r})\n    with torch.no_grad():\n",
    )


def test_files(exercise: str) -> list[str]:
    """The exercise's lesson test files (tests/test_LL_*.py and tests/hidden/test_LL_*.py)."""
    lesson = exercise.split(".")[0]
    files = sorted((ROOT / "tests").glob(f"test_{lesson}_*.py")) + sorted(
        (ROOT / "tests" / "hidden").glob(f"test_{lesson}_*.py")
    )
    return [str(p.relative_to(ROOT)) for p in files]


def run_mutant(mutant: Mutant, timeout: float = 600.0) -> dict:
    """Apply one mutant in a temporary copy of solutions/ and run its exercise's tests."""
    start = time.perf_counter()
    record = {
        "id": mutant.id,
        "exercise": mutant.exercise,
        "name": mutant.name,
        "kind": mutant.kind,
        "status": "error",
        "caught": False,
        "caught_by": None,
        "message": "",
        "seconds": 0.0,
    }
    try:
        text = mutated_source(mutant)
    except Stale as err:
        record.update(status="stale", message=str(err))
        return record
    module = source_path(mutant).name
    with tempfile.TemporaryDirectory(prefix="interp-mutant-") as tmp:
        copy = pathlib.Path(tmp) / "solutions"
        shutil.copytree(SOLUTIONS, copy, ignore=shutil.ignore_patterns("__pycache__", "answers"))
        (copy / module).write_text(text, encoding="utf-8")
        results = pathlib.Path(tmp) / "results.json"
        env = dict(os.environ)
        env.pop("INTERP_LIB_SOLUTIONS", None)
        # each child is a test session of its own: tests/conftest.py kills, at a session's
        # end, every process carrying that session's mark -- a sibling mutant's run included
        env.pop("INTERP_TEST_SESSION", None)
        env["PYTHONPATH"] = os.pathsep.join([tmp, *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        cmd = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            tmp,
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbval",
            "-o",
            "addopts=",
            f"--results-json={results}",
            "-m",
            "exercise and not reference",
            "--solutions=all",
            f"--exercises={mutant.exercise}",
            *test_files(mutant.exercise),
        ]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            record.update(
                message=f"timed out after {timeout:.0f} s", seconds=round(time.perf_counter() - start, 2)
            )
            return record
        records = json.loads(results.read_text()) if results.exists() else []
    failed = [r for r in records if r["outcome"] == "failed"]
    if proc.returncode == 1 and failed:
        record.update(
            status="caught", caught=True, caught_by=failed[0]["nodeid"], message=failed[0]["message"][:300]
        )
    elif proc.returncode == 0 and records:
        record.update(status="survived", message=f"{len(records)} tests passed")
    else:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        record.update(message=f"pytest exit code {proc.returncode}: {' | '.join(tail)}"[:300])
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def check_sanity(timeout: float = 600.0) -> dict:
    """Run the sanity mutant; raise RuntimeError unless it was caught with its marker."""
    record = run_mutant(sanity_mutant(), timeout)
    if not (record["caught"] and SANITY_MARKER in record["message"]):
        raise RuntimeError(
            "the sanity mutant was not caught with its marker: the mutated copy of "
            f"solutions/ did not run ({record['status']}: {record['message']})"
        )
    return record


def run_mutants(mutants: list[Mutant], workers: int = 2, timeout: float = 600.0, progress=None) -> list[dict]:
    """Run mutants on a small pool of worker threads (each drives one pytest process)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run_mutant, m, timeout) for m in mutants]
        for future in concurrent.futures.as_completed(futures):
            if progress is not None:
                progress(future.result())
        return [f.result() for f in futures]


def summarise(records: list[dict]) -> dict[str, dict]:
    """Per exercise: counts of caught / survived / stale / error."""
    reg = _exercises()
    out: dict[str, dict] = {}
    for ex_id, ex in reg.items():
        mine = [r for r in records if r["exercise"] == ex_id]
        if not mine:
            continue
        out[ex_id] = {
            "name": ex.name,
            "mutants": len(mine),
            **{s: sum(r["status"] == s for r in mine) for s in ("caught", "survived", "stale", "error")},
            "survivors": [r["id"] for r in mine if r["status"] != "caught"],
        }
    return out


def format_table(summary: dict[str, dict]) -> str:
    rows = [
        f"{'id':6} {'exercise':26} {'mutants':>7} {'caught':>6} {'survived':>8} {'stale':>5} {'error':>5}  not caught"
    ]
    for ex_id, s in summary.items():
        rows.append(
            f"{ex_id:6} {s['name']:26} {s['mutants']:7d} {s['caught']:6d} {s['survived']:8d} "
            f"{s['stale']:5d} {s['error']:5d}  {', '.join(x.split('-', 1)[1] for x in s['survivors'])}"
        )
    total = sum(s["mutants"] for s in summary.values())
    caught = sum(s["caught"] for s in summary.values())
    rows.append(
        f"caught {caught}/{total} ({100 * caught / total if total else 0:.1f} %) without the "
        "reference-library tests"
    )
    return "\n".join(rows)


def select(mutants: list[Mutant], only: list[str]) -> list[Mutant]:
    """Mutants whose id or exercise id is in ``only`` (all when empty)."""
    if not only:
        return mutants
    chosen = [m for m in mutants if m.id in only or m.exercise in only]
    unknown = [o for o in only if not any(o in (m.id, m.exercise) for m in mutants)]
    if unknown:
        raise SystemExit(f"no mutant or exercise {', '.join(unknown)} in the catalogue")
    return chosen


def cmd_mutants(args: argparse.Namespace) -> int:
    mutants = select(load_catalogue(args.catalogue), args.only)
    if args.list:
        for m in mutants:
            try:
                mutated_source(m)
                state = "ok"
            except Stale:
                state = "STALE"
            print(f"{state:5} {m.id:40} {m.kind}")
        return 0
    start = time.perf_counter()
    sanity = check_sanity(args.timeout)
    print(f"sanity mutant caught by {sanity['caught_by']} ({sanity['seconds']:.1f} s): the mutated copy runs")

    def progress(r):
        print(
            f"  {r['status']:8} {r['id']:40} {r['seconds']:6.1f} s  {r['caught_by'] or r['message']}"[:160],
            flush=True,
        )

    records = run_mutants(mutants, workers=args.workers, timeout=args.timeout, progress=progress)
    seconds = time.perf_counter() - start
    summary = summarise(records)
    print(format_table(summary))
    print(f"{len(records)} mutants in {seconds:.0f} s with {args.workers} workers")
    if args.report != "-":
        report = pathlib.Path(args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        caught = sum(r["caught"] for r in records)
        report.write_text(
            json.dumps(
                {
                    "command": "python -m interp_lib mutants " + " ".join(args.only),
                    "selection": '-m "exercise and not reference" --solutions=all --exercises=<id> -x',
                    "workers": args.workers,
                    "seconds": round(seconds, 1),
                    "total": len(records),
                    "caught": caught,
                    "caught_percent": round(100 * caught / len(records), 1) if records else 0.0,
                    "per_exercise": summary,
                    "mutants": records,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"report: {report}")
    return 0 if all(r["status"] != "stale" for r in records) else 1


def add_command(sub) -> None:
    p = sub.add_parser("mutants", help="plausible student bugs vs the exercise tests (maintainers)")
    p.add_argument("only", nargs="*", help="mutant ids or exercise ids (default: the whole catalogue)")
    p.add_argument("--workers", type=int, default=2, help="mutants run at the same time (default 2)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    p.add_argument("--catalogue", default=str(CATALOGUE))
    p.add_argument("--report", default=str(REPORT), help="JSON report path ('-': none)")
    p.add_argument("--list", action="store_true", help="list the catalogue and whether each entry applies")
    p.set_defaults(func=cmd_mutants)
