# The two commands a newcomer needs (see README):
#   make demo   set up .venv and run the offline demo end to end, with its report
#   make test   set up .venv and run the whole test suite (unit + end-to-end)
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin

.PHONY: demo test setup lint clean

$(BIN)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "Demo finished: results/ and results/report.html"

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake logs resources/ahba resources/demo
