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

# The main job: the trust server on the embedded SQLite default (data in ./var), plain HTTP on
# 127.0.0.1:4443, with a generated development key passphrase. See `notar server --help` for TLS,
# PostgreSQL, token auth and production key handling.
serve: venv
	$(BIN)/notar server --dev --data-dir var/notar --listen $${NOTAR_SERVER_LISTEN:-127.0.0.1:4443}

# Each benchmark prints a Markdown table; they start their own peers on 127.0.0.1.
bench: venv peers
	$(BIN)/python bench/crypto_bench.py
	$(BIN)/python bench/server_bench.py
	$(BIN)/python bench/client_bench.py
	$(BIN)/python bench/startup_bench.py
	$(BIN)/python bench/gateway_bench.py
	$(BIN)/python bench/release_bench.py
	$(BIN)/python bench/web_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
