# One-command entry points. Each target creates .venv on first use (CPU torch wheel first,
# so pip never pulls a multi-GB CUDA build), installs the project, then does its job.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: setup demo test test-all bench clean

$(BIN)/surfrec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev,ray]"
	@touch $@

setup: $(BIN)/surfrec  ## create .venv and install everything

demo: setup  ## reconstruct the example scan in data/ -> out/example.ply
	@mkdir -p out
	$(BIN)/surfrec fit data/example.xyz -o out/example.ply --save-model out/example.pt
	$(BIN)/surfrec eval out/example.ply --gt data/example.gt.ply --samples 50000

test: setup  ## the test suite (slow tests excluded); this is what CI runs
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup  ## every test, slow ones included
	$(BIN)/python -m pytest -q

bench: setup  ## surfrec vs screened Poisson on ../shared/data/bench
	$(BIN)/surfrec bench ../shared/data/bench --methods surfrec,poisson --out bench_out

clean:
	rm -rf $(VENV) out bench_out
