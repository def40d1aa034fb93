# lmc_toolkit: set up, reproduce, test.
#
# The environment (~5.5 GB) lives outside the clone, under ~/.cache/lmc_toolkit/, keyed by a
# hash of pyproject.toml and constraints.txt: every clone and every CI run with the same
# dependencies reuses it, and a dependency change builds a fresh one.

SHELL := /bin/bash
PYTHON ?= python3
ENV_ROOT ?= $(HOME)/.cache/lmc_toolkit
ENV_HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
VENV ?= $(ENV_ROOT)/env-$(ENV_HASH)
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
KEEP_ENVS ?= 3

.PHONY: help setup system reproduce test test-slow lint format constraints clean-envs

help:
	@echo "make reproduce   set everything up, then run the main job"
	@echo "make test        set everything up, then lint and run the test suite"
	@echo "make test-slow   the checks marked slow"
	@echo "make format      format the code with ruff"
	@echo "environment: $(VENV)"

# Debian packages that make the offline data and static figures work; skipped without apt.
system:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian's dataset-fashion-mnist (offline Fashion-MNIST)"; \
	  ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	    || echo "warning: could not install dataset-fashion-mnist; fashion-mnist needs root= then"; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	@mkdir -p $(ENV_ROOT)
	@flock $(VENV).lock bash -c '\
	  set -e; \
	  if [ -f $(VENV)/.installed ]; then exit 0; fi; \
	  echo "building the environment $(VENV) (once per dependency set)"; \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV); \
	  $(PIP) install -q -c constraints.txt --upgrade setuptools; \
	  $(PIP) install -q -c constraints.txt -e ".[all]"; \
	  touch $(VENV)/.installed'
	@ls -dt $(ENV_ROOT)/env-*/ 2>/dev/null | tail -n +$$(($(KEEP_ENVS) + 1)) | xargs -r rm -rf

# Point the shared environment's editable install at this clone (a no-op when it already is).
setup: system $(VENV)/.installed
	@$(PY) -c "import lmc_toolkit, pathlib, sys; sys.exit(pathlib.Path(lmc_toolkit.__file__).parent != pathlib.Path('$(CURDIR)/lmc_toolkit'))" 2>/dev/null \
	  || flock $(VENV).lock $(PIP) install -q --no-deps --no-build-isolation -e .

reproduce: setup
	$(VENV)/bin/lmc-toolkit reproduce

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -m "not slow"

test-slow: setup
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Pin the tested set from the current environment.
constraints: setup
	@{ head -2 constraints.txt; $(PIP) freeze --exclude-editable | grep -v '^lmc_toolkit'; \
	   $(PIP) freeze --all | grep -E '^setuptools=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt
