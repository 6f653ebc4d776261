# Parta — every entry point a developer or CI needs.
#   make run     start the portal on the embedded default (SQLite + embedded Redis)
#   make test    lint, migrations check and the whole test suite
#   make bench   benchmarks in bench/ (BENCH=<name> runs one)
SHELL := /bin/bash
# The first interpreter that really runs and is 3.11+ (pyenv shims may not).
PYTHON ?= $(shell for candidate in python3 python3.12 python3.11 python3.13; do \
	$$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$candidate; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SMS_BACKEND ?= file
export SMS_OUTBOX ?= var/sms-outbox.jsonl

.PHONY: run test lint typecheck migrations-check bench install browser messages clean

# axe-core for the accessibility checks of the browser tests, from the npm
# registry at the version tests/browser/package-lock.json pins.
AXE := tests/browser/node_modules/axe-core/axe.min.js

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/python manage.py runportal

# Debian's packages the tests need: Chromium for the browser tests (never a
# downloaded browser), gettext for the translation check and npm for axe-core.
# Only what is missing is installed: a machine whose Node.js comes with its own
# npm (NodeSource's package) refuses Debian's npm beside it.
browser:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v xgettext >/dev/null || missing="$$missing gettext"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

$(AXE): tests/browser/package.json tests/browser/package-lock.json | browser
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $(AXE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

migrations-check: $(STAMP)
	mkdir -p var
	DJANGO_SETTINGS_MODULE=portal.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

messages: $(STAMP)
	$(BIN)/python manage.py compilemessages --ignore=.venv

test: $(STAMP) browser $(AXE) lint migrations-check
	mkdir -p var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) browser
	mkdir -p var/bench
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf var/test-* test-artifacts tests/browser/node_modules
