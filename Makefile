# LouCloud. The two commands a newcomer needs:
#   make run    prepare everything and serve the console on http://$(HOST):$(PORT)
#   make test   prepare everything and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
export HOST PORT

.PHONY: run test system system-test venv venv-test assets db bench clean

run: system venv assets db
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: system-test venv-test assets db
	$(PY) -m pytest $(PYTEST_ARGS)

system:
	@scripts/setup-system.sh run

system-test:
	@scripts/setup-system.sh test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

assets:
	@scripts/vendor-assets.sh

db: venv
	$(PY) manage.py db upgrade
	$(PY) manage.py init

clean:
	rm -rf $(VENV) node_modules loucloud/static/vendor
