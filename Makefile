# Two commands do all set-up on a fresh machine (Python 3.11, pip and make):
#   make demo   runs the main job: an LCEL chain, streamed (local server when BYTEZ_API_KEY is unset)
#   make test   runs ruff, mypy, the whole pytest suite, the documentation snippets and the
#               unit and integration tests again against the lowest allowed dependencies
# Both create .venv and install what they need when it is missing or pyproject.toml changed:
# `make demo` installs only the four runtime dependencies (with uv, else pip; the package runs from the
# checkout), `make test` installs the package and the dev toolchain. Stamp files in .venv record what is installed for which pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CKSUM  := $(shell cksum pyproject.toml | cut -d' ' -f1)
# The package alone (what the demo needs), and the package plus the dev dependency group.
BASE_STAMP := $(VENV)/.installed-base-$(CKSUM)
DEV_STAMP  := $(VENV)/.installed-dev-$(CKSUM)
# A second venv holding the lowest versions pyproject.toml allows (see .ci/lowest_requirements.py).
LOWEST       := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed-$(CKSUM)
PYTEST_ARGS ?=
# Folders ruff checks; ones not (yet) in the tree are skipped rather than failing the lint.
LINT_PATHS := $(wildcard langchain_bytez tests benchmarks cookbook .ci conftest.py)
# Test files the lowest-versions run leaves out, because what they exercise is not
# installable next to the lowest dependencies: langchain-tests 1.1.9 needs a newer
# langchain-core; the cookbook and docs groups are tools, not runtime dependencies; the
# packaging and benchmark smoke tests check the build and the timing table, which the
# dependency versions do not change (the main run covers them); the generated-modules test
# compares source files, and needs ruff (lint group).
LOWEST_IGNORE := --ignore=tests/unit_tests/test_standard.py \
                 --ignore=tests/integration_tests/test_standard.py \
                 --ignore=tests/integration_tests/test_cookbook.py \
                 --ignore=tests/integration_tests/test_docs.py \
                 --ignore=tests/integration_tests/test_packaging.py \
                 --ignore=tests/integration_tests/test_benchmarks_smoke.py \
                 --ignore=tests/unit_tests/test_generated.py

.PHONY: demo test generate lint typecheck pytest docs-snippets lowest load soak bench docs clean install

# Without pip: seeding pip into a venv takes seconds, and the demo's install does not need
# it (the interpreter's own pip installs into the venv with --python, pip >= 22.3).
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)

# The demo's install: the runtime dependencies only, read from pyproject.toml. The demo
# runs the package from this checkout (PYTHONPATH), so no build step (hatchling in an
# isolated build environment, 10-15 s) stands between a fresh clone and its first line.
# pip asks the index about each of the ~33 packages in turn (about 20 s here, resolution
# or not); uv (one wheel, installed by pip) asks in parallel and takes 2 s. Should uv not
# install or run on a machine, pip does the same install.
$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(PYTHON) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > $(VENV)/runtime-requirements.txt
	( $(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check \
		"uv>=0.5,<1" && $(BIN)/uv pip install --quiet --python $(BIN)/python \
		-r $(VENV)/runtime-requirements.txt ) || \
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check \
		-r $(VENV)/runtime-requirements.txt
	rm -f $(VENV)/.installed-base-*
	touch $(BASE_STAMP)

# pip >= 25.1 understands PEP 735 dependency groups (--group). The dev install covers the
# base one too, so `make demo` after `make test` installs nothing.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check \
		--upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	rm -f $(VENV)/.installed-base-* $(VENV)/.installed-dev-* $(VENV)/.installed-[0-9]*
	touch $(BASE_STAMP) $(DEV_STAMP)

install: $(DEV_STAMP)

demo: $(BASE_STAMP)
	@PYTHONPATH="$(CURDIR)" $(BIN)/python -m langchain_bytez.demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/python .ci/unasync.py --check

# Rewrites every generated sync module (langchain_bytez/**/_sync/) from its async source.
generate: $(DEV_STAMP)
	$(BIN)/python .ci/unasync.py

typecheck: $(DEV_STAMP)
	$(BIN)/mypy langchain_bytez

pytest: $(DEV_STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The python code blocks of the pages below run against the local server
# (pytest-markdown-docs; conftest.py at the root starts the server for them). The docs use
# the superfences fence syntax: ```{.python continuation} continues the previous block,
# ```{.python notest} is skipped (with the reason next to it). pytest-recording's autouse
# network blocker needs a module scope the markdown items lack, hence -p no:recording.
# Every page: README.md and all of docs/ (a new page is included without being listed;
# docs/api/ pages hold no code blocks today).
DOC_PAGES := README.md $(sort $(wildcard docs/*.md docs/api/*.md))
docs-snippets: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -p no:recording \
		--markdown-docs --markdown-docs-syntax=superfences $(DOC_PAGES)

# The unit and integration tests against the lowest allowed langchain-core, httpx,
# pydantic and tenacity, installed explicitly in their own venv.
$(LOWEST_STAMP): pyproject.toml .ci/lowest_requirements.py
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(PYTHON) .ci/lowest_requirements.py > $(LOWEST)/requirements.txt
	$(LOWEST)/bin/python -m pip install --quiet -e . -r $(LOWEST)/requirements.txt
	$(LOWEST)/bin/python .ci/lowest_requirements.py --check
	touch $(LOWEST_STAMP)

lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_IGNORE) tests

test: lint typecheck pytest docs-snippets lowest

# Bounded reliability runs kept out of the default suite (see README). -s shows their
# report: file descriptors and RSS at the start and the end, calls and outcomes.
load: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -s -p no:cacheprovider -m load -o addopts="--strict-markers" \
		tests/integration_tests

soak: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -s -p no:cacheprovider -m soak -o addopts="--strict-markers" \
		tests/integration_tests

# The transports section compares httpx's own pool with optional transports (the bench
# group, part of dev).
bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py

# The documentation site (also built with --strict by tests/integration_tests/test_docs.py).
docs: $(DEV_STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(LOWEST) .mypy_cache .ruff_cache .pytest_cache .hypothesis site dist
