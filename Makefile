# Developer and CI tasks; .ci/run calls these targets.
#
#   make install       the venv (.venv) with the project and its test tools
#   make lint          ruff and mypy --strict (app, tests, benchmarks)
#   make test          the tests on SQLite                    PYTEST_ARGS="tests/test_ops.py -x"
#   make test-pg       the tests on PostgreSQL at 127.0.0.1:$(PG_PORT) (started if none answers)
#   make test-keystone the Keystone tests against a real Keystone (its venv built first)
#   make test-mysql    the tests on MariaDB at 127.0.0.1:$(MYSQL_PORT) (started if none answers)
#   make test-galera   claims on a 3-node MariaDB Galera cluster (galera-4 installed if absent)
#   make test-faults   claims through PostgreSQL faults (a private cluster restarted, stopped, locked)
#   make test-replica  reads on a PostgreSQL hot standby, claims on its primary (tests/replica)
#   make conformance   the conformance runner and its ratchet    DB="sqlite postgres mysql"
#   make hooks         install the pre-commit hooks (ruff, mypy) into .git/hooks
#   make ci            the whole of .ci/run
#   make schemathesis  schemathesis on the OpenAPI documents of 1.39 and 1.10 (live server)
#   make browser       Swagger UI in headless Chromium (Debian's), offline; screenshots kept
#   make docs-assets   refresh the vendored Swagger UI and ReDoc (npm pack, pinned versions)

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

.PHONY: venv install lint test test-pg test-mysql test-galera test-keystone conformance hooks ci
.PHONY: test-replica

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

# A private PostgreSQL primary and streaming standby (PostgreSQL installed if absent).
test-replica: $(INSTALLED)
	@. .ci/lib.sh; have_postgres_binaries || apt_install postgresql
	PLACEMENT_TEST_REPLICA=1 $(PYTHON) -m pytest -q tests/replica $(PYTEST_ARGS) || { rc=$$?; \
		[ $$rc -eq 5 ] && [ -n "$(NO_TESTS_OK)" ] || exit $$rc; }

conformance: $(INSTALLED)
	PYTHON=$(PYTHON) bash .ci/conformance.sh $(DB)

hooks: $(INSTALLED)
	$(VENV)/bin/pre-commit install

ci:
	bash .ci/run

# A real Keystone (PyPI keystone, its own venv: .ci/keystone.sh) for tests/keystone.
test-keystone: $(INSTALLED)
	@PLACEMENT_KEYSTONE_VENV="$$(bash .ci/keystone.sh)" \
		$(PYTHON) -m pytest -q tests/keystone tests/test_auth_keystone_cache.py $(PYTEST_ARGS)

# ------------------------------------------------ OpenAPI contract and viewers
# Their tools (schemathesis, Playwright for Python) are the docs-test extra.
DOCS_TEST := $(VENV)/.installed-docs-test
ARTIFACTS := .ci/artifacts
ST_VERSIONS := 1.39 1.10
ST_EXAMPLES := 20

$(DOCS_TEST): pyproject.toml $(INSTALLED)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,docs-test]' 2>&1 \
		| { grep -v "^WARNING: Location '" || true; }
	touch $@

.PHONY: schemathesis browser docs-assets

schemathesis: $(DOCS_TEST)
	$(PYTHON) -m tests.schemathesis_run --versions $(ST_VERSIONS) \
		--max-examples $(ST_EXAMPLES) --out $(ARTIFACTS)/schemathesis

browser: $(DOCS_TEST)
	ARTIFACTS=$(ARTIFACTS)/browser PYTHON=$(PYTHON) bash .ci/browser.sh

# The viewers' assets, vendored from npm at these versions (npm pack, no install).
SWAGGER_UI_VERSION := 5.35.0
REDOC_VERSION := 2.5.4
STATIC := app/api/openapi/static

docs-assets:
	tmp=$$(mktemp -d) && cd "$$tmp" \
		&& npm pack -q swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION) >/dev/null \
		&& mkdir swagger redoc && tar xzf swagger-ui-dist-*.tgz -C swagger \
		&& tar xzf redoc-*.tgz -C redoc && cd - >/dev/null \
		&& cp "$$tmp"/swagger/package/{swagger-ui-bundle.js,swagger-ui-standalone-preset.js,swagger-ui.css,favicon-32x32.png} $(STATIC)/ \
		&& cp "$$tmp"/swagger/package/LICENSE $(STATIC)/LICENSE.swagger-ui \
		&& cp "$$tmp"/swagger/package/NOTICE $(STATIC)/NOTICE.swagger-ui \
		&& cp "$$tmp"/redoc/package/bundles/redoc.standalone.js $(STATIC)/ \
		&& cp "$$tmp"/redoc/package/LICENSE $(STATIC)/LICENSE.redoc && rm -rf "$$tmp"

# Claims under load through PostgreSQL faults, on a private cluster (tests/faults).
test-faults: $(INSTALLED)
	PLACEMENT_TEST_FAULTS=1 $(PYTHON) -m pytest -q -s tests/faults $(PYTEST_ARGS) \
		|| { rc=$$?; if [ $$rc -eq 5 ] && [ -n "$(NO_TESTS_OK)" ]; then \
		echo "(no tests collected)"; else exit $$rc; fi; }

# ------------------------------------------------ error detail texts vs the reference
# Replays the conformance gabbits against the reference and this checkout and
# compares every 4xx answer's detail (tests/wire_details.py; ~10 minutes on 2
# cores, so not a CI step). GABBITS= narrows it to some files.
REFERENCE_VENV ?= $(or $(PLACEMENT_REFERENCE_VENV),$(HOME)/.cache/placement-reference/venv)
GABBITS :=

.PHONY: wire-details
wire-details: $(INSTALLED)
	$(REFERENCE_VENV)/bin/python tests/wire_details.py --checkout . \
		--out $(ARTIFACTS)/wire-details $(GABBITS)
