"""The mutation tool (interp_lib/course/mutants.py) and its catalogue (tests/mutants/catalogue.py).

The full run (``python -m interp_lib mutants``, minutes) is for maintainers; here: the
catalogue is well formed and applies to the current solutions/, and a small sample of
mutants, plus the sanity mutant, goes through the tool and is caught.
"""

import collections

import pytest

from interp_lib.course import mutants as M
from interp_lib.exercises import load_all

# Fast ones (their lesson files collect and fail quickly), from six lessons.
SAMPLE = [
    "03.1-mask-inverted",
    "05.1-reversed",
    "06.1-power-beta",
    "07.1-scatter-overwrite",
    "09.1-step-sign",
    "10.2-sign",
]


@pytest.fixture(scope="module")
def catalogue():
    return M.load_catalogue()


def test_catalogue_applies_exactly_once(catalogue):
    problems = M.check_catalogue(catalogue)
    assert not problems, "\n".join(problems)


def test_catalogue_covers_every_exercise(catalogue):
    assert len(catalogue) >= 80
    per_exercise = collections.Counter(m.exercise for m in catalogue)
    thin = {ex_id: per_exercise[ex_id] for ex_id in load_all() if per_exercise[ex_id] < 2}
    assert not thin, f"fewer than 2 mutants: {thin}"
    assert len({m.id for m in catalogue}) == len(catalogue)


def test_stale_entry_is_reported_not_caught():
    stale = M.Mutant("02.2", "gone", "sign", "this text is not in solutions/attacks.py", "x")
    assert any("stale" in p for p in M.check_catalogue([stale]))
    record = M.run_mutant(stale)
    assert record["status"] == "stale" and not record["caught"]


def test_sample_of_mutants_is_caught(catalogue):
    by_id = {m.id: m for m in catalogue}
    # the sanity mutant's marker error proves that the mutated copy, not the tree, ran
    sanity = M.check_sanity()
    records = M.run_mutants([by_id[i] for i in SAMPLE], workers=2)
    assert sanity["caught"] and M.SANITY_MARKER in sanity["message"], sanity
    missed = [(r["id"], r["status"], r["message"]) for r in records if not r["caught"]]
    assert not missed, missed
    assert all(r["caught_by"].startswith("tests/test_") for r in records)
