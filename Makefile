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

# The notebooks side by side, the feature cache built part by part beside them (`workbook run --features`):
# each part on one worker with one thread (the extraction's own, bound by PNG decoding), while the other
# worker runs the notebooks that read no features, then each notebook once the parts it reads exist.
workbook: data
	$(VPY) -m clickvision.workbook run --profile default --features
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
