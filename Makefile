PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint typecheck check bench clean

$(BIN)/agentsms: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/agentsms

install: $(BIN)/agentsms

run: install
	$(BIN)/agentsms quickstart --host $(HOST) --port $(PORT)

# Unit, integration and compat tests in parallel (one process per CPU); then the tests that
# start real processes and browsers, one at a time, since they time what those processes do.
SERIAL_TESTS := tests/acceptance tests/browser

test: install
	$(BIN)/pytest -q -p no:cacheprovider -n auto $(addprefix --ignore=,$(SERIAL_TESTS)) tests
	$(BIN)/pytest -q -p no:cacheprovider $(SERIAL_TESTS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

bench: install
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

# Everything `make run` wrote: the database, its generated secret key and the saved API key.
clean:
	rm -rf $(VENV) agentsms.db agentsms.db-wal agentsms.db-shm agentsms.db-waiting agentsms.secret-key .agentsms
