# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run bsync on the built-in sandbox (emulated Notion + Google Calendar on loopback).
demo: $(STAMP)
	$(BIN)/bsync demo

## Run the test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Benchmarks (figures for the closing notes; not part of CI).
bench: $(STAMP)
	$(BIN)/python bench/sync_scale.py
	$(BIN)/python bench/notify.py
	$(BIN)/python bench/shared_state.py

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
