# The two commands: `make run` (demo registry) and `make test` (whole test suite).
# Everything they need is installed here from PyPI and Debian; nothing by hand.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

.PHONY: run test lint venv

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Translations are compiled from locale/*.po on every run; the .mo files are not in git.
COMPILE_MESSAGES := DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv --ignore=var --verbosity=0

run: $(STAMP)
	bash scripts/ensure-debian-packages
	$(COMPILE_MESSAGES)
	$(BIN)/python -m registry.project.launcher

test: $(STAMP)
	bash scripts/ensure-debian-packages
	$(COMPILE_MESSAGES)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
