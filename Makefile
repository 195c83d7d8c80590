# The project's interface: demo, test, up, down, status, logs, token, bench, package.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: demo test lint up down status logs token bench package venv clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@echo "==> creating $(VENV) and installing pinned requirements (first run takes about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(STAMP)

# checkov and its HCL parser live apart: their pins clash with the app's (requirements-infra.txt).
$(INFRA_STAMP): requirements-infra.txt constraints-infra.txt
	@echo "==> creating $(INFRA_VENV) for the offline terraform checks (about a minute)"
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	@$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt -c constraints-infra.txt
	@touch $@

demo: venv
	@$(BIN)/python -m tools.demo $(if $(KEEP_RUNNING),--keep-running)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(INFRA_STAMP)
	$(BIN)/pytest -ra

# The local cloud stack (tools/stack): see README, "Local stack".
up: venv
	@$(BIN)/python -m tools.stack up

down: venv
	@$(BIN)/python -m tools.stack down

package: venv
	@$(BIN)/python -m tools.package

bench: venv
	@for script in bench/bench_*.py; do echo "==> $$script"; $(BIN)/python $$script || exit 1; done

status: venv
	@$(BIN)/python -m tools.stack status

logs: venv
	@$(BIN)/python -m tools.stack logs $(SERVICE) --lines $(or $(LINES),30)

token: venv
	@$(BIN)/python -m tools.stack token "$(USER)"

clean: down
	rm -rf .local out dist
