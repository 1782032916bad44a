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
## ALBUM=path/to/folder renders another album (a folder of audio files, with or without a
## tracklist.json) with the same settings, each track with the preset that suits it — or
## with the folder's own render.yaml when it has one (`stratum init FOLDER` writes it).
## The executed notebook is written as render_album.partial.ipynb and renamed when every cell
## ran; a failed run (an error, a dying kernel) leaves render_album.FAILED.ipynb instead.
RUN_ID ?= $(shell date +%Y%m%d-%H%M%S)
PARAMS ?=
ALBUM ?=
# an album folder with its own render.yaml (`stratum init` writes one) renders with it
CONFIG ?= $(if $(and $(ALBUM),$(wildcard $(ALBUM)/render.yaml)),$(ALBUM)/render.yaml,render.yaml)
RENDERS ?= renders
NOTEBOOK ?= notebooks/render_album.ipynb
RUN_NB = $(RENDERS)/$(RUN_ID)/render_album
render: setup
	@mkdir -p $(RENDERS)/$(RUN_ID)
	@rm -f $(RUN_NB).FAILED.ipynb
	@if $(VENV)/bin/papermill -k stratum --cwd . --log-output --no-progress-bar \
		$(NOTEBOOK) $(RUN_NB).partial.ipynb \
		-p config $(CONFIG) -p run_id $(RUN_ID) -p output_root $(RENDERS) \
		$(if $(ALBUM),-p album_dir $(ALBUM)) $(PARAMS); then \
		mv -f $(RUN_NB).partial.ipynb $(RUN_NB).ipynb; \
	else \
		mv -f $(RUN_NB).partial.ipynb $(RUN_NB).FAILED.ipynb 2>/dev/null; \
		echo "make render: the render notebook did not finish (an error or a dead kernel, see" \
			"above); the partial record is $(RUN_NB).FAILED.ipynb. Finished chunks are kept:" \
			"continue with .venv/bin/python -m stratum_kernel render --config render.yaml" \
			"--run-id $(RUN_ID) --resume (same overrides)" >&2; \
		exit 1; \
	fi

## The studio as a Voila dashboard on http://127.0.0.1:8866 (no browser is opened); only
## this machine can reach it. EXPOSE=1 serves it on every interface and then always asks for
## a token: TOKEN=<secret>, or a generated one printed in the URL.
EXPOSE ?=
TOKEN ?=
# a pre-heated kernel runs the notebook before the first visit: the page is ready at once
VOILA_FLAGS ?= --preheat_kernel=True
# The server answers only requests addressed to this machine (a web page cannot reach it
# by DNS rebinding); HOST=<name> adds a name it answers to when exposed.
HOST ?=
SERVE = $(PY) -m stratum_kernel.studio.serve --no-browser
dashboard: setup
ifeq ($(EXPOSE),1)
	$(SERVE) --Voila.ip=0.0.0.0 $(if $(HOST),--StratumVoila.allow_hosts=$(HOST)) \
		$(if $(TOKEN),--Voila.token=$(TOKEN),--Voila.auto_token=True) $(VOILA_FLAGS) \
		notebooks/dashboard.ipynb
else
	$(SERVE) --Voila.ip=127.0.0.1 $(VOILA_FLAGS) notebooks/dashboard.ipynb
endif

## The whole test suite, with lint and coverage.
test: setup
	$(VENV)/bin/ruff check --output-format concise .
	$(PY) -m pytest --cov=stratum_kernel --cov-report=term --cov-fail-under=85

lint: setup
	$(VENV)/bin/ruff check --output-format concise .

bench: setup
	$(PY) -m stratum_kernel bench all

clean:
	rm -rf cache renders/*/ .pytest_cache .coverage htmlcov
