# One-command set-up: every target creates .venv if needed and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-all lint bench bench-jax docs clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing torch (CPU wheel pinned in constraints.txt) ..."
	$(BIN)/python -m pip install -q -c constraints.txt torch
	@echo "installing mosaic-marl with dev and ray extras ..."
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ray]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/marl train

test: lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/learning.py

# JaxMARL side by side (benchmarks/throughput.py part f): the jaxbench extra, then only that part
bench-jax: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ray,jaxbench]"
	$(BIN)/python benchmarks/throughput.py --skip-pettingzoo --batched-envs ''

docs: $(STAMP)
	$(BIN)/python -m marl.reference

clean:
	rm -rf $(VENV) runs .pytest_cache
