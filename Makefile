# Two commands: `make run` (install what is missing, then run everything) and `make test`.
# `make install-train` adds the training libraries (about 0.9 GB: torch's CPU build is most
# of it), which `make run` leaves out; `make run-train` runs everything with a trainer.
# Installs are skipped while their inputs are unchanged, tracked by stamp files.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
TRAIN_STAMP := $(VENV)/.installed-train
NODE_STAMP := frontend/node_modules/.installed
LINT_PATHS := backend tests migrations $(wildcard bench)
# CI machines have 2 cores; xdist's "auto" uses them all.
PYTEST_ARGS ?= -n auto

.PHONY: help run run-train test lint fmt typecheck pytest install install-dev install-train \
	frontend clean catalogs i18n

help:
	@echo "make run    install what is missing and start Hedgerow at http://127.0.0.1:8000"
	@echo "make run-train  the same with the training libraries and a trainer"
	@echo "make test   install the dev tools and run lint, type check and the tests"
	@echo "make lint   ruff check + ruff format --check + mypy"
	@echo "make fmt    ruff format + ruff check --fix"
	@echo "make i18n   extract the interface's strings into every catalog and compile them"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The CPU build of torch first, so resolving the train extra never pulls a CUDA one (a GPU
# machine installs its CUDA build of torch before this, and it is kept).
TORCH_CPU := $(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/pip install --quiet torch==2.13.0

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(TORCH_CPU)
	$(BIN)/pip install --quiet -e '.[dev,train]'
	touch $@ $(RUNTIME_STAMP) $(TRAIN_STAMP)

$(TRAIN_STAMP): pyproject.toml | $(BIN)/python
	$(TORCH_CPU)
	$(BIN)/pip install --quiet -e '.[train]'
	touch $@ $(RUNTIME_STAMP)

$(NODE_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

# The interface's translations: each catalog compiled to the .mo the server reads (after the
# Python install, which brings Babel; a serial make builds prerequisites left to right).
LOCALE_DIR := frontend/locale
CATALOGS := $(wildcard $(LOCALE_DIR)/*/LC_MESSAGES/messages.po)
COMPILED_CATALOGS := $(CATALOGS:.po=.mo)

$(LOCALE_DIR)/%/LC_MESSAGES/messages.mo: $(LOCALE_DIR)/%/LC_MESSAGES/messages.po
	$(BIN)/pybabel compile --statistics -i $< -o $@

catalogs: $(COMPILED_CATALOGS)

# Extract every string, merge it into each catalog, compile. New strings arrive untranslated
# (tests/i18n/test_catalogs.py then fails until they are translated).
i18n: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext --no-location \
		-o $(LOCALE_DIR)/messages.pot . > /dev/null
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --ignore-obsolete \
		--no-fuzzy-matching
	$(MAKE) catalogs

install: $(RUNTIME_STAMP) $(NODE_STAMP) catalogs
install-dev: $(DEV_STAMP) $(NODE_STAMP) catalogs
install-train: $(TRAIN_STAMP) $(NODE_STAMP) catalogs
frontend: $(NODE_STAMP)

run: install
	$(BIN)/hedgerow up

run-train: install-train
	$(BIN)/hedgerow up --trainer

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

fmt: $(DEV_STAMP)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

pytest: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

test: install-dev lint pytest

clean:
	rm -rf $(VENV) frontend/node_modules
