# Tollgate developer entry points. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TEST_SETTINGS := controlplane.settings_test
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install demo test lint checks pytest fuzz chaos bench screenshots clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml sdk/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./sdk/python
	touch $@

# Embedded SQLite + file broker: no PostgreSQL, Redis or Docker needed.
demo: install
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL TOLLGATE_ENV=demo $(PY) manage.py run_demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

checks: install
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(PY) manage.py check --fail-level WARNING
	DATABASE_URL=sqlite://:memory: DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(PY) manage.py makemigrations --check --dry-run

# The schemathesis run and the chaos run are steps of their own (sequential, never under xdist:
# schemathesis items share one node id, and chaos kills processes and servers it started).
pytest: install
	$(PY) -m pytest --create-db --ignore=tests/fuzz --ignore=tests/chaos $(PYTEST_ARGS)

fuzz: install
	$(PY) -m pytest --create-db -n 0 tests/fuzz

chaos: install
	$(PY) -m pytest -n 0 -s tests/chaos

test: lint checks pytest

bench: install
	$(PY) bench/gate.py $(BENCH_ARGS)

# Re-take the dashboard screenshots in docs/images/ (the browser tests, writing their pictures).
screenshots: install
	TOLLGATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser/test_dashboard.py -k "operator or identity_provider"

clean:
	rm -rf $(VENV) var staticfiles
