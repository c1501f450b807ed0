# Two entry points for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/kmodemu: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/kmodemu

demo: setup
	$(BIN)/kmodemu demo

test: setup
	$(BIN)/python -m pytest -n auto -q

.PHONY: setup demo test
