"""Time and peak memory of ``surfrec.surface.extract.extract_mesh_from_field`` per resolution.

Each resolution runs in a fresh subprocess, so its peak resident memory (VmHWM) is its
own. The field is, by default, an MLP built here (4 hidden layers of 256 units,
Softplus(beta=100), geometric sphere initialization) plus a smooth analytic bump term,
so the level set is a bumpy sphere with more area than a plain sphere. ``--model PATH``
benchmarks a model file written by ``surfrec fit --save-model`` instead.

Usage::

    python benchmarks/mesh_resolution.py                          # 128 256 512 1024, writes MESH_RESULTS.md
    python benchmarks/mesh_resolution.py --resolutions 128 256 --method narrowband --no-write
    python benchmarks/mesh_resolution.py --model out/example.pt
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "MESH_RESULTS.md"
BOUNDS = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])

log = logging.getLogger("mesh_resolution")


# --------------------------------------------------------------------------- the field


def build_field(hidden: int, layers: int, seed: int):
    """A bumpy-sphere field ``F(x) = MLP(x) + a * sin(wx) sin(wy) sin(wz)`` in torch.

    The MLP has the geometric initialization of SAL (Atzmon & Lipman 2020), so that
    ``MLP(x) ~ |x| - 0.5``; the bump term (``a = 0.04``, ``w = 10``) adds detail that the
    narrow band must follow (``|grad F|`` up to ~1.4).

    Returns
    -------
    torch.nn.Module
        ``(M, 3) float32 tensor -> (M,) float32 tensor``.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class BumpySphere(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dims = [3] + [hidden] * layers
            self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
            self.out = nn.Linear(hidden, 1)
            self.act = nn.Softplus(beta=100)
            for lin in self.hidden:
                nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0) / math.sqrt(lin.out_features))
                nn.init.zeros_(lin.bias)
            nn.init.normal_(self.out.weight, math.sqrt(math.pi) / math.sqrt(hidden), 1e-4)
            nn.init.constant_(self.out.bias, -0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x
            for lin in self.hidden:
                h = self.act(lin(h))
            bumps = 0.04 * torch.sin(10 * x).prod(dim=1)
            return self.out(h).squeeze(1) + bumps

    return BumpySphere().eval()


def numpy_field(module, sub_batch: int):
    """Wrap a torch module as ``(M, 3) float32 ndarray -> (M,) float32 ndarray``.

    ``sub_batch`` points go through the network at a time: on CPU, batches of ~16k keep
    the activations in cache and run faster than one large batch.
    """
    import torch

    def f(points: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        out = np.empty(len(points), np.float32)
        with torch.inference_mode():
            for s in range(0, len(points), sub_batch):
                out[s : s + sub_batch] = module(x[s : s + sub_batch]).numpy()
        return out

    return f


class Timed:
    """Counts the points and the seconds spent in the field."""

    def __init__(self, f) -> None:
        self.f = f
        self.points = 0
        self.seconds = 0.0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        out = self.f(p)
        self.seconds += time.perf_counter() - t
        self.points += len(p)
        return out


# ------------------------------------------------------------------------------ worker


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(args: argparse.Namespace) -> dict:
    """One extraction; returns the measurements (printed as JSON by ``main``)."""
    import torch

    from surfrec.surface.extract import extract_mesh_from_field
    from surfrec.surface.components import mesh_report

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        from surfrec.result import load_model
        from surfrec.surface.extract import extraction_box

        result = load_model(args.model)
        module = result.model.eval()
        level = result.config.fit.level
        _, bounds = extraction_box(result.config.fit.box, result.config.mesh.padding)  # the model's own box
    else:
        module = build_field(args.hidden, args.layers, args.seed)
        level, bounds = 0.0, BOUNDS
    field = Timed(numpy_field(module, args.sub_batch))
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    mesh = extract_mesh_from_field(
        field, bounds, args.resolution, level,
        method=args.method, chunk_size=args.chunk_size, band_factor=args.band_factor,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    peak_extract = peak_rss_mb()  # before mesh_report, which needs memory of its own
    report = mesh_report(mesh)
    n_samples = args.resolution**3
    return {
        "resolution": args.resolution,
        "method": args.method if args.method != "auto" else ("narrowband" if args.resolution > 128 else "dense"),
        "seconds": seconds,
        "field_seconds": field.seconds,
        "evaluations": field.points,
        "grid_fraction": field.points / n_samples,
        "faces": report["n_faces"],
        "watertight": report["watertight"],
        "genus": report["genus"],
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_extract,
        "peak_rss_with_report_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------------------ driver


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    mem_gb = float("nan")
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            mem_gb = int(fh.readline().split()[1]) / 1024**2
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu}, {usable} of {os.cpu_count()} cores usable by the benchmark, {mem_gb:.0f} GB RAM, "
        f"{platform.system()} {platform.release()}"
    )


def run_one(args: argparse.Namespace, resolution: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--resolution", str(resolution), *passthrough(args)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"resolution {resolution} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def passthrough(args: argparse.Namespace) -> list[str]:
    out = [
        "--method", args.method, "--chunk-size", str(args.chunk_size), "--sub-batch", str(args.sub_batch),
        "--hidden", str(args.hidden), "--layers", str(args.layers), "--seed", str(args.seed),
        "--band-factor", str(args.band_factor),
    ]  # fmt: skip
    if args.threads:
        out += ["--threads", str(args.threads)]
    if args.model:
        out += ["--model", str(args.model)]
    return out


HEADER = """# Mesh extraction benchmark

Written by `benchmarks/mesh_resolution.py`; each section below is one run of it, headed by
its date and commit, with the command that reproduces it. Columns: `time` is the whole `extract_mesh_from_field` call, `in field` the part
spent inside the field (the MLP); `% of grid` is the share of the resolution^3 grid
samples where F was evaluated; `peak RSS` is the worker's VmHWM right after the
extraction (each resolution runs in a fresh subprocess, so it includes Python, torch and
the model, listed as `before`); `+ report` is the peak after `mesh_report` as well.
"""


def git_commit() -> str | None:
    """The short hash of this checkout's HEAD (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_results(rows: list[dict], args: argparse.Namespace, command: str, load: tuple[float, float]) -> None:
    """Write (or, with ``--append``, add) a section with the table of ``rows``."""
    import torch

    field = (
        f"model file `{args.model}`"
        if args.model
        else f"the built-in MLP {args.layers}x{args.hidden}, Softplus(beta=100), geometric sphere "
        "init (r=0.5), plus bumps 0.04 sin(10x) sin(10y) sin(10z); box [-1, 1]^3"
    )
    title = args.title or f"{rows[0]['threads']} torch threads, {args.layers}x{args.hidden} MLP"
    commit = git_commit()
    lines = [
        f"## {time.strftime('%Y-%m-%d')}{f', commit {commit}' if commit else ''}: {title}",
        "",
        f"Reproduce: `{command}` ({time.strftime('%H:%M')})",
        "",
        f"- Machine: {machine()}; CPU only.",
        f"- Load average (1 min) before / after the run: {load[0]:.1f} / {load[1]:.1f}.",
        f"- torch {torch.__version__} with {rows[0]['threads']} threads; numpy {np.__version__}.",
        f"- Field: {field}.",
        (
            f"- {args.chunk_size} points per field call, in forward passes of {args.sub_batch} "
            f"under `torch.inference_mode()`, float32; band_factor {args.band_factor}."
        ),
        "",
        (
            "| resolution | method | time (s) | in field (s) | field evaluations | % of grid | faces "
            "| watertight | genus | peak RSS (MiB) | before (MiB) | + report (MiB) |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['resolution']} | {r['method']} | {r['seconds']:.1f} | {r['field_seconds']:.1f} | "
            f"{r['evaluations']:,} | {100 * r['grid_fraction']:.2f} | {r['faces']:,} | {r['watertight']} | "
            f"{r['genus']} | {r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | "
            f"{r['peak_rss_with_report_mb']:.0f} |"
        )
    section = "\n".join(lines) + "\n"
    path = args.results
    if args.append and path.exists():
        text = path.read_text().rstrip("\n") + "\n\n" + section
    else:
        text = HEADER + "\n" + section
    path.write_text(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[128, 256, 512, 1024])
    p.add_argument("--method", choices=["auto", "dense", "narrowband"], default="auto")
    p.add_argument("--band-factor", type=float, default=2.0, help="narrow-band safety factor")
    p.add_argument("--model", type=Path, help="a model file from `surfrec fit --save-model`")
    p.add_argument("--chunk-size", type=int, default=262_144, help="points per field call")
    p.add_argument("--sub-batch", type=int, default=16_384, help="points per network forward pass")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per resolution")
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to write")
    p.add_argument("--append", action="store_true", help="add a section instead of rewriting the file")
    p.add_argument("--title", help="section title (default: threads and MLP size)")
    p.add_argument("--no-write", action="store_true", help="only log the numbers")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--resolution", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = shlex.join(["python", "benchmarks/mesh_resolution.py", *(sys.argv[1:] if argv is None else argv)])
    load_before = os.getloadavg()[0]
    rows = []
    for res in args.resolutions:
        row = run_one(args, res)
        log.info(
            "%5d %-10s %7.1f s (field %6.1f s) %11d evals %6.2f%% %9d faces watertight=%s peak %6.0f MiB",
            row["resolution"], row["method"], row["seconds"], row["field_seconds"], row["evaluations"],
            100 * row["grid_fraction"], row["faces"], row["watertight"], row["peak_rss_mb"],
        )  # fmt: skip
        rows.append(row)
    if not args.no_write:
        write_results(rows, args, command, (load_before, os.getloadavg()[0]))
        log.info("wrote %s", args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
