# One-command entry points. Each target creates .venv on first use (CPU torch wheel first,
# so pip never pulls a multi-GB CUDA build), installs the project, then does its job.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: setup libusb demo test test-all bench clean

$(BIN)/surfrec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev,ray]"
	@touch $@

setup: libusb $(BIN)/surfrec  ## create .venv and install everything

# open3d's wheel links the system library libusb-1.0, which pip cannot install. Only the
# classical baselines (surfrec baseline / bench --methods poisson) use open3d; fit, mesh,
# eval, render, residuals and batch do not. Installed here when running as root with
# apt-get; otherwise one line says so and the target still succeeds.
LIBUSB_FIX := apt-get install -y libusb-1.0-0
libusb:
	@if ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && { DEBIAN_FRONTEND=noninteractive $(LIBUSB_FIX) >/dev/null 2>&1 \
	       || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $(LIBUSB_FIX) >/dev/null 2>&1; }; }; then \
	  echo "installed libusb-1.0-0 (open3d needs it for the Poisson baseline)"; \
	else \
	  echo "note: libusb-1.0 is missing and was not installed (needs root and apt-get): all but 'surfrec baseline' works; fix: sudo $(LIBUSB_FIX) (or SURFREC_ALLOW_NO_OPEN3D=1 make test to skip the open3d tests)"; \
	fi

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
