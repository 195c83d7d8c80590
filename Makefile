# The project's interface: demo, test, up, down, status, logs, token, bench, package.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint up down status logs token bench package venv clean

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> creating $(VENV) and installing pinned requirements (first run takes about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(STAMP)

demo: venv
	@$(BIN)/python -m tools.demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -ra

# The local cloud stack (tools/stack): see README, "Local stack".
up: venv
	@$(BIN)/python -m tools.stack up

down: venv
	@$(BIN)/python -m tools.stack down

status: venv
	@$(BIN)/python -m tools.stack status

logs: venv
	@$(BIN)/python -m tools.stack logs $(SERVICE) --lines $(or $(LINES),30)

token: venv
	@$(BIN)/python -m tools.stack token "$(USER)"

bench package:
	@echo "make $@: not available yet (its issue has not landed)"; exit 1

clean: down
	rm -rf .local out dist
