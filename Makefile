# Two entry points for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/kmodemu: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/kmodemu

demo: setup
	$(BIN)/kmodemu demo

test: setup
	$(BIN)/python -m pytest -n auto -q

# Long runs, not part of `make test`: at least 2000 examples for every property test and
# stateful runs of at least 200 steps (KMODEMU_SOAK, tests/conftest.py), then the whole-stack
# state machine in ten rounds of 200 runs of up to 2000 steps (docs/reliability.md).
soak: setup
	KMODEMU_SOAK=1 $(BIN)/python -m pytest -n auto -q --hypothesis-profile=soak \
	    --deselect tests/reliability/test_stack_stateful.py::test_stack
	STACK_STEPS=2000 STACK_ROUNDS=10 $(BIN)/python -m pytest -n auto -q tests/reliability/test_stack_stateful.py

# Fuzz every parser an outsider can feed (tests/fuzz): FUZZ_EXAMPLES inputs per target,
# each bounded by FUZZ_INPUT_SECONDS. Override: make fuzz FUZZ_EXAMPLES=1000000
FUZZ_EXAMPLES ?= 100000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_INPUT_SECONDS=5 $(BIN)/python -m pytest -n auto -q tests/fuzz

bench: setup
	$(BIN)/python benchmarks/bench_hotpath.py
	$(BIN)/python benchmarks/bench_frontends.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_kmod.py
	$(BIN)/python benchmarks/bench_completion.py
	$(BIN)/python benchmarks/bench_unload.py

.PHONY: setup demo test soak bench fuzz
