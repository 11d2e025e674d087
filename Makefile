# covtool: two commands on a fresh machine -- `make demo` and `make test`.
# Both create .venv and install covtool into it when missing (or when pyproject.toml changed).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.covtool-installed
DEMO_DIR ?= demo-out
PYTEST_ARGS ?=
# test processes (pytest-xdist, one test file per process): TensorFlow traces a model's graph on one
# core, so two processes on two cores nearly halve the suite's time; at most 4 (memory)
TEST_JOBS ?= $(shell $(PYTHON) -c "import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))" 2>/dev/null || echo 2)

.PHONY: demo test test-slurm bench lint install clean realdata

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/covtool demo -d $(DEMO_DIR) --force

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

# the Slurm examples on a real single-node Slurm: as root, installs Debian's slurm-wlm and munge
# when missing (a plain `make test` runs these only where Slurm is already installed)
test-slurm: $(STAMP)
	COVTOOL_SLURM_INSTALL=1 $(PY) -m pytest -q tests/examples/test_slurm.py -rs

# every reader and stage on the real releases in ../shared/data (DATA=...), with what each found
DATA ?= ../shared/data
realdata: $(STAMP)
	$(PY) examples/realdata.py --data $(DATA) --out realdata-out

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

lint: $(STAMP)
	$(VENV)/bin/ruff check covtool tests benchmarks

clean:
	rm -rf $(DEMO_DIR) realdata-out .pytest_cache .ruff_cache
