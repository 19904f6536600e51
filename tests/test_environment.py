"""Packaging: environment.yml and pyproject.toml agree; the README's two commands."""

import pathlib
import re

import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}
REFERENCE_LIBS = {"captum", "zennit", "torchattacks", "cleanlab"}


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _conda_deps() -> dict[str, str]:
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - ([^\s:]+)\s*$", line)
        if in_deps and m and m.group(1) != "pip":
            name, spec = _split(m.group(1))
            if name != "python":
                deps[CONDA_NAMES.get(name, name)] = spec
    return deps


def test_environment_yml_matches_pyproject():
    pip = dict(_split(r) for r in _pyproject()["project"]["dependencies"])
    conda = _conda_deps()
    assert conda == pip, f"environment.yml {conda} != pyproject.toml {pip}"


def test_reference_libraries_only_in_dev_extras():
    project = _pyproject()["project"]
    student = {_split(r)[0] for r in project["dependencies"]}
    dev = {_split(r)[0] for r in project["optional-dependencies"]["dev"]}
    assert not (student & REFERENCE_LIBS)
    assert REFERENCE_LIBS <= dev
    assert "torchattacks==3.3.0" in [r.replace(" ", "") for r in project["optional-dependencies"]["dev"]]
    assert not (REFERENCE_LIBS & set(re.findall(r"[a-z]+", (ROOT / "environment.yml").read_text())))


def test_readme_opens_with_the_two_commands():
    lines = [l for l in (ROOT / "README.md").read_text().splitlines() if l.strip()]
    head = "\n".join(lines[:12])
    assert "make lab" in head and "make test" in head
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_python_requirement_consistent():
    assert _pyproject()["project"]["requires-python"] == ">=3.10"
    assert "python>=3.10" in (ROOT / "environment.yml").read_text()
