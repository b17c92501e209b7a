# notar: the two commands a newcomer needs are `make serve` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv peers lint typecheck test test-fast serve bench clean

$(BIN)/notar: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(BIN)/notar

peers:
	bash scripts/install-peers.sh

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

# The whole suite: Python deps, Debian peers, lint, types, tests.
test: venv peers lint typecheck
	$(BIN)/pytest

test-fast: venv
	$(BIN)/pytest -m 'not peers' -x -q

# The main job. (Until the trust server lands this shows the CLI help.)
serve: venv
	$(BIN)/notar --help

bench: venv peers
	$(BIN)/python bench/crypto_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
