# clickvision: one entry point. `make workbook` runs the workbook, `make test` tests it.
# Both install what they need (venv, Debian/npm sources, data, feature cache) themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.clickvision-installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval-sanitize.cfg

.PHONY: setup sources data features workbook site test unit nbval smoke bench lab help

help:
	@echo "make workbook  - set up, build data, run every notebook at profile default (in place)"
	@echo "make test      - set up, build data, unit tests + smoke run + pytest --nbval"
	@echo "make setup | data | features | unit | nbval | smoke | bench | lab"

setup: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

sources:
	@bash tools/install-sources.sh

data: setup sources
	$(VPY) -m clickvision.data build

features: data
	$(VPY) -m clickvision.features build

# The feature cache first, alone, on every core (as `make test` builds it), then the notebooks side by side.
# (`workbook run --features` builds it part by part beside the notebooks instead: on 2 cores its 2-thread
# extraction beside a 1-thread notebook oversubscribes them, 1,055 s against about 300 s alone; see README.)
workbook: features
	$(VPY) -m clickvision.workbook run --profile default
	$(VPY) -m clickvision.report

site: setup
	$(VPY) -m clickvision.report site

# The README's test command: unit tests (including a papermill smoke run of every
# notebook) and nbval over the committed notebooks, in one pytest run, spread over the CPUs
# (pytest-xdist; a file's tests, so a notebook's cells, stay on one worker, in order: see conftest.py).
XDIST := -n auto --dist loadfile --no-loadscope-reorder
test: features
	$(VPY) -m pytest -q $(XDIST) --durations=40 $(NBVAL) notebooks tests

unit: setup
	$(VPY) -m pytest -q tests

nbval: setup
	$(VPY) -m pytest -q $(NBVAL) notebooks

smoke: setup
	$(VPY) -m clickvision.workbook smoke

bench: features
	@for b in bench/bench_*.py; do echo "== $$b"; $(VPY) $$b || exit 1; done

lab: setup
	$(VENV)/bin/jupyter lab notebooks
