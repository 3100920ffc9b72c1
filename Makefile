# Placeholder; the full Makefile comes with the foundation work.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: lint test
lint:
	$(VENV)/bin/ruff check backend tests migrations bench
	$(VENV)/bin/ruff format --check backend tests migrations bench
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n auto
