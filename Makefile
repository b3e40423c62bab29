# radioflow: two set-up commands — `make run` and `make test` — do everything on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-slow test-all lint bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/radioflow run src/radioflow/recipes/batch-imaging.yml

test: install   ## the fast suite (under ~10 min on 2 cores)
	$(PY) -m pytest -q -m "not slow"

test-slow: install   ## the heavy end-to-end cases (shipped workflows, chaos, browsers, Rucio); CI runs them too
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) radioflow-data .radioflow
