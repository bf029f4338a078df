# The two commands: `make run` (demo registry) and `make test` (whole test suite).
# Everything they need is installed here from PyPI and Debian; nothing by hand.
# `make help` lists every target: a target's `## text` on its rule line is its help.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

.PHONY: run test lint venv screenshots help

venv: $(STAMP) ## create .venv and install the pinned requirements*.txt (the others do it too)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Translations are compiled from locale/*.po on every run; the .mo files are not in git.
COMPILE_MESSAGES := DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv --ignore=var --verbosity=0

run: $(STAMP) ## serve the demo registry with its worker and scheduler (prints the URL and logins)
	bash scripts/ensure-debian-packages
	$(COMPILE_MESSAGES)
	$(BIN)/python -m registry.project.launcher

test: $(STAMP) ## run the whole test suite (a subset: make test PYTEST_ARGS="-k admin")
	bash scripts/ensure-debian-packages
	$(COMPILE_MESSAGES)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check, ruff format --check and makemigrations --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

# The documentation's screenshots (docs/images/), taken in Chromium against the demo cohort.
# Outside `make test`; installs nothing more than it does.
screenshots: $(STAMP) ## retake the screenshots of docs/ and the README into docs/images/
	bash scripts/ensure-debian-packages
	$(COMPILE_MESSAGES)
	DOCS_SCREENSHOTS=1 $(BIN)/python -m pytest tests/screenshots -p no:cacheprovider $(PYTEST_ARGS)

help: ## list these targets
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
