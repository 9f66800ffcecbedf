# Shortcuts for the README's commands. Everything runs from the project's own .venv.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast lint bench stack clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/certctl-load demo

test: $(VENV)/.installed
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not e2e"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy && $(VENV)/bin/lint-imports

bench: $(VENV)/.installed
	$(PY) bench/storm_accuracy.py

# The storm against a real certctl in Docker (deploy/README.md); exits with the harness's code.
COMPOSE ?= docker compose
STACK := $(COMPOSE) -f deploy/docker-compose.yml
WORKERS ?= 2

stack:
	$(STACK) build master
	WORKERS=$(WORKERS) LOCUST_UID=$$(id -u) LOCUST_GID=$$(id -g) $(STACK) up --scale worker=$(WORKERS) \
		--exit-code-from master master worker; code=$$?; $(STACK) down -v; exit $$code

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
