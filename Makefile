# Two commands do all set-up on a fresh machine (Python 3.11+, pip and make):
#   make demo   runs the main job: an LCEL chain, streamed (local server when BYTEZ_API_KEY is unset)
#   make test   runs ruff, mypy and the whole pytest suite; fails if any of them fails
# Both create .venv and install what they need when it is missing or pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
# Folders ruff checks; ones not (yet) in the tree are skipped rather than failing the lint.
LINT_PATHS := $(wildcard langchain_bytez tests benchmarks cookbook)

.PHONY: demo test lint typecheck pytest load soak bench docs clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

# pip >= 25.1 understands PEP 735 dependency groups (--group).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m langchain_bytez.demo

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy langchain_bytez

pytest: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# Bounded reliability runs kept out of the default suite (see README).
load: $(STAMP)
	$(BIN)/python -m pytest -q -m load -o addopts="--strict-markers" tests/integration_tests

soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak -o addopts="--strict-markers" tests/integration_tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The documentation site (also built with --strict by tests/integration_tests/test_docs.py).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis site dist
