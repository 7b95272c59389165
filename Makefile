# Aftercare: `make run` serves the bot on embedded defaults; `make test` runs every check.
# `make install` is the idempotent set-up both use: Python packages into .venv,
# npm packages into node_modules; `make test` also installs Debian's chromium if absent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS := --disable-pip-version-check --quiet $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
CHROMIUM ?= /usr/bin/chromium

.PHONY: install run test lint unit browser chromium clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, alone and exact, so the CPU build is taken rather than a multi-GB CUDA one.
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt torch==2.13.0
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt -e '.[cosmos,openai,local,voice,azure-voice,azure-safety,observability,dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

chromium:
	@test -x $(CHROMIUM) || { \
		echo "installing Debian's chromium for the browser tests"; \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	}

run: install
	$(BIN)/python app.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install chromium lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache test-artifacts
