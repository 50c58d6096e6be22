"""Every invalid value of every option of every command: the table below is the spec.

Each row is ``(command, arguments, expected part of the one-line error)``; add a row when
you add an option with a range. Every row runs as its own ``python -m surfrec`` process
and must end with exit code 2, exactly one line on stderr (``surfrec CMD: error: ...``)
naming the option and the value, no traceback, nothing written (the process runs in an
empty folder that must stay empty), in under a second of CPU time and without importing
torch (rows marked ``TORCH`` may: they need torch to know the answer).

The second table checks that the library raises ``ValueError`` with the same words.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import surfrec.cli

REPO = Path(surfrec.cli.__file__).resolve().parents[2]
EXAMPLE = str(REPO / "data" / "example.xyz")
#: "-o OUT": a file in the row's (empty) folder, which must not exist afterwards.
OUT = "out.ply"
#: Rows that may import torch (to list the presets, or to ask whether CUDA works).
TORCH = "torch"

#: CPU seconds a rejected command may take (interpreter start-up included).
CPU_LIMIT_S = 1.0


def _cuda() -> tuple[bool, str]:
    """Whether this machine has CUDA, and what ``--device cuda:99`` must say."""
    import torch

    ok = torch.cuda.is_available()
    return ok, ("only" if ok else "CUDA is not available")


CUDA, CUDA_MESSAGE = _cuda()
#: On a machine with CUDA, ``--device cuda`` is valid: ask for a GPU that does not exist.
BAD_CUDA = "cuda:99" if CUDA else "cuda"


def _fit(*args: str) -> list[str]:
    return ["fit", EXAMPLE, "-o", OUT, *args]


def _mesh(*args: str) -> list[str]:
    return ["mesh", "model.pt", "-o", OUT, *args]


def _baseline(method: str, *args: str) -> list[str]:
    return ["baseline", method, EXAMPLE, "-o", OUT, *args]


# (command line, expected substring of the message[, TORCH])
ROWS: list[tuple] = [
    # ---- the dispatcher
    (["nope"], "invalid choice: 'nope'"),
    ([], "the following arguments are required: COMMAND"),
    # ---- fit
    (_fit("--iters", "-1"), "--iters: got -1, expected an integer >= 0"),
    (_fit("--engine", "gpu"), "--engine: invalid choice: 'gpu' (choose from 'auto', 'fused', 'torch')"),
    (_fit("--threads", "0"), "--threads: got 0, expected an integer >= 1"),
    (_fit("--report", "r.txt"), "--report: got 'r.txt', expected a file ending in .html or .htm"),
    (_fit("--report", "no/r.html"), "--report: got 'no/r.html'"),
    (_fit("--gt", "gt.ply"), "--gt: got 'gt.ply', expected an existing file"),
    (_fit("--gt", EXAMPLE), "--gt: the ground truth is scored in the report: give --report HTML too"),
    (_fit("--iters", "1.5"), "--iters: got '1.5', expected an integer >= 0"),
    (_fit("--iters", "many"), "--iters: got 'many', expected an integer"),
    (_fit("--time-budget", "-1"), "--time-budget: got -1, expected a number >= 0 (0: no limit)"),
    (_fit("--time-budget", "inf"), "--time-budget: got inf, expected a number >= 0"),
    (_fit("--lr", "0"), "--lr: got 0, expected a number > 0"),
    (_fit("--lr", "-0.01"), "--lr: got -0.01, expected a number > 0"),
    (_fit("--lr", "nan"), "--lr: got nan, expected a number > 0"),
    (_fit("--data-weight", "-3"), "--data-weight: got -3, expected a number >= 0"),
    (_fit("--seed", "-1"), "--seed: got -1, expected an integer in 0..4294967295"),
    (_fit("--seed", str(2**32)), "--seed: got 4294967296, expected an integer in 0..4294967295"),
    (_fit("--threads", "0"), "--threads: got 0, expected an integer >= 1"),
    (_fit("--device", BAD_CUDA), CUDA_MESSAGE, TORCH),
    (_fit("--device", "gpu"), "--device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
    (_fit("--device", "cpu:1"), "--device: got 'cpu:1', expected auto, cpu, cuda or cuda:N"),
    (_fit("--preset", "slow"), "--preset: got 'slow', expected one of default, fast, quality", TORCH),
    (_fit("--resolution", "7"), "--resolution: got 7, expected an integer in 16..2048"),
    (_fit("--resolution", "5000"), "--resolution: got 5000, expected an integer in 16..2048"),
    (_fit("--padding", "-0.1"), "--padding: got -0.1, expected a number in [0, 0.125]"),
    (_fit("--padding", "0.2"), "--padding: got 0.2, expected a number in [0, 0.125]"),
    (_fit("--level", "nan"), "--level: got nan, expected a finite number"),
    (_fit("--level", "inf"), "--level: got inf, expected a finite number"),
    (_fit("--components", "some"), "--components: invalid choice: 'some'"),
    (_fit("--surface", "flat"), "--surface: invalid choice: 'flat'"),
    (_fit("--method", "sparse"), "--method: invalid choice: 'sparse'"),
    (["fit", EXAMPLE, "-o", "no_folder/out.ply"], "--output: got 'no_folder/out.ply', but the folder"),
    (["fit", EXAMPLE, "-o", "out.docx"], "unsupported output extension '.docx'", TORCH),
    (_fit("--resume", "missing.ckpt.pt"), "--resume: got 'missing.ckpt.pt', expected an existing file"),
    (_fit("--checkpoint", "no_folder/c.pt"), "--checkpoint: got 'no_folder/c.pt', but the folder"),
    (_fit("--save-model", "no_folder/m.pt"), "--save-model: got 'no_folder/m.pt', but the folder"),
    (_fit("--preview", "view.jpg"), "--preview: view.jpg: the picture must be a .png file"),
    (_fit("--preview", "no_folder/v.png"), "--preview: no_folder/v.png: the folder"),
    (["fit"], "the following arguments are required: scan"),
    (_fit("--bogus", "1"), "unrecognized arguments: --bogus 1"),
    # ---- mesh
    (_mesh("--resolution", "7"), "--resolution: got 7, expected an integer in 16..2048"),
    (_mesh("--padding", "0.13"), "--padding: got 0.13, expected a number in [0, 0.125]"),
    (_fit("--trim", "-1"), "--trim: got -1, expected a number >= 0 (0: no trim, a watertight closed surface)"),
    (_mesh("--trim", "nan"), "--trim: got nan, expected a number >= 0"),
    (_fit("--fill", "-2"), "--fill: got -2, expected a number >= 0 (0: off)"),
    (_mesh("--fill", "inf"), "--fill: got inf, expected a number >= 0"),
    (_fit("--neighbors", "5"), "--neighbors: got 5, expected auto or an integer in 6..1024"),
    (_mesh("--neighbors", "0"), "--neighbors: got 0, expected auto or an integer in 6..1024"),
    (_mesh("--neighbors", "2.5"), "--neighbors: got '2.5', expected auto or an integer in 6..1024"),
    (_mesh("--level", "x"), "--level: got 'x', expected a finite number"),
    (_mesh("--device", "tpu"), "--device: got 'tpu', expected auto, cpu, cuda or cuda:N"),
    (_mesh("--device", BAD_CUDA), CUDA_MESSAGE, TORCH),
    (_mesh("--components", "none"), "--components: invalid choice: 'none'"),
    (_mesh("--method", "x"), "--method: invalid choice: 'x'"),
    (_mesh("--surface", "sheet"), "--surface: invalid choice: 'sheet'"),
    (["mesh", "model.pt", "-o", "no_folder/out.ply"], "--output: got 'no_folder/out.ply', but the folder"),
    (["mesh", "model.pt"], "the following arguments are required: -o/--output"),
    # ---- info
    (["info", EXAMPLE, "--sample-surface", "0"], "--sample-surface: got 0, expected an integer in 1..100000000"),
    (["info", EXAMPLE, "--sample-surface", "1e9"], "--sample-surface: got '1e9', expected an integer"),
    (["info", EXAMPLE, "--seed", "-5"], "--seed: got -5, expected an integer in 0..4294967295"),
    # ---- eval
    (["eval", "rec.ply", "--gt", "gt.ply", "--samples", "0"], "--samples: got 0, expected an integer in 1..100000000"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--samples", "1000000000"], "--samples: got 1000000000, expected"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--thresholds", "0,0.1"],
     "--thresholds: got 0 in '0,0.1', expected each to be a number in (0, 1]"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--thresholds", "2"], "--thresholds: got 2 in '2', expected each"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--thresholds", "a,b"], "--thresholds: got 'a,b', expected comma-separated"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--thresholds", ","], "--thresholds: got ',', expected comma-separated"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--seed", "-1"], "--seed: got -1, expected an integer in 0..4294967295"),
    (["eval", "rec.ply"], "nothing to score against: give --gt GT, --scan SCAN, or both"),
    (["eval", "rec.ply", "--gt", "gt.ply", "--json", "no_folder/r.json"], "output folder no_folder does not exist"),
    # ---- residuals
    (["residuals", "model.pt", "--steps", "10,-1"], "--steps: got -1 in '10,-1', expected each to be an integer in 0..1000"),
    (["residuals", "model.pt", "--steps", "1001"], "--steps: got 1001 in '1001', expected each"),
    (["residuals", "model.pt", "--steps", "ten"], "--steps: got 'ten', expected comma-separated"),
    (["residuals", "model.pt", "--level", "nan"], "--level: got nan, expected a finite number"),
    (["residuals", "model.pt", "--seeds", "0"], "--seeds: got 0, expected an integer in 1..10000000"),
    (["residuals", "model.pt", "--tol", "0"], "--tol: got 0, expected a number > 0"),
    (["residuals", "model.pt", "--tol=-1e-5"], "--tol: got -1e-05, expected a number > 0"),
    (["residuals", "model.pt", "--seed", "-1"], "--seed: got -1, expected an integer in 0..4294967295"),
    (["residuals", "model.pt", "--plot", "hist.svg"], "--plot: hist.svg: the picture must be a .png file"),
    (["residuals", "model.pt", "--json", "r.txt"], "--json: got 'r.txt', expected a file ending in .json"),
    (["residuals", "model.pt", "--device", "gpu"], "--device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
    (["residuals", "model.pt", "--device", BAD_CUDA], CUDA_MESSAGE, TORCH),
    # ---- baseline
    (["baseline", "marching", EXAMPLE, "-o", OUT], "method: invalid choice: 'marching'"),
    (_baseline("poisson", "--depth", "0"), "--depth: got 0, expected an integer in 1..16"),
    (_baseline("poisson", "--depth", "17"), "--depth: got 17, expected an integer in 1..16"),
    (_baseline("poisson", "--density-quantile", "1"), "--density-quantile: got 1, expected a number in [0, 1)"),
    (_baseline("poisson", "--density-quantile", "-0.1"), "--density-quantile: got -0.1, expected a number in [0, 1)"),
    (_baseline("ball-pivoting", "--radii", "0,1"), "--radii: got 0 in '0,1', expected each to be a number > 0"),
    (_baseline("ball-pivoting", "--radii", "-1"), "--radii: got -1 in '-1', expected each to be a number > 0"),
    (_baseline("poisson", "--normals", "guess"), "--normals: invalid choice: 'guess'"),
    (_baseline("poisson", "--radii", "0.1"), "--radii: only applies to ball-pivoting"),
    (_baseline("ball-pivoting", "--depth", "8"), "--depth: only applies to poisson"),
    (["baseline", "poisson", EXAMPLE, "-o", "no_folder/out.ply"], "--output: got 'no_folder/out.ply', but the folder"),
    # ---- bench
    (["bench", "cases", "--methods", "surfrec,marching"], "--methods: got marching, expected comma-separated methods"),
    (["bench", "cases", "--samples", "0"], "--samples: got 0, expected an integer in 1..100000000"),
    (["bench", "cases", "--resolution", "8"], "--resolution: got 8, expected an integer in 16..2048"),
    (["bench", "cases", "--poisson-depth", "20"], "--poisson-depth: got 20, expected an integer in 1..16"),
    (["bench", "cases", "--seed", "-1"], "--seed: got -1, expected an integer in 0..4294967295"),
    (["bench", "cases", "--iters", "-10"], "--iters: got -10, expected an integer >= 0"),
    (["bench", "cases", "--timeout", "0"], "--timeout: got 0, expected a number > 0"),
    (["bench", "cases", "--device", "gpu"], "--device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
    (["bench", "cases", "--html", "b.txt"], "--html: got 'b.txt', expected a file ending in .html or .htm"),
    (["bench", "cases", "--html", "no/b.html"], "no/b.html: output folder no does not exist"),
    # ---- report
    (["report", "model.pt", "-o", "r.html"], "model: got 'model.pt', expected an existing file"),
    (["report", EXAMPLE, "-o", "r.txt"], "--output: got 'r.txt', expected a file ending in .html or .htm"),
    (["report", EXAMPLE, "-o", "no/r.html"], "--output: got 'no/r.html'"),
    (["report", EXAMPLE, "-o", "r.html", "--device", "gpu"], "--device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
    (["report", EXAMPLE, "-o", "r.html", "--gt", "gt.ply"], "--gt: got 'gt.ply', expected an existing file"),
    (["report", EXAMPLE, "missing.ply", "-o", "r.html"], "mesh: got 'missing.ply', expected an existing file"),
    # ---- batch
    (["batch", EXAMPLE, "-o", "outdir", "--workers", "0"], "--workers: got 0, expected an integer >= 1"),
    (["batch", EXAMPLE, "-o", "outdir", "--threads", "0"], "--threads: got 0, expected an integer >= 1"),
    (["batch", EXAMPLE, "-o", "outdir", "--preset", "slow"], "--preset: got 'slow', expected one of", TORCH),
    (["batch", EXAMPLE, "-o", "outdir", "--iters", "-1"], "--iters: got -1, expected an integer >= 0"),
    (["batch", EXAMPLE, "-o", "outdir", "--fill", "-1"], "--fill: got -1, expected a number >= 0 (0: off)"),
    (["batch", EXAMPLE, "-o", "outdir", "--trim", "x"], "--trim: got 'x', expected a number >= 0"),
    (["batch", EXAMPLE, "-o", "outdir", "--neighbors", "4"], "--neighbors: got 4, expected auto or an integer in 6..1024"),
    (["batch", EXAMPLE, "-o", "outdir", "--time-budget", "-2"], "--time-budget: got -2, expected a number >= 0"),
    (["batch", EXAMPLE, "-o", "outdir", "--seed", "-1"], "--seed: got -1, expected an integer in 0..4294967295"),
    (["batch", EXAMPLE, "-o", "outdir", "--resolution", "7"], "--resolution: got 7, expected an integer in 16..2048"),
    (["batch", EXAMPLE, "-o", "outdir", "--level", "inf"], "--level: got inf, expected a finite number"),
    (["batch", EXAMPLE, "-o", "outdir", "--device", "gpu"], "--device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
    (["batch", EXAMPLE, "-o", "outdir", "--device", BAD_CUDA], CUDA_MESSAGE, TORCH),
    (["batch", EXAMPLE, "-o", "outdir", "--format", "vtk"], "--format: invalid choice: 'vtk'"),
    (["batch", EXAMPLE, "-o", "outdir", "--components", "x"], "--components: invalid choice: 'x'"),
    (["batch", EXAMPLE, "-o", "outdir", "--surface", "x"], "--surface: invalid choice: 'x'"),
    # ---- render
    (["render", EXAMPLE, "-o", "p.png", "--views", "0"], "--views: got 0, expected an integer in 1..64"),
    (["render", EXAMPLE, "-o", "p.png", "--views", "65"], "--views: got 65, expected an integer in 1..64"),
    (["render", EXAMPLE, "-o", "p.png", "--size", "15"], "--size: got 15, expected an integer in 16..4096"),
    (["render", EXAMPLE, "-o", "p.png", "--size", "5000"], "--size: got 5000, expected an integer in 16..4096"),
    (["render", EXAMPLE, "-o", "p.png", "--color", "heat"], "--color: invalid choice: 'heat'"),
    (["render", EXAMPLE, "-o", "p.png", "--up", "x"], "--up: invalid choice: 'x'"),
    (["render", EXAMPLE, "-o", "p.png", "--backend", "vulkan"], "--backend: invalid choice: 'vulkan'"),
    (["render", EXAMPLE, "-o", "p.jpg"], "--output: p.jpg: the picture must be a .png file"),
    # ---- study
    (["study", "everything"], "NAME: invalid choice: 'everything'"),
    (["study", "seeds", "--seed", "-1"], "--seed: got -1, expected an integer in 0..4294967295"),
    (["study", "seeds", "--device", "gpu"], "--device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
    (["study", "seeds", "--device", BAD_CUDA], CUDA_MESSAGE, TORCH),
]

#: Every command must have rows (a new command needs its own).
COMMANDS = ("fit", "mesh", "info", "eval", "residuals", "baseline", "bench", "batch", "render", "study", "report")

#: Options that take no value or any text: no invalid value to test.
FREE_OPTIONS = {"-h", "--help", "-v", "--verbose", "-q", "--quiet", "--version", "--no-refine", "--json",
                "--quick", "--force", "--save-models", "--ray", "--cases", "--out", "--gt", "--scan",
                "--out-dir"}


def _row_id(row: tuple) -> str:
    return " ".join(a if a != EXAMPLE else "SCAN" for a in row[0]) or "(no arguments)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, tuple[int, str, str, float, bool, list[str]]]:
    """All rows, each in a fresh empty folder, a few at a time; returns per row index
    (exit code, stdout, stderr, CPU seconds, torch imported, files left in the folder)."""
    root = tmp_path_factory.mktemp("cli_args")
    # imports surfrec's CLI and runs it, then records whether torch got imported
    driver = (
        "import sys\n"
        "mark = sys.argv.pop(1)\n"
        "from surfrec.cli.main import main\n"
        "try:\n"
        "    code = main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "open(mark, 'w').write('torch' if 'torch' in sys.modules else '')\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    results: dict[int, tuple] = {}
    running: dict[int, tuple] = {}

    def finish(i: int) -> None:
        proc, folder, out, err, mark = running.pop(i)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.close(), err.close()
        cpu = usage.ru_utime + usage.ru_stime
        files = sorted(p.name for p in folder.iterdir())
        torch_used = mark.read_text() == "torch"
        results[i] = (proc.returncode, (mark.parent / "stdout").read_text(), (mark.parent / "stderr").read_text(),
                      cpu, torch_used, files)

    width = max(2, min(4, os.cpu_count() or 2))
    for i, row in enumerate(ROWS):
        if len(running) >= width:
            finish(next(iter(running)))
        base = root / f"row{i}"
        folder = base / "cwd"
        folder.mkdir(parents=True)
        out, err = open(base / "stdout", "w"), open(base / "stderr", "w")
        mark = base / "mark"
        proc = subprocess.Popen([sys.executable, "-c", driver, str(mark), *row[0]], cwd=folder, stdout=out,
                                stderr=err, env=env)
        running[i] = (proc, folder, out, err, mark)
    while running:
        finish(next(iter(running)))
    return results


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[_row_id(r) for r in ROWS])
def test_invalid_argument_is_one_line_exit_2_and_nothing_written(runs, index):
    argv, expected, *flags = ROWS[index]
    code, stdout, stderr, cpu, torch_used, files = runs[index]
    command = argv[0] if argv and argv[0] in COMMANDS else None
    lines = stderr.strip().splitlines()
    assert code == 2, (code, stderr)
    assert "Traceback" not in stderr and stdout == "", (stdout, stderr)
    assert len(lines) == 1, stderr
    prefix = f"surfrec {command}: error: " if command else "surfrec: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert expected in lines[0], lines[0]
    assert files == [], files  # no output file, no temporary file, no checkpoint
    if TORCH not in flags:
        assert not torch_used, "rejected before torch is imported"
        assert cpu < CPU_LIMIT_S, f"{cpu:.2f} s of CPU"


def test_every_command_and_every_option_with_a_value_has_a_row():
    """The table covers every command, and every option that takes a value (a new option
    needs a row, or a place in FREE_OPTIONS when any value is valid)."""
    from surfrec.cli.main import build_parser

    tested = {a for row in ROWS for a in row[0] if a.startswith("-")}
    for command in COMMANDS:
        assert any(row[0][:1] == [command] for row in ROWS), command
        parser = build_parser(only=command)
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            names = set(action.option_strings)
            assert names & (tested | FREE_OPTIONS), f"surfrec {command} {'/'.join(action.option_strings)}: no row"


# ---- the library says the same ------------------------------------------------------------


def _cli_problem(runs: dict, option: str, value: str) -> str:
    """What ``surfrec ... OPTION VALUE`` printed after ``OPTION: `` (its row's stderr)."""
    for i, (argv, *_) in enumerate(ROWS):
        if any(a == option and v == value for a, v in zip(argv, argv[1:])):
            line = runs[i][2].strip()
            return line.split(f"{option}: ", 1)[1]
    raise KeyError((option, value))


def _library_calls():
    from surfrec import extract_mesh
    from surfrec.device import resolve_device
    from surfrec.settings import get_config
    from surfrec.evaluation.residuals import residual_report
    from surfrec.settings import FitConfig
    from surfrec.evaluation.metrics import evaluate
    from surfrec.evaluation.render import render

    return [
        ("--iters -1", lambda: FitConfig(iterations=-1), "FitConfig.iterations"),
        ("--time-budget -1", lambda: FitConfig(time_budget=-1), "FitConfig.time_budget"),
        ("--lr 0", lambda: FitConfig(lr=0), "FitConfig.lr"),
        ("--lr nan", lambda: FitConfig(lr=math.nan), "FitConfig.lr"),
        ("--data-weight -3", lambda: FitConfig(data_weight=-3), "FitConfig.data_weight"),
        ("--seed -1", lambda: FitConfig(seed=-1), "FitConfig.seed"),
        ("--threads 0", lambda: FitConfig(threads=0), "FitConfig.threads"),
        ("--resolution 7", lambda: extract_mesh("model.pt", resolution=7), "MeshConfig.resolution"),
        ("--padding 0.2", lambda: extract_mesh("model.pt", padding=0.2), "MeshConfig.padding"),
        ("--level inf", lambda: extract_mesh("model.pt", level=math.inf), "MeshConfig.level"),
        ("--resolution 7", lambda: get_config("fast", resolution=7), "MeshConfig.resolution"),
        ("--samples 0", lambda: evaluate("rec.ply", "gt.ply", n_samples=0), "n_samples"),
        ("--seeds 0", lambda: residual_report(None, n_seeds=0), "n_seeds"),
        ("--tol 0", lambda: residual_report(None, tol=0), "tol"),
        ("--views 0", lambda: render(None, views=0), "views"),
        ("--size 15", lambda: render(None, size=15), "size"),
        ("--device gpu", lambda: resolve_device("gpu"), "device"),
        (f"--device {BAD_CUDA}", lambda: resolve_device(BAD_CUDA), "device"),
    ]


@pytest.mark.parametrize("case", range(18))
def test_library_raises_value_error_with_the_cli_words(runs, case):
    """``FitConfig(lr=0)`` and ``surfrec fit --lr 0`` say the same after the name."""
    from surfrec.errors import SurfrecError

    calls = _library_calls()
    assert len(calls) == 18
    cli, call, name = calls[case]
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, SurfrecError)  # the CLI reports it as one line, exit 2
    assert str(info.value) == f"{name}: {_cli_problem(runs, *cli.split())}"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("ModelConfig(hidden_dim=0)", "ModelConfig.hidden_dim: got 0, expected an integer >= 1"),
        ("ModelConfig(softplus_beta=-1.0)", "ModelConfig.softplus_beta: got -1, expected a number > 0"),
        ("RefineConfig(neighbors=3)", "RefineConfig.neighbors: got 3, expected an integer >= 6"),
        ("RefineConfig(normal_agreement=2.0)", "RefineConfig.normal_agreement: got 2, expected a number in [-1, 1]"),
        ("RefineConfig(neighbors=40, max_neighbors=20)", "RefineConfig.max_neighbors: got 20, expected an integer >= "),
        ("FitConfig(refresh_fraction=1.5)", "FitConfig.refresh_fraction: got 1.5, expected a number in [0, 1]"),
        ("FitConfig(iterations=10.0)", "FitConfig.iterations: got 10.0, expected an integer >= 0"),
        ("FitConfig(lr=float('inf'))", "FitConfig.lr: got inf, expected a number > 0"),
        ("FitConfig(grid_optimizer='sgd')", "FitConfig.grid_optimizer: got 'sgd'"),
        ("resolve_device('gpu')", "device: got 'gpu', expected auto, cpu, cuda or cuda:N"),
        (f"resolve_device({BAD_CUDA!r})", CUDA_MESSAGE),
        ("evaluate('rec.ply', 'gt.ply', threshold_fractions=[0.01, 0])",
         "threshold_fractions: got 0, expected each to be a number in (0, 1]"),
        ("residual_report(None, steps=[-1])", "steps: got -1, expected each to be an integer in 0..1000"),
        ("run_bench('cases', 'out', ['surfrec'], timeout=0)", "timeout: got 0, expected a number > 0"),
    ],
)
def test_library_configs_and_functions_reject_out_of_range_values(call, expected):
    from surfrec.bench import run_bench  # noqa: F401 - used by eval
    from surfrec.device import resolve_device  # noqa: F401
    from surfrec.evaluation.residuals import residual_report  # noqa: F401
    from surfrec.settings import FitConfig  # noqa: F401
    from surfrec.evaluation.metrics import evaluate  # noqa: F401
    from surfrec.settings import ModelConfig  # noqa: F401
    from surfrec.settings import RefineConfig  # noqa: F401

    with pytest.raises(ValueError) as info:
        eval(call)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_library_accepts_the_edges_of_each_range():
    """The bounds themselves are valid where the range is closed (no off-by-one in the table)."""
    from surfrec.settings import FitConfig, MeshConfig
    from surfrec.settings.declare import declared
    from surfrec.validation import Range

    FitConfig(iterations=0, time_budget=0, data_weight=0, seed=2**32 - 1, threads=1, refresh_fraction=1.0)
    MeshConfig(resolution=16, padding=0.125)
    MeshConfig(resolution=2048, fill=0, trim=0, neighbors=1024)
    mesh = {f.name: s.range for f, s in declared(MeshConfig)}
    fit = {f.name: s.range for f, s in declared(FitConfig)}
    assert mesh["resolution"].contains(16) and mesh["resolution"].contains(2048)
    assert mesh["padding"].contains(0.125) and not mesh["padding"].contains(0.1251)
    assert fit["lr"].contains(1e-12) and not fit["lr"].contains(0.0)
    assert not Range(integer=True).contains(True) and not Range().contains(math.nan)
    assert Range(0, 1, lo_open=True, hi_open=True).describe() == "a number in (0, 1)"


