# lmc_toolkit: set up, reproduce, test.
#
# The environment (~5.5 GB) lives outside the clone, under ~/.cache/lmc_toolkit/, keyed by a
# hash of pyproject.toml's dependencies and constraints.txt: every clone and every CI run with the
# same dependencies reuses it, and a dependency change builds a fresh one.

SHELL := /bin/bash
PYTHON ?= python3
ENV_ROOT ?= $(HOME)/.cache/lmc_toolkit
# The key covers what decides the installed set (build system, dependencies, extras, pins), not
# the tool settings in pyproject.toml, so editing ruff or pytest options reuses the environment.
ENV_HASH := $(shell $(PYTHON) -c 'import hashlib, json, tomllib; p = tomllib.load(open("pyproject.toml", "rb")); deps = [p["build-system"], p["project"].get("dependencies"), p["project"].get("optional-dependencies")]; print(hashlib.sha256((json.dumps(deps, sort_keys=True) + open("constraints.txt").read()).encode()).hexdigest()[:16])')
VENV ?= $(ENV_ROOT)/env-$(ENV_HASH)
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
KEEP_ENVS ?= 3

.PHONY: help setup system reproduce test test-slow lint format constraints clean-envs

help:
	@echo "make reproduce   set everything up, then regenerate every figure into reports/cpu/"
	@echo "make test        set everything up, then lint and run the test suite"
	@echo "make test-slow   the checks marked slow"
	@echo "make format      format the code with ruff"
	@echo "environment: $(VENV)"

# Debian packages: the offline Fashion-MNIST, and Chromium for static figures (kaleido) and the
# browser test. Skipped without apt; whatever is missing then is reported, not fatal.
system:
	@need=""; \
	[ -d /usr/share/datasets/fashion-mnist ] || need="$$need dataset-fashion-mnist"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	if [ -n "$$need" ] && command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian packages:$$need"; \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need) >/dev/null \
	    || echo "warning: could not install$$need (fashion-mnist then needs root=, PNG export and the browser test are skipped)"; \
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
	@find $(ENV_ROOT) -maxdepth 1 -type d -name 'env-*' -printf '%T@ %p\n' | sort -rn \
	  | tail -n +$$(($(KEEP_ENVS) + 1)) | cut -d' ' -f2- | grep -vx '$(VENV)' | xargs -r rm -rf

# Point the shared environment's editable install at this clone (a no-op when it already is).
setup: system $(VENV)/.installed
	@$(PY) -c "import lmc_toolkit, pathlib, sys; sys.exit(pathlib.Path(lmc_toolkit.__file__).parent != pathlib.Path('$(CURDIR)/lmc_toolkit'))" 2>/dev/null \
	  || flock $(VENV).lock $(PIP) install -q --no-deps --no-build-isolation -e .

# The main job: every figure of the study at the cpu preset (the embedded MNIST, 2 CPU cores),
# into reports/cpu/ (PNG, offline HTML, JSON, executed notebooks, index.html). Finished runs stay
# in the store, so a second run only redraws. PRESET=smoke|cpu|fashion|paper and SCHEDULER=... override.
PRESET ?= cpu
reproduce: setup
	$(VENV)/bin/lmc-toolkit reproduce --preset $(PRESET) --out reports/ $(if $(SCHEDULER),--scheduler $(SCHEDULER))

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
