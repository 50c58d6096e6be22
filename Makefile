# One-command entry points. Each target creates .venv on first use (CPU torch wheel first,
# so pip never pulls a multi-GB CUDA build), installs the project, then does its job.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: setup system demo test test-all bench docs clean

$(BIN)/surfrec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $@

setup: system $(BIN)/surfrec  ## create .venv and install everything

# System packages pip cannot install: libusb-1.0 (open3d's wheel links it; only the Poisson
# and ball-pivoting baselines use open3d) and Chromium (the browser tests of the HTML
# report run the system's headless Chromium). Installed with apt-get when running as root
# and missing; otherwise one line says which are missing and the target still succeeds
# (the tests that need them skip, or fail when $$CI is set).
SYSTEM_PACKAGES := libusb-1.0-0 chromium
system:
	@missing=""; \
	ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0' || missing="$$missing libusb-1.0-0"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system packages:$$missing"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; } \
	    || echo "note: apt-get install$$missing failed"; \
	else \
	  echo "note: system packages missing:$$missing (not installed: needs root and apt-get); all of surfrec but the Poisson baseline works; fix: sudo apt-get install -y$$missing"; \
	fi

demo: setup  ## reconstruct the example scan in data/ -> out/example.ply and its report out/example.html
	@mkdir -p out
	$(BIN)/surfrec fit data/example.xyz -o out/example.ply --save-model out/example.pt \
	  --report out/example.html --gt data/example.gt.ply
	$(BIN)/surfrec eval out/example.ply --gt data/example.gt.ply --samples 50000

test: setup  ## the test suite (slow tests excluded); this is what CI runs
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup  ## every test, slow ones included
	$(BIN)/python -m pytest -q

bench: setup  ## surfrec vs screened Poisson on ../shared/data/bench, with the HTML page
	$(BIN)/surfrec bench ../shared/data/bench --methods surfrec,poisson --out bench_out --html bench_out/bench.html

docs: setup  ## the API reference (mkdocs) -> site/
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) out bench_out site
