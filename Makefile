# LouCloud. The two commands a newcomer needs:
#   make run    prepare everything and serve the console on http://$(HOST):$(PORT)
#   make test   prepare everything and run the whole test suite
#   (make bench  the benchmarks, see docs/performance.md)
#   (make mutants  mutation testing of the security-critical code, docs/reliability.md)
SHELL := /bin/bash
# Debian's own Python when there is one: the one a deployment uses (mod_wsgi runs it).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
export HOST PORT

.PHONY: run test system system-test venv venv-test assets messages db bench mutants container clean

run: system venv assets db
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# Two processes (pytest-xdist, tests/support/workers.py): the host lab's tests on one,
# the rest beside them. TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 2
test: system-test venv-test assets db
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# Benchmarks against the raw libvirt floor (docs/performance.md); prints a table and
# writes it to bench/results/<date>.md. BENCH_ARGS="--only list,create --quick" etc.
bench: system-test venv-test assets db
	$(PY) -m bench.run $(BENCH_ARGS)

# Mutation testing with mutmut (pyproject.toml [tool.mutmut], tests/support/mutants.py):
# about 8 minutes on 2 cores, not part of `make test`. Prints the figures and every
# mutant not killed; writes mutants/survivors.txt (with diffs) and test-artifacts/mutants.json.
# Fails when a mutant survives that tests/support/mutants.py does not explain.
# MUTANTS='loucloud.security.*' runs only the mutants matching these globs.
mutants: system-test venv-test assets
	$(PY) scripts/mutants.py $(foreach m,$(MUTANTS),'$(m)')

# LouCloud's container images (deploy/README.md, "Containers"): a Debian base made with
# debootstrap (once per machine), the pinned wheels, podman build; cached, see
# deploy/container/build.py. CONTAINER_ARGS="--base docker.io/library/debian:bookworm-slim"
# uses a registry's base instead.
container: venv assets
	$(PY) deploy/container/build.py $(CONTAINER_ARGS)

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

# mod_wsgi is compiled here, never taken from pip's cache: a wheel built for another
# Python of the same version would load the wrong libpython into Apache.
$(VENV)/.installed-test: requirements-test.txt requirements-deploy.txt $(VENV)/.installed
	$(PY) -m pip install -q --no-cache-dir --no-binary mod-wsgi -r requirements-deploy.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

# Front-end files from npm into static/vendor, and the message catalogues compiled
# (loucloud/translations/*/LC_MESSAGES/messages.po -> .mo, never committed compiled).
assets: venv
	@scripts/vendor-assets.sh
	$(PY) -m babel.messages.frontend -q compile -d loucloud/translations

# The message catalogue brought up to date with the code: new messages to translate in
# loucloud/translations/zh_Hans_CN/LC_MESSAGES/messages.po (tests/test_i18n_catalogue.py
# fails while one is missing).
messages: venv
	$(PY) -m babel.messages.frontend -q extract -F babel.cfg --no-location --omit-header \
	  -k lazy_gettext -k _l -k LAZY -k lazy_ngettext:1,2 -k t -o /tmp/loucloud-$$$$.pot . && \
	$(PY) -m babel.messages.frontend -q update -i /tmp/loucloud-$$$$.pot -d loucloud/translations \
	  --no-fuzzy-matching --width 88 && rm -f /tmp/loucloud-$$$$.pot

db: venv
	$(PY) manage.py db upgrade
	$(PY) manage.py init

clean:
	rm -rf $(VENV) node_modules loucloud/static/vendor
