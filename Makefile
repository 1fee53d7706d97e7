# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench soak install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/poshost serve --demo --issuer-sim --wallet-sim

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check codec keys host specs tools tests
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install lint
	$(BIN)/python -m pytest

# Host CPU per purchase, full-speed throughput, p50/p99 at 1,000/s and 2,000/s (unpinned, and
# pinned: host + writer on one core, load + simulator on the other), two workers, next to a bare
# Trio echo server and the floor measured the same way, and a sampling profile (py-spy) of the
# host under load (docs/performance.md).
# About 4 minutes (it says so first); logs and data in var/bench/run/ (replaced each run); the
# headline rows are compared with the previous var/bench/bench.json.
bench: install
	$(BIN)/python benchmarks/bench_host.py

# Live purchases while the host is fuzzed, flooded, brute-forced and SIGKILLed (and the issuer
# simulator too), then the journal is checked against the issuer's ledger (docs/soak.md).
# `make soak SOAK_ARGS="--seconds 60"` for a shorter run.
soak: install
	$(BIN)/python -m tools.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
