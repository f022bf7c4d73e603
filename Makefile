# Developer and CI tasks; .ci/run calls these targets.
#
#   make install       the venv (.venv) with the project and its test tools
#   make lint          ruff and mypy --strict (app, tests, benchmarks)
#   make test          the tests on SQLite                    PYTEST_ARGS="tests/test_ops.py -x"
#   make test-pg       the tests on PostgreSQL at 127.0.0.1:$(PG_PORT) (started if none answers)
#   make test-mysql    the tests on MariaDB at 127.0.0.1:$(MYSQL_PORT) (started if none answers)
#   make test-galera   claims on a 3-node MariaDB Galera cluster (galera-4 installed if absent)
#   make conformance   the conformance runner and its ratchet    DB="sqlite postgres"
#   make hooks         install the pre-commit hooks (ruff, mypy) into .git/hooks
#   make ci            the whole of .ci/run

# Knobs are set on the command line (make test PYTEST_ARGS=...); only PG_PORT is
# also read from the environment.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv
PYTHON := $(VENV)/bin/python
# pyproject.toml newer than this: the venv needs installing again.
INSTALLED := $(VENV)/.installed
PYTEST_ARGS :=
PG_PORT ?= 5432
MYSQL_PORT ?= 3306
DB := sqlite
# Set (CI does): pytest's exit status 5, "no tests collected" -- PYTEST_ARGS naming
# tests that all need something absent -- is not a failure.
NO_TESTS_OK :=

PYTEST = $(PYTHON) -m pytest -q $(PYTEST_ARGS) || { rc=$$?; \
	if [ $$rc -eq 5 ] && [ -n "$(NO_TESTS_OK)" ]; then echo "(no tests collected)"; \
	else exit $$rc; fi; }

.PHONY: venv install lint test test-pg test-mysql test-galera conformance hooks ci

venv: $(PYTHON)

$(PYTHON):
	python3 -m venv $(VENV)

# pip, without this machine's notes about absent local indexes.
$(INSTALLED): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 \
		| { grep -v "^WARNING: Location '" || true; }
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
		| { grep -v "^WARNING: Location '" || true; }
	touch $@

install: $(INSTALLED)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check app tests benchmarks
	$(VENV)/bin/mypy --strict app tests benchmarks

test: $(INSTALLED)
	@echo "$(PYTHON) -m pytest -q $(PYTEST_ARGS)"
	@$(PYTEST)

test-pg: $(INSTALLED)
	@echo "PG_PORT=$(PG_PORT) .ci/postgres.sh $(PYTHON) -m pytest -q $(PYTEST_ARGS)"
	@PG_PORT=$(PG_PORT) PYTHON=$(PYTHON) bash .ci/postgres.sh bash -c '$(PYTEST)'

test-mysql: $(INSTALLED)
	@echo "MYSQL_PORT=$(MYSQL_PORT) .ci/mariadb.sh $(PYTHON) -m pytest -q $(PYTEST_ARGS)"
	@MYSQL_PORT=$(MYSQL_PORT) PYTHON=$(PYTHON) bash .ci/mariadb.sh bash -c '$(PYTEST)'

test-galera: $(INSTALLED)
	bash .ci/galera.sh
	PLACEMENT_TEST_GALERA=1 $(PYTHON) -m pytest -q -s tests/galera $(PYTEST_ARGS)

conformance: $(INSTALLED)
	PYTHON=$(PYTHON) bash .ci/conformance.sh $(DB)

hooks: $(INSTALLED)
	$(VENV)/bin/pre-commit install

ci:
	bash .ci/run
