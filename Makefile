# saaskit: `make run` to run the product, `make test` to run the suite. Both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz bench bench-tools bench-report chaos stop services lint asyncapi-specs chromium

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# The official AsyncAPI JSON Schemas (npm @asyncapi/specs) for tests/events/test_asyncapi.py; git-ignored, installed once.
ASYNCAPI_SPECS := .saaskit/npm/node_modules/@asyncapi/specs/schemas/3.0.0.json
asyncapi-specs: $(ASYNCAPI_SPECS)
$(ASYNCAPI_SPECS):
	mkdir -p .saaskit/npm
	npm install --prefix .saaskit/npm --no-audit --no-fund --silent @asyncapi/specs@6

run: install
	$(PY) manage.py dev

# Debian's chromium for the browser tests (tests/support/browser.py), installed with apt-get where it is missing
# and we are root; otherwise nothing is done here and the browser tests skip, saying why.
chromium:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "could not install chromium: the browser tests will be skipped"

test: install asyncapi-specs chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The hostile-input tests, deeper: Schemathesis with FUZZ_EXAMPLES generated examples per operation and caller
# plus its coverage phase (boundary values), then the BOLA matrix, token attacks and mass assignment.
FUZZ_EXAMPLES ?= 30
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_COVERAGE=1 $(PY) -m pytest -p no:randomly -q tests/saaskit/test_api_fuzz.py \
		tests/saaskit/test_bola.py tests/saaskit/test_mass_assignment.py tests/accounts/test_token_attacks.py $(PYTEST_ARGS)

# `make bench` runs every bench/*.py (each saves JSON into .saaskit/bench/), then writes bench/REPORT.md and its
# plots. `make bench QUICK=1` is the short run (under 3 minutes on 2 cores; the full one under 15).
CERBOS_BIN := .saaskit/npm/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
CERBOS_VERSION := 0.55.0
export QUICK

bench: install bench-tools
	$(PY) manage.py migrate --verbosity 0
	rm -rf .saaskit/bench
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done
	$(PY) bench/lib/report.py

# Re-writes bench/REPORT.md from the results already in .saaskit/bench/ (no measuring).
bench-report: install
	$(PY) bench/lib/report.py

# What bench/cerbos.py needs: the Cerbos PDP's Linux binary from npm and Debian's wrk (the load generator).
bench-tools: $(CERBOS_BIN)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }; } \
		|| { echo "wrk is missing: install it (Debian: apt-get install wrk)"; exit 1; }
$(CERBOS_BIN):
	mkdir -p .saaskit/npm
	npm install --prefix .saaskit/npm --no-audit --no-fund --silent @cerbos/cerbos-linux-x64@$(CERBOS_VERSION)
	chmod +x $(CERBOS_BIN)

# The product under faults (bench/chaos/chaos.py): workers, Redis, PostgreSQL and a web worker are hurt while 1,000
# orders go through; then the invariants are checked (exit 1 on any violation). SEED=n reproduces a run's plan.
SEED ?= 1
chaos: install
	SEED=$(SEED) $(PY) bench/chaos/chaos.py

services: install
	$(PY) manage.py services start

stop: install
	$(PY) manage.py services stop

lint: install
	$(VENV)/bin/ruff check .
