# Parta — every entry point a developer or CI needs.
#   make run     start the portal on the embedded default (SQLite + embedded Redis)
#   make test    lint, migrations check and the whole test suite
#   make bench   benchmarks in bench/ (BENCH=<name> runs one)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.12 || command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SMS_BACKEND ?= file
export SMS_OUTBOX ?= var/sms-outbox.jsonl

.PHONY: run test lint typecheck migrations-check bench install browser messages clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/python manage.py runportal

# Debian's Chromium for the browser tests; never a downloaded browser.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

migrations-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=portal.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

messages: $(STAMP)
	$(BIN)/python manage.py compilemessages --ignore=.venv

test: $(STAMP) browser lint migrations-check
	mkdir -p var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) browser
	mkdir -p var/bench
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf var/test-* test-artifacts
