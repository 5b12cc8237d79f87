# pgdl-bench: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# TASK= (empty) scores the embedded default zoos; TASK=path/to/task scores a PGDL task folder
TASK ?=
# torch is pinned here, where it is installed: 2.13.0's CPU wheel (an unpinned torch pulls a CUDA build).
TORCH ?= torch==2.13.0

.PHONY: setup setup-test run leaderboard test test-slow bench docs docs-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[fast]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,tf]"
	touch $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

run: setup
	$(BIN)/pgdl-bench score $(TASK)

leaderboard: setup
	$(BIN)/pgdl-bench leaderboard $(TASK)

test: setup-test
	$(BIN)/python -m pytest -q

test-slow: setup-test
	$(BIN)/python -m pytest -q -m slow

bench: setup-test
	$(BIN)/python -m scripts.perf

# docs: rerun the command of every output block of README.md and docs/ and rewrite the block (scripts/docs.py)
docs: setup
	$(BIN)/python -m scripts.docs

docs-check: setup
	$(BIN)/python -m scripts.docs --check

clean:
	rm -rf $(VENV) predictions leaderboard perf_report .pytest_cache
