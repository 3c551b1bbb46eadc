# OligoCRF developer commands. `make run` and `make test` do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run on every CPU (pytest-xdist; each worker has its own test database and Celery queue).
PYTEST_ARGS ?= -n auto

# Django 6 needs Python >= 3.12: take the first suitable interpreter on PATH, then any
# pyenv-installed 3.12+ (pyenv shims refuse to run a version that is not selected).
define FIND_PYTHON
for c in python3.13 python3.12 python3.14 python3; do \
  p=$$(command -v $$c 2>/dev/null) || continue; \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; exit 0; }; \
done; \
if command -v pyenv >/dev/null 2>&1; then \
  for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])(\.[0-9]+)?$$' | sort -rV); do \
    p=$$(pyenv root)/versions/$$v/bin/python3; [ -x $$p ] && { echo $$p; exit 0; }; \
  done; \
fi; exit 1
endef

.PHONY: help
help:
	@echo "make run     set up everything (virtualenv, packages, database, demo data) and start web + worker + beat"
	@echo "make test    set up everything and run the whole test suite"
	@echo "make lint    ruff check and format check"
	@echo "make stop    stop the embedded PostgreSQL and Redis servers (make run leaves them running)"
	@echo "make migrations-check   fail if models and migrations disagree"
	@echo "make messages           refresh and compile the French translations"

$(VENV)/.installed: requirements.txt
	@python=$$($(FIND_PYTHON)) || { \
	  echo "OligoCRF needs Python 3.12 or newer and none was found."; \
	  echo "Install it (e.g. 'pyenv install 3.12', or your system's python3.12 package) and run make again."; \
	  exit 1; }; \
	echo "Using $$python ($$($$python --version))"; \
	[ -x $(PY) ] || $$python -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

.PHONY: setup
setup: $(VENV)/.installed

.PHONY: migrate
migrate: setup
	$(MANAGE) migrate --noinput

.PHONY: demo
demo: migrate
	$(MANAGE) load_seed_trials
	$(MANAGE) load_demo_data

.PHONY: run
run: demo
	@mkdir -p var
	$(MANAGE) collectstatic --noinput --verbosity 0
	@$(MANAGE) demo_logins --url http://$(HOST):$(PORT)/
	HOST=$(HOST) PORT=$(PORT) SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(VENV)/bin/honcho start -f Procfile

# Browser tests drive Debian's Chromium (Playwright cannot download a browser here).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium at /usr/bin/chromium: install it (e.g. 'sudo apt-get install chromium')."; \
	    exit 1; \
	  fi; }

.PHONY: test
test: setup chromium
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: migrations-check
migrations-check: setup
	$(MANAGE) makemigrations --check --dry-run

.PHONY: messages
messages: setup
	$(MANAGE) makemessages -l fr --no-obsolete --ignore=.venv --ignore=var
	$(MANAGE) compilemessages --ignore=.venv

.PHONY: stop
stop: setup
	$(PY) -m config.embedded stop
