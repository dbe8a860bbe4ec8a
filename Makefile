# The two commands a newcomer needs (see README):
#   make demo   set up .venv and run the offline demo end to end, with its report
#   make test   set up .venv and run the whole test suite (unit + end-to-end)
# Any supported Python: make demo PYTHON=python3.12 (a pyenv version is found
# even when it is not selected); the venv is rebuilt when the Python changes.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin
# the Pythons the pinned stack supports (requirements.txt; .ci/run tests each)
SUPPORTED_PYTHONS := 3.11 3.12 3.13

.PHONY: demo test test-fast setup check-python lint clean study

PY := $(shell scripts/tools/find_python.sh $(PYTHON) 2>/dev/null)
PYVER := $(if $(PY),$(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])'))

check-python:
	@if [ -z "$(PY)" ]; then \
	  echo "No working $(PYTHON): install it or pass PYTHON=/path/to/python3.X" >&2; exit 1; fi
	@if ! echo " $(SUPPORTED_PYTHONS) " | grep -q " $(PYVER) "; then \
	  echo "$(PY) is Python $(PYVER); the pinned stack supports $(SUPPORTED_PYTHONS)." \
	       "Pass PYTHON=python3.X for one of them." >&2; exit 1; fi
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
	  echo "$(VENV) was made with another Python; rebuilding it with $(PY) ($(PYVER))"; \
	  rm -rf $(VENV); fi

$(BIN)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: check-python
	@$(MAKE) --no-print-directory $(BIN)/.installed PYTHON=$(PYTHON) VENV=$(VENV)
	@echo "Using $$($(BIN)/python --version) in $(VENV)"

demo: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "Demo finished: results/ and results/report.html"

test: setup
	$(BIN)/python -m pytest

# the unit tests without the slow end-to-end checks (minutes instead of ~20)
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# A study folder for your own data (README, "Your own study"):
#   make study NAME=mdd                          -> studies/mdd
#   make study NAME=mdd DIR=/data/projects/mdd   -> that folder instead
#   make study NAME=mdd_vasa FROM=studies/mdd    -> copy another study's config and sheet
#   make study NAME=mdd MODULE=1                 -> plus workflow/Snakefile using this
#                                                   workflow as a Snakemake module
# Needs only Python's standard library, so no .venv yet. The four variables are
# read from the command line only (some systems export NAME, e.g. WSL).
cli = $(if $(filter command line,$(origin $(1))),$($(1)))
STUDY_DIR = $(or $(call cli,DIR),$(if $(call cli,NAME),studies/$(call cli,NAME)))
study:
	@if [ -z "$(STUDY_DIR)" ]; then \
	  echo "Usage: make study NAME=<name> [DIR=<folder>] [FROM=<study folder>] [MODULE=1]" >&2; exit 1; fi
	@$(or $(PY),python3) scripts/tools/new_study.py "$(STUDY_DIR)" \
	  $(if $(call cli,FROM),--from "$(call cli,FROM)") $(if $(filter-out 0,$(call cli,MODULE)),--module)

# style and Snakemake's own checks (run by .ci/run): ruff for Python, snakefmt
# for the rule files (settings in pyproject.toml), then `snakemake --lint`
lint: setup
	$(BIN)/ruff check scripts tests
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint

clean:
	find results -mindepth 1 ! -name README.md -exec rm -rf {} + 2>/dev/null || true
	rm -rf .snakemake logs resources/ahba resources/demo
