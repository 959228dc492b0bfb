# Developer entry points. `make` (or `make help`) lists them.
#
# Everything runs from the project virtualenv in $(VENV); it is created and
# filled on first use, and refilled only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv install services migrate run test lint typecheck fmt check bench clean distclean

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

install: $(STAMP) ## Install the package and dev tools into .venv (only when pyproject.toml changed)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing the package and dev tools into $(VENV) (pip install -e '.[dev]')"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

services: ## Make sure Postgres and RabbitMQ are reachable (starts local ones if needed)
	@bash scripts/ensure-services.sh

migrate: install services ## Create the database if missing and apply migrations
	$(BIN)/backfill migrate

run: install services ## Run API and workers in one process (migrates on start)
	$(BIN)/backfill up

test: install services tools ## Run the tests (extra pytest arguments: PYTEST_ARGS=...)
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: tools
tools: ## Make sure promtool is installed (Debian's prometheus package), for the alert rules' test
	@bash scripts/ensure-promtool.sh

lint: install ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy (strict, configured in pyproject.toml)
	$(BIN)/mypy

fmt: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .

check: lint typecheck test ## lint + typecheck + test

bench: install services ## Run the benchmarks (extra arguments: BENCH_ARGS=...)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## Remove caches and build output (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage ./*.egg-info
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
