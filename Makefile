# stratum — the two commands of the README are `make render` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stratum-setup

.PHONY: setup render test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

## Render the bundled album with the bundled model (CPU by default, GPU when present).
render: setup
	$(PY) -m stratum_kernel analyze --album album

## The whole test suite, with lint and coverage.
test: setup
	$(VENV)/bin/ruff check --output-format concise .
	$(PY) -m pytest --cov=stratum_kernel --cov-report=term --cov-fail-under=85

lint: setup
	$(VENV)/bin/ruff check --output-format concise .
	$(VENV)/bin/ruff format --check stratum_kernel training tests

bench: setup
	$(PY) -m stratum_kernel bench all

clean:
	rm -rf cache renders/*/ .pytest_cache .coverage htmlcov
