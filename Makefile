# One command sets everything up from nothing: `make test` (tests) or `make demo` (local demo).
# Every install uses constraints.txt (the exact, tested versions); pyproject.toml keeps ranges.
PYTHON ?= python3
# The Lambda runtime's Python: pyenv's 3.12, else python3.12 on PATH.
PYTHON312 ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
VENV := .venv
BIN := $(VENV)/bin
VENV312 := .venv312
PIP_FLAGS := --quiet -c constraints.txt
DEV := $(VENV)/.installed-dev
LOCAL := $(VENV)/.installed-local
DOCS := $(VENV)/.installed-docs
RUNTIME312 := $(VENV312)/.installed
BUILD_DIR := build/sam
export SAM_CLI_TELEMETRY := 0
export PERMHEAL_PYTHON312 := $(PYTHON312)

.PHONY: install test lint typecheck sam-check test-py312 demo dashboard dashboard-png bench reliability check-templates clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The dev toolchain: tests, linters, mypy, SAM CLI, cfn-lint-serverless.
$(DEV): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e ".[dev]"
	touch $@

# Only what `permheal demo` needs (moto), not the dev toolchain.
$(LOCAL): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e ".[local]"
	touch $@

# matplotlib for `make dashboard-png` only (the docs extra): CI and the tests do without it.
$(DOCS): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e ".[docs]"
	touch $@

$(RUNTIME312): pyproject.toml constraints.txt
	@test -n "$(PYTHON312)" || { echo "python3.12 (the Lambda runtime) not found: set PYTHON312=/path/to/python3.12"; exit 2; }
	$(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/pip install --quiet --upgrade pip
	$(VENV312)/bin/pip install $(PIP_FLAGS) -e ".[local]" pytest hypothesis
	touch $@

install: $(DEV)

lint: $(DEV)
	$(BIN)/ruff check functions permheal_local tests benchmarks setup.py
	$(BIN)/ruff format --check functions permheal_local tests benchmarks setup.py
	$(BIN)/cfn-lint template.yaml org/*.yaml

typecheck: $(DEV)
	$(BIN)/mypy

# The deploy tools on the real template: SAM's validator with its linter, the documented `sam build`
# (settings from samconfig.toml, python3.12 first on PATH) and the serverless rules.
sam-check: $(DEV)
	@test -n "$(PYTHON312)" || { echo "python3.12 not found: set PYTHON312=/path/to/python3.12"; exit 2; }
	$(BIN)/sam validate --lint
	rm -rf $(BUILD_DIR)
	PATH="$(dir $(PYTHON312)):$$PATH" $(BIN)/sam build --build-dir $(BUILD_DIR)
	$(BIN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

# The handlers and one real-ASL workflow run on Python 3.12, the Lambda runtime.
test-py312: $(RUNTIME312)
	$(VENV312)/bin/python -m pytest -q -p no:cacheprovider \
		tests/integration/test_template.py tests/integration/test_workflow.py \
		-k "handler_is_importable or detected_failure_is_repaired_on_the_alias"

# The whole suite, reliability included; --reliability-report prints its table at the end.
test: lint typecheck sam-check test-py312
	$(BIN)/pytest -n 2 -q --reliability-report

# `permheal check` on this repository's own template: offline, no AWS credentials. In your project:
# `permheal check template.yaml` (SAM/CloudFormation), `permheal check cdk.out`, or an OpenAPI file.
check-templates: $(DEV)
	$(BIN)/permheal check template.yaml

demo: $(LOCAL)
	$(BIN)/permheal demo

# The CloudWatch dashboard at a glance in the local AWS: one day's EMF (a healed incident, a refused run,
# an undecodable payload), replayed over 7 days, as a table per widget.
dashboard: $(LOCAL)
	$(BIN)/python -m permheal_local.metrics

# The same week drawn as the dashboard's widgets: docs/dashboard.png (the README's picture).
dashboard-png: $(DOCS)
	$(BIN)/python -m permheal_local.dashboard_png docs/dashboard.png

# Cold start and package size are measured on .venv312 (Python 3.12 with the runtime's boto3), as Lambda runs them.
bench: $(DEV) $(RUNTIME312)
	$(BIN)/python -m benchmarks.run

# Fault injection and bad-input matrix only: prints the table and writes reliability-report.json.
reliability: $(DEV)
	$(BIN)/pytest -n 2 -q -m reliability --reliability-report

clean:
	rm -rf $(VENV) $(VENV312) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
