# Two commands for a fresh machine:  make lab  |  make test
# Both create .venv (Python >= 3.10) and install what they need when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: lab test lint check execute train bench clean-venv help
.DEFAULT_GOAL := help

help:
	@echo "make lab      open the course in JupyterLab (creates .venv when missing)"
	@echo "make test     lint, then run every test, notebooks included (creates .venv with dev extras)"
	@echo "make lint     ruff check + ruff format --check (code and notebooks; seconds)"
	@echo "make check    your progress, exercise by exercise"
	@echo "make execute  re-execute the lessons and store their outputs (maintainers)"
	@echo "make bench    benchmark lessons and methods -> bench/results.json (maintainers)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

lab: $(VENV)/.installed
	$(PY) -m interp_lib lab

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .

test: lint
	$(PY) -m pytest -n 2 --dist loadfile --solutions=all $(PYTEST_ARGS)

check: $(VENV)/.installed
	$(PY) -m interp_lib check

execute: $(VENV)/.installed-dev
	$(PY) -m interp_lib execute

train: $(VENV)/.installed
	$(PY) -m interp_lib train

bench: $(VENV)/.installed-dev
	$(PY) -m interp_lib bench

clean-venv:
	rm -rf $(VENV)
