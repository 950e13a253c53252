# Throughline: `make run` starts the app on the demo workspace, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export THROUGHLINE_HOME ?= $(CURDIR)/data
PORT ?= 8501

.PHONY: run test bench bench-ci lint clean-data

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(PY) -m core init --demo --if-missing --port $(PORT)
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: $(VENV)/.dev
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(PY) -m bench --sizes S,M,L

bench-ci: $(VENV)/.dev
	$(PY) -m bench --sizes S --no-targets

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

clean-data:
	rm -rf data
