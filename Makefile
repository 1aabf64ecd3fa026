# `make serve` and `make test` work on a fresh machine with only Python: each sets up .venv first.
#   make serve [PORT=8000] [HOST=127.0.0.1]   the service alone: installs only what it needs to run
#   make test                                 the test tools too, then ruff, mypy and the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

# Marker files: each install is redone only when pyproject.toml changes.
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test

.PHONY: install runtime serve test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The service and its dependencies only (`pip install -e .`).
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

# The service plus the test tools (`.[test]`); it includes everything the runtime install has.
$(TESTING): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(RUNTIME)

runtime: $(RUNTIME)

install: $(TESTING)

serve: runtime
	$(BIN)/tessera serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tessera.db tessera.db-*
