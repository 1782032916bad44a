# stratum — the two commands of the README are `make render` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stratum-setup

.PHONY: setup render dashboard test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

## Render the bundled album with the bundled model (CPU by default, GPU when present).
## papermill runs notebooks/render_album.ipynb with render.yaml and keeps the executed
## notebook in the run folder as the run record. RUN_ID names the folder (default: dated);
## PARAMS passes more papermill parameters, e.g. PARAMS="-p duration 10 -p tracks sodium-lights".
RUN_ID ?= $(shell date +%Y%m%d-%H%M%S)
PARAMS ?=
render: setup
	mkdir -p renders/$(RUN_ID)
	$(VENV)/bin/papermill -k stratum --cwd . notebooks/render_album.ipynb \
		renders/$(RUN_ID)/render_album.ipynb -p config render.yaml -p run_id $(RUN_ID) $(PARAMS)

## The studio as a Voila dashboard on http://127.0.0.1:8866 (no browser is opened).
dashboard: setup
	$(VENV)/bin/voila --no-browser --Voila.ip=127.0.0.1 notebooks/dashboard.ipynb

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
