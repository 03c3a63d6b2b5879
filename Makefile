# gridgov — `make run` serves the demo county on http://127.0.0.1:8000; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_HOUSEHOLDS ?= 150000

.PHONY: install db browser migrate demo run test bench lint schemas vendor clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

db:
	bash deploy/bootstrap-postgis.sh

# Debian's Chromium for the browser tests of /dashboard/ (apt only when /usr/bin/chromium is missing).
browser:
	bash deploy/bootstrap-browser.sh

migrate: install db
	$(BIN)/gridgov db upgrade

demo: migrate
	$(BIN)/gridgov demo --if-empty --households $(DEMO_HOUSEHOLDS)

run: demo
	$(BIN)/gridgov serve --host $(HOST) --port $(PORT)

test: install db browser
	$(BIN)/python -m pytest

bench: install db
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check gridgov tests bench migrations
	$(BIN)/ruff format --check gridgov tests bench migrations

schemas: install
	$(BIN)/gridgov schemas

# Refresh the vendored MapLibre GL JS and ECharts of /dashboard/ from the npm registry (needs npm;
# `make run` never does): see gridgov/static/vendor/README.md.
vendor:
	bash deploy/vendor-js.sh

clean:
	rm -rf $(VENV) var
