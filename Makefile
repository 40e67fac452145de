# CUTS companion. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU build of torch (laptops, tests, CI), pinned, from PyTorch's CPU wheel index (PyPI's plain Linux wheel is
# the CUDA build). GPU users: `make venv TORCH=torch==2.13.0 TORCH_INDEX=`, see README ("GPU").
TORCH  ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
STAMP  := $(VENV)/.installed
# Profile for `make figures`: quick (CPU, minutes) or paper (the paper's settings; wants a GPU).
PROFILE ?=
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k data"`.
PYTEST_ARGS ?=
# Notebooks that `make test` runs under nbval.
NBVAL_NOTEBOOKS ?= notebooks/*.ipynb notebooks/tutorials/*.ipynb

.PHONY: help venv data test test-notebooks figures lab bench clean-results clean-notebooks

help: ## List the targets
	@echo "CUTS companion - make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "Variables: PROFILE=quick|paper (figures), TORCH=<pip spec> TORCH_INDEX=<url or empty> (venv), CUTS_DATA_MIRROR, CUTS_DATA_DIR, CUTS_RESULTS_DIR"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[notebooks,test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

venv: $(STAMP) ## Create .venv and install the project (CPU torch unless TORCH=... or torch is present)

data: $(STAMP) ## Fetch, verify and prepare every data set (uses CUTS_DATA_MIRROR if set)
	$(VENV)/bin/cuts data fetch --all

test: $(STAMP) ## Set up, then run the unit tests and every notebook under nbval
	$(PY) -m pytest tests $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-notebooks

# The notebooks under nbval write their (profile=smoke) figures and tables into a temporary folder, never figures/.
test-notebooks: $(STAMP) ## Run every notebook under nbval (figures go to a temporary folder)
	figs=$$(mktemp -d) && trap 'rm -rf "$$figs"' EXIT && \
	CUTS_FIGURES_DIR=$$figs MPLBACKEND=Agg $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider $(NBVAL_NOTEBOOKS) $(PYTEST_ARGS)

figures: $(STAMP) ## Set up, then rebuild every figure and table (PROFILE=quick or PROFILE=paper)
	$(PY) -m cutslib.figures $(if $(PROFILE),--profile $(PROFILE))

lab: $(STAMP) ## Start JupyterLab in notebooks/
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

bench: $(STAMP) ## Run the benchmarks (prints timings; slow)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-results: ## Delete cached results (CUTS_RESULTS_DIR, else results/: checkpoints, embeddings, segmentations); keeps data/
	rm -rf -- "$${CUTS_RESULTS_DIR:-results}" notebooks/executed

clean-notebooks: $(STAMP) ## Strip outputs, execution counts and widget state from the committed notebooks
	$(PY) -m cutslib.notebooks clean notebooks
