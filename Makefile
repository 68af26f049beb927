# One command sets everything up from nothing: `make test` (tests) or `make demo` (local demo).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck demo bench reliability clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check functions permheal_local tests benchmarks
	$(BIN)/ruff format --check functions permheal_local tests benchmarks
	$(BIN)/cfn-lint template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy

# The whole suite, reliability included; --reliability-report prints its table at the end.
test: lint typecheck
	$(BIN)/pytest -n 2 -q --reliability-report

demo: $(STAMP)
	$(BIN)/permheal demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Fault injection and bad-input matrix only: prints the table and writes reliability-report.json.
reliability: $(STAMP)
	$(BIN)/pytest -n 2 -q -m reliability --reliability-report

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
