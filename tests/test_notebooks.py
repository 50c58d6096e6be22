"""The notebooks in notebooks/ run top to bottom (small settings) and are committed without outputs.

Each notebook has one code cell tagged ``parameters``; the test inserts a cell right after it that
overrides those values (:data:`SMALL`), then executes everything with nbclient in a kernel of the
running interpreter, failing on any error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "surfrec-tests"

#: per notebook: values that replace the parameter cell's, so each runs in well under a minute
SMALL: dict[str, dict[str, object]] = {
    "01_quickstart.ipynb": {
        "ITERATIONS": 30,
        "THREADS": 1,
        "OVERRIDES": {"batch_points": 1024, "n_samples": 1024, "n_distance_samples": 512},
        "RESOLUTION": 40,
        "RENDER_SIZE": 96,
        "EVAL_SAMPLES": 5000,
    },
    "02_level_sets_2d.ipynb": {
        "STEPS": 60,
        "THREADS": 1,
        "N_SAMPLES": 256,
        "GRID": 80,
    },
    "03_residuals_and_projection.ipynb": {
        "ITERATIONS": 20,
        "THREADS": 1,
        "OVERRIDES": {"batch_points": 1024, "n_samples": 1024, "n_distance_samples": 512},
        "N_SEEDS": 2000,
    },
}

#: a cell that runs longer than this fails the test (the target is well under a minute per notebook)
CELL_TIMEOUT_S = 120


def parameter_cell_index(nb) -> int:
    idx = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(idx) == 1, "a notebook needs exactly one code cell tagged 'parameters'"
    assert nb.cells[idx[0]].cell_type == "code"
    return idx[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs: strip them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
    parameter_cell_index(nb)
    assert path.name in SMALL, f"add small settings for {path.name} to SMALL"


def test_every_notebook_is_there():
    assert {p.name for p in NOTEBOOKS} >= set(SMALL)


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory) -> str:
    """A kernelspec that runs this very interpreter, found first through JUPYTER_PATH.

    Nothing is installed: the spec lives in a temporary folder, so the test works in a fresh
    virtual environment and never picks another Python's ``python3`` kernel.
    """
    pytest.importorskip("nbclient")
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    kernelspec.write_kernel_spec(path=jupyter_dir / "kernels" / KERNEL,
                                 overrides={"display_name": f"surfrec tests ({sys.executable})"})
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(jupyter_dir))
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    yield KERNEL
    mp.undo()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, kernel_name, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    values = dict(SMALL.get(path.name, {}))
    if "OUT_DIR" in nb.cells[parameter_cell_index(nb)].source:
        values["OUT_DIR"] = str(tmp_path)  # keep the repository clean
    source = "# injected by tests/test_notebooks.py\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    nb.cells.insert(parameter_cell_index(nb) + 1, nbformat.v4.new_code_cell(source))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=kernel_name, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - t0
    print(f"{path.name}: {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
