# heaters-db — every entry point a developer or CI needs.
#   make demo   the whole pipeline on an embedded local PostgreSQL (README's main command)
#   make test   install what is missing, lint, run the test suite (README's test command; CI runs it)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps venv test lint format demo bench clean help

help:
	@echo "make demo    - set up, start a local PostgreSQL, run the pipeline end to end"
	@echo "make test    - set up, lint, run all tests"
	@echo "make setup   - system packages (PostgreSQL pieces) + .venv"
	@echo "make lint    - ruff check + format check, mypy, import contracts"
	@echo "make bench   - benchmarks (see benchmarks/README.md)"

setup: system-deps venv

# PostgreSQL pieces (plpython3u, numpy for it, pgvector), then Chromium for the browser test.
system-deps:
	@bash docker/install-system-deps.sh
	@bash docker/install-browser-deps.sh

venv: $(STAMP)

# torch first and pinned: 2.13.0 is the CPU build on the build machines' disk (a newer one is a
# multi-GB download). torchvision must stay out: it breaks transformers' VJEPA2Model import here.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@if $(BIN)/python -m pip show torchvision >/dev/null 2>&1; then \
		echo "removing torchvision (breaks VJEPA2Model import)"; $(BIN)/python -m pip uninstall -y -q torchvision; fi
	@touch $(STAMP)

lint: venv
	$(BIN)/ruff check heaters_db tests benchmarks plpython alembic
	$(BIN)/ruff format --check heaters_db tests benchmarks plpython alembic
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: venv
	$(BIN)/ruff check --fix heaters_db tests benchmarks plpython alembic
	$(BIN)/ruff format heaters_db tests benchmarks plpython alembic

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/heaters-db demo

# Each benchmark writes its section of benchmarks/README.md (tens of minutes on 2 CPU cores).
BENCHMARKS := embed_throughput search_latency learning_scale apply_head_throughput active_learning \
	learning_curves write_path moments
bench: setup
	@for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	-$(BIN)/heaters-db db down
	rm -rf .heaters .pytest_cache .ruff_cache
