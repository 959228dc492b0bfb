# Developer entry points. `make` (or `make help`) lists them.
#
# Everything runs from the project virtualenv in $(VENV); it is created and
# filled on first use from the lock files, and refilled only when they change:
# requirements.txt (runtime, for `make run` and the Dockerfile) and
# requirements-dev.txt (runtime + every extra: dev tools, benchmarks). `make lock`
# regenerates both from pyproject.toml.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
LOCK := requirements.txt
DEV_LOCK := requirements-dev.txt
LOCK_ARGS ?=
# Pins for every platform and Python >= 3.11, with hashes; an existing pin is kept unless
# LOCK_ARGS=--upgrade (or --upgrade-package NAME) says otherwise.
LOCK_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet $(LOCK_ARGS)
PYTEST_ARGS ?=
BENCH_ARGS ?=

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv install install-runtime lock services browser migrate run demo test lint typecheck fmt check docs bench clean distclean

help: ## Show this list
	@echo "Usage: make <target> [PYTHON=python3] [PYTEST_ARGS='-k name -x']"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

venv: $(BIN)/python ## Create the virtualenv in .venv (if missing)

# Only created when missing; an existing venv is left exactly as it is.
# A half-made venv (e.g. python3-venv missing on Debian) is removed again,
# so the next run does not mistake it for a working one.
$(BIN)/python:
	@echo "creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip --version >/dev/null || { \
		rm -rf $(VENV); \
		echo "error: could not create $(VENV) with '$(PYTHON) -m venv'" >&2; \
		echo "  (on Debian/Ubuntu: apt-get install python3-venv; or pass PYTHON=/path/to/python3.11)" >&2; \
		exit 1; }

install: $(DEV_STAMP) ## Install the package, its dependencies and the dev tools from the lock files

install-runtime: $(RUNTIME_STAMP) ## Install the package and its runtime dependencies only

# pip check catches a lock file older than a dependency added to pyproject.toml.
$(RUNTIME_STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	@echo "installing the runtime dependencies into $(VENV) (from $(LOCK))"
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
		echo "error: $(LOCK) lacks what pyproject.toml asks for; run 'make lock'" >&2; exit 1; }
	@touch $@

$(DEV_STAMP): $(DEV_LOCK) $(RUNTIME_STAMP)
	@echo "installing the dev tools into $(VENV) (from $(DEV_LOCK))"
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
		echo "error: $(DEV_LOCK) lacks what pyproject.toml asks for; run 'make lock'" >&2; exit 1; }
	@touch $@

lock: | $(BIN)/python ## Regenerate requirements*.txt from pyproject.toml (LOCK_ARGS=--upgrade for newer pins)
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(LOCK_COMPILE) -o $(LOCK)
	$(LOCK_COMPILE) --all-extras --constraint $(LOCK) -o $(DEV_LOCK)

services: ## Make sure Postgres and RabbitMQ are reachable (starts local ones if needed)
	@bash scripts/ensure-services.sh

browser: ## Make sure Debian's chromium is installed (for the dashboard's browser test)
	@bash scripts/ensure-browser.sh

migrate: install-runtime services ## Create the database if missing and apply migrations
	$(BIN)/backfill migrate

run: install-runtime services ## Run API and workers in one process (migrates on start)
	$(BIN)/backfill up

demo: install-runtime services ## With `make run` going: two sample backfills, watched to the end
	$(BIN)/backfill demo

test: install services tools browser ## Run the tests (extra pytest arguments: PYTEST_ARGS=...)
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: tools
tools: ## Make sure promtool is installed (Debian's prometheus package), for the alert rules' test
	@bash scripts/ensure-promtool.sh

lint: install ## ruff check, ruff format --check, and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

typecheck: install ## mypy (strict, configured in pyproject.toml)
	$(BIN)/mypy

fmt: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .

check: lint typecheck test ## lint + typecheck + test

# Generated docs, from the code (tools/); unit tests fail when the committed ones are stale.
docs: install ## Regenerate docs/asyncapi.yaml (message models) and docs/architecture.svg (layers)
	$(BIN)/python -m tools.asyncapi > docs/asyncapi.yaml
	$(BIN)/python -m tools.layers_diagram > docs/architecture.svg

ARGS ?=

# requirements-dev.txt holds every extra, the bench one (matplotlib) included.
bench: install services ## Run the benchmarks (BENCH_ARGS or ARGS=--quick, --scenario NAME)
	@bash scripts/ensure-wrk.sh
	$(BIN)/python -m bench $(BENCH_ARGS) $(ARGS)

clean: ## Remove caches and build output (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage ./*.egg-info
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
