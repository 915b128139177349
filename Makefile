# make demo: the default experiment on a fresh machine.  make test: the test suite.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
OUT     ?= runs/default

.PHONY: demo test test-fast bench install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned to the CPU wheel on disk, so nothing pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/doublebind run --out $(OUT)

# two pytest workers (one per core; they share the tiny finished run, see tests/conftest.py)
test: $(STAMP)
	sh tests/ensure_chromium.sh
	$(BIN)/python -m pytest -q -n 2

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

bench: $(STAMP)
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/distill_throughput.py
	$(BIN)/python bench/probe_bench.py
	$(BIN)/python bench/model_stack.py

clean:
	rm -rf $(VENV) runs
