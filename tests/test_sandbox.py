"""The grader against hostile submissions, at each isolation level that protects (sandbox,
separate user): every attack class of docs/GRADING.md, several variants each
(tests/fixtures/attacks/). Each submission attacks one exercise (00.1 or 01.1) and keeps
the reference body of the other: the attacked exercise must score 0, the other full marks,
and nothing may change the grader, the checkout or a later submission's grade.

A level that this machine cannot provide is skipped on a laptop and fails in CI
(``.ci/run`` installs bubblewrap and creates the sandbox user).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import time
import uuid
import zipfile

import pytest
from grading_helpers import ROOT, make_submission, schema_validate

from interp_lib.course import grading
from interp_lib.course import sandbox as S
from interp_lib.exercises import weights

GRADED = ["00.1", "01.1"]

# attack class -> variants (fixture folder under tests/fixtures/attacks, attacked exercise)
ATTACKS = {
    "code in the trusted process": [
        ("trusted_module", "01.1"),
        ("trusted_exception", "01.1"),
        ("trusted_pickle", "01.1"),
    ],
    "forged results": [("forged_proc", "01.1"), ("forged_fds", "01.1"), ("forged_kill", "01.1")],
    "tampering that outlives the submission": [("tamper_conftest", "01.1"), ("tamper_checkout", "01.1")],
    "reading the reference": [("read_editable", "01.1"), ("read_walk", "01.1"), ("read_root", "01.1")],
    "a reference library by a computed name": [
        ("import_computed", "01.1"),
        ("import_chr", "01.1"),
        ("import_syspath", "01.1"),
    ],
    "a daemon": [("daemon_fork", "01.1"), ("daemon_popen", "01.1"), ("daemon_thread", "01.1")],
    "in-place mutation": [("inplace_numpy", "01.1"), ("inplace_input", "00.1"), ("inplace_kill", "00.1")],
}
EXPECTED_WORDS = {
    "inplace_numpy": "in place",
    "inplace_input": "`x` in place",
    "inplace_kill": "ended its own process",
}
REFERENCE_LIBRARIES = ("captum", "zennit", "torchattacks", "cleanlab")
# The separate-user level grades one at a time (slower): the first variant of each class,
# and the variants its set-up (_locked_down) is there for.
SEPARATE_USER_VARIANTS = {v[0][0] for v in ATTACKS.values()} | {"read_root", "import_syspath", "forged_kill"}


def _variants(level: str) -> dict[str, list[tuple[str, str]]]:
    if level == S.SANDBOX:
        return ATTACKS
    return {k: [v for v in vs if v[0] in SEPARATE_USER_VARIANTS] for k, vs in ATTACKS.items()}


def _require(level: str) -> S.Isolation:
    iso = S.detect(level)
    if iso.level != level:
        message = f"isolation level {level!r} is not available here: {iso.reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI must provide it: .ci/run installs bubblewrap and creates the user)")
        pytest.skip(message)
    return iso


@contextlib.contextmanager
def _locked_down(iso: S.Isolation):
    """The separate-user level's documented set-up: instructor secrets and the reference
    libraries not readable by other users (the root grader still reads them)."""
    if iso.level != S.SEPARATE_USER:
        yield
        return
    import importlib.util

    paths = [ROOT / "solutions", ROOT / "tests" / "hidden"]
    for name in REFERENCE_LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths += [pathlib.Path(p) for p in spec.submodule_search_locations]
    modes = {p: p.stat().st_mode for p in paths if p.exists()}
    try:
        for p in modes:
            p.chmod(modes[p] & ~0o007)
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def _fingerprint() -> dict[str, str]:
    """What an attack on the checkout would change: the tests, the course package."""
    out = {}
    for folder in ("tests", "interp_lib", "solutions"):
        for p in sorted((ROOT / folder).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".cfg", ".toml", ".pt"):
                out[str(p.relative_to(ROOT))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if token.encode() in fh.read():
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module", params=[S.SANDBOX, S.SEPARATE_USER], ids=["sandbox", "separate-user"])
def attacked(request, tmp_path_factory):
    """Grade every attack (and, after the tampering ones, an honest wrong submission) in
    one batch at one isolation level; returns what the tests below look at."""
    iso = _require(request.param)
    tmp = tmp_path_factory.mktemp("attacks")
    mark = tmp / "mark"
    mark.mkdir()
    mark.chmod(0o777)
    token = f"interp-attack-{uuid.uuid4().hex}"
    values = {"@@ROOT@@": str(ROOT), "@@MARK@@": str(mark), "@@TOKEN@@": token}
    subs = tmp / "subs"
    for variants in _variants(iso.level).values():
        for name, _ in variants:
            make_submission(subs / name, f"attacks/{name}", values=values)
    make_submission(subs / "zz_honest_wrong", "attacks/honest_wrong")
    alone = make_submission(tmp / "honest_alone", "attacks/honest_wrong")
    before = _fingerprint()
    with _locked_down(iso):
        baseline = grading.grade(
            alone, GRADED, quiet=True, skip_reference=True, isolation=iso, time_floor=2.0
        )
        csv_path = grading.grade_batch(
            subs, tmp / "out", exercises=GRADED, workers=2, skip_reference=True, isolation=iso, time_floor=2.0
        )
    returned = time.monotonic()
    results = {p.parent.name: json.loads(p.read_text()) for p in (tmp / "out").glob("*/results.json")}
    written = {name: (tmp / "out" / name / "results.json").read_bytes() for name in results}
    time.sleep(max(0.0, 2.5 - (time.monotonic() - returned)))  # a daemon's moment to strike
    return {
        "iso": iso,
        "results": results,
        "written": written,
        "baseline": baseline,
        "out": tmp / "out",
        "before": before,
        "after": _fingerprint(),
        "mark": mark,
        "token": token,
        "survivors": _processes_with(token),
        "csv": csv_path,
    }


def _check_variant(attacked, name: str, target: str) -> dict:
    res = attacked["results"][name]
    schema_validate(res)
    summary = res["extra_data"]["summary"]
    points = weights()
    other = next(e for e in GRADED if e != target)
    assert summary[target]["score"] == 0, (name, summary[target])
    assert summary[other]["status"] == "passing" and summary[other]["score"] == pytest.approx(
        points[other], abs=1e-3
    ), (name, summary[other])
    assert not res.get("output"), (name, res.get("output"))  # no grader problem, no partial records
    assert res["score"] == pytest.approx(points[other], abs=1e-3)
    assert res["extra_data"]["isolation"]["level"] == attacked["iso"].level
    return summary[target]


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_scores_zero(attacked, attack):
    for name, target in _variants(attacked["iso"].level)[attack]:
        s = _check_variant(attacked, name, target)
        if name in EXPECTED_WORDS:
            assert EXPECTED_WORDS[name] in s["message"], (name, s["message"])


def test_no_student_code_ran_in_the_grader(attacked):
    assert not list(attacked["mark"].iterdir()), "student code ran outside its sandbox"
    for name in ("evil_pwn.py", "pwn_exc.py", "interp_lib/evil_pwn.py", "tests/pwn_exc.py"):
        assert not (ROOT / name).exists(), name


def test_checkout_is_untouched_and_later_grades_are_honest(attacked):
    assert attacked["after"] == attacked["before"], "an attack changed the course checkout"
    assert not (ROOT / "tests" / "hidden" / "test_01_pwn.py").exists()
    honest = attacked["results"]["zz_honest_wrong"]["extra_data"]["summary"]
    baseline = attacked["baseline"]["extra_data"]["summary"]
    assert honest["01.1"]["score"] == pytest.approx(baseline["01.1"]["score"])
    assert baseline["01.1"]["status"] == "failing" and baseline["01.1"]["score"] < weights()["01.1"]


def test_nothing_outlives_the_grader(attacked):
    assert attacked["survivors"] == [], "a process started by student code is still running"
    for name, data in attacked["written"].items():
        assert (attacked["out"] / name / "results.json").read_bytes() == data, (
            f"{name}: results.json rewritten"
        )
    assert not (attacked["mark"] / "daemon-alive").exists()


def test_results_record_the_isolation_level(attacked):
    for res in attacked["results"].values():
        iso = res["extra_data"]["isolation"]
        assert iso["level"] == attacked["iso"].level and iso["description"]
    if attacked["iso"].level == S.SANDBOX:
        assert all(not res["extra_data"]["isolation"]["warnings"] for res in attacked["results"].values())


def test_fixtures_do_not_share_state_between_exercises(tmp_path):
    """Exercise 00.1 corrupts the session's model in place; 02.1, graded after it in the
    same run on the same fixture, keeps full marks."""
    iso = S.detect()
    if iso.level == S.PROCESS_ONLY:
        pytest.skip(iso.reason)
    sub = make_submission(tmp_path / "sub", "attacks/inplace_model", modules=("basics", "labels", "attacks"))
    res = grading.grade(
        sub, ["00.1", "02.1"], quiet=True, skip_reference=True, isolation=iso, time_floor=2.0, jobs=1
    )
    summary = res["extra_data"]["summary"]
    assert summary["02.1"]["status"] == "passing", summary["02.1"]
    assert summary["00.1"]["score"] < weights()["00.1"]


# --------------------------------------------------------------------------- intake


def _zip(path: pathlib.Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return path


def test_intake_refuses_links_unsafe_paths_and_says_what_is_wrong(tmp_path):
    good = make_submission(tmp_path / "good")
    module = (good / "interp_lib" / "labels.py").read_bytes()
    cases = {}
    # a folder whose interp_lib/ is a link to the reference solutions
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "interp_lib").symlink_to(ROOT / "solutions")
    cases["linked"] = (tmp_path / "linked", "symbolic link")
    # a module file that is a link
    (tmp_path / "filelink" / "interp_lib").mkdir(parents=True)
    (tmp_path / "filelink" / "interp_lib" / "labels.py").symlink_to(ROOT / "solutions" / "labels.py")
    cases["filelink"] = (tmp_path / "filelink", "symbolic link")
    # the submission itself a link
    (tmp_path / "whole").symlink_to(good)
    cases["whole"] = (tmp_path / "whole", "symbolic link")
    cases["zip-link"] = (
        _zip(
            tmp_path / "l.zip",
            {"interp_lib/basics.py": b"x = 1\n"},
            {"interp_lib/labels.py": str(ROOT / "solutions" / "labels.py")},
        ),
        "symbolic link",
    )
    cases["zip-dotdot"] = (_zip(tmp_path / "d.zip", {"interp_lib/../../labels.py": module}), "'..'")
    cases["zip-absolute"] = (_zip(tmp_path / "a.zip", {"/tmp/interp_lib/labels.py": module}), "absolute path")
    truncated = _zip(tmp_path / "t.zip", {"interp_lib/labels.py": module * 20}).read_bytes()
    (tmp_path / "trunc.zip").write_bytes(truncated[: len(truncated) // 2])
    cases["zip-truncated"] = (tmp_path / "trunc.zip", "corrupt zip")
    (tmp_path / "garbage.zip").write_bytes(b"PK\x03\x04 not really a zip")
    cases["zip-garbage"] = (tmp_path / "garbage.zip", "corrupt zip")
    cases["zip-empty"] = (_zip(tmp_path / "e.zip", {}), "empty submission")
    cases["zip-unrelated"] = (_zip(tmp_path / "u.zip", {"notes.txt": b"hello"}), "empty submission")
    (tmp_path / "emptydir").mkdir()
    cases["empty-folder"] = (tmp_path / "emptydir", "empty submission")
    for name, (path, words) in cases.items():
        res = grading.grade(path, GRADED, quiet=True, skip_reference=True)
        assert res["score"] == 0, name
        assert words in res.get("output", ""), (name, res.get("output"))
        assert all(
            s["status"] == "not graded" and words in s["message"]
            for s in res["extra_data"]["summary"].values()
        ), (name, res["extra_data"]["summary"])
        schema_validate(res)


def test_require_isolation_refuses_the_process_level(tmp_path):
    sub = make_submission(tmp_path / "sub")
    with pytest.raises(SystemExit, match="refusing to grade"):
        grading.grade(
            sub, ["00.1"], quiet=True, isolation=S.Isolation(S.PROCESS_ONLY, "test"), require_isolation=True
        )


def test_process_level_says_it_is_not_safe(tmp_path, capsys):
    sub = make_submission(tmp_path / "sub")
    res = grading.grade(
        sub, ["00.1"], skip_reference=True, isolation=S.Isolation(S.PROCESS_ONLY, "test"), time_floor=2.0
    )
    assert res["extra_data"]["isolation"]["level"] == S.PROCESS_ONLY
    assert "not safe against hostile code" in capsys.readouterr().out
    assert res["extra_data"]["summary"]["00.1"]["status"] == "passing"


def test_sandbox_view_has_no_secrets():
    """What the sandbox shows a child: no solutions, no hidden tests, no reference library."""
    iso = _require(S.SANDBOX)
    assert iso.level == S.SANDBOX
    import subprocess
    import sys

    view = pathlib.Path(S.private_dir("view-test-"))
    try:
        (view / "course").mkdir()
        code = (
            "import importlib.util, os, sys\n"
            f"sys.path[:] = {S.student_sys_path(sorted({p.parent for p in S.student_site_entries()}))!r}\n"
            "names = ['captum', 'zennit', 'torchattacks', 'cleanlab', 'solutions', 'interp_lib']\n"
            "print(sorted(n for n in names if importlib.util.find_spec(n)))\n"
            "print(os.getuid(), os.getpid(), len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
            f"print(any(os.path.exists(os.path.join({str(ROOT)!r}, n)) for n in ('solutions', 'tests', 'interp_lib')))\n"
        )
        out = subprocess.run(
            S.bwrap_command([sys._base_executable, "-I", "-S", "-c", code], [(view / "course", "/course")]),
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = out.stdout.split("\n")
        assert lines[0] == "[]", out.stdout + out.stderr
        uid, pid, count = lines[1].split()
        assert uid == str(S.INSIDE_UID) and int(pid) <= 3 and int(count) <= 3
        assert lines[2] == "False"
    finally:
        shutil.rmtree(view, ignore_errors=True)


def test_an_abnormal_trusted_run_is_retried_then_reported(monkeypatch, tmp_path):
    """Records of a trusted pytest that ended abnormally never count: its exercises are
    graded again in a new process, and a second abnormal end is a grader problem (0)."""
    calls = []
    good = [
        {
            "nodeid": "t::a",
            "exercise": "00.1",
            "weight": 1,
            "hidden": False,
            "outcome": "passed",
            "message": "",
        }
    ]

    def flaky(base, copies, ids, iso, **options):
        calls.append(list(ids))
        return ([], "the grader's test run ended with code -9") if len(calls) == 1 else (good, "")

    monkeypatch.setattr(grading, "_run_trusted_pytest", flaky)
    records, error = grading._run_trusted(tmp_path, {}, ["00.1"], S.Isolation(S.PROCESS_ONLY), jobs=1)
    assert calls == [["00.1"], ["00.1"]] and records == good and error == ""

    monkeypatch.setattr(grading, "_run_trusted_pytest", lambda *a, **k: ([], "ended with code -9"))
    records, error = grading._run_trusted(tmp_path, {}, ["00.1", "01.1"], S.Isolation(S.PROCESS_ONLY), jobs=2)
    assert records == [] and "tried twice" in error
    from interp_lib.exercises import load_all

    res = grading.build_results(["00.1"], records, {}, weights(), load_all(), error)
    assert res["score"] == 0 and res["output"].startswith("Grader problem (not your code)")