def test_quiet_hides_warnings_about_the_scan(tmp_path):
    """A planar scan is warned about, but not with --quiet (only errors are printed)."""
    import numpy as np

    rng = np.random.default_rng(0)
    plane = np.c_[rng.uniform(-1, 1, (400, 2)), np.zeros(400)]
    scan = tmp_path / "plane.xyz"
    np.savetxt(scan, plane)
    cmd = [sys.executable, "-m", "surfrec", "fit", str(scan), "--iters", "2", "--resolution", "16", "--device",
           "cpu", "--threads", "1", "--no-refine"]
    loud = subprocess.run([*cmd, "-o", str(tmp_path / "a.ply")], capture_output=True, text=True, timeout=300)
    quiet = subprocess.run([*cmd, "-o", str(tmp_path / "b.ply"), "-q"], capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and quiet.returncode == 0, (loud.stderr, quiet.stderr)
    assert "all points lie in one plane" in loud.stderr
    assert quiet.stderr == "", quiet.stderr


def test_parse_errors_are_fast_in_process():
    """The argparse types alone (no subprocess): microseconds, whatever the machine's load."""
    from surfrec.cli.main import main

    t0 = time.process_time()
    for _ in range(20):
        with pytest.raises(SystemExit) as info:
            main(["info", EXAMPLE, "--seed", "-1"])
        assert info.value.code == 2
    assert time.process_time() - t0 < 1.0
