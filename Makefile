# Two commands for a fresh machine:  make lab  |  make test
# Both create .venv (Python >= 3.10) and install what they need when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=
LAB_ARGS ?=
# pip without its chatter: errors still show; one line of ours per step instead
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_ROOT_USER_ACTION := ignore
# (setuptools' "Editable installation" notice is about the flat layout, which is deliberate)
PIP    := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet --progress-bar off --no-input

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
	@echo "[1/3] creating $(VENV) with $$($(PYTHON) --version 2>&1) and upgrading pip"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	@echo "[2/3] installing the course and its dependencies into $(VENV) (first run: a few minutes, torch is large)"
	@start=$$(date +%s); $(PIP) -e . && echo "      done in $$(( $$(date +%s) - start )) s"
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	@echo "[2/3] installing the course with the dev extras into $(VENV) (first run: a few minutes)"
	@start=$$(date +%s); $(PIP) -e ".[dev]" && echo "      done in $$(( $$(date +%s) - start )) s"
	@# lxt (lesson 13's reference, AttnLRP) declares transformers, accelerate, bitsandbytes,
	@# open_clip_torch and zennit as requirements; its rules need only torch: no deps
	@# (pyproject.toml cannot say --no-deps, so it is not in the dev extras; CONTRIBUTING.md)
	@$(PIP) --no-deps lxt==2.1
	@touch $@ $(VENV)/.installed

lab: $(VENV)/.installed
	@echo "[3/3] starting JupyterLab on the lessons (Ctrl-C stops it)"
	@$(PY) -m interp_lib lab $(LAB_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .

# the tests on two workers, then the lessons' stored outputs (strict nbval, solutions mode)
# in one process: two notebook kernels side by side oversubscribe the cores (2:53 alone,
# 10:42 side by side on two cores)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg -p no:xdist

test: lint
	$(PY) -m pytest -n 2 --dist loadfile --solutions=all $(PYTEST_ARGS)
	$(PY) -m pytest --solutions=all $(NBVAL) lessons

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
