"""``surfrec batch``: reconstruct many scans, locally in parallel or on a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..validation import BATCH, EXTRACT, FIT
from . import validate
from .common import Progress


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="scan files, folders (their point-cloud files) or glob patterns")
    p.add_argument("-o", "--out-dir", type=Path, required=True, help="output folder (meshes and manifest.json)")
    p.add_argument("--workers", type=validate.number(BATCH["workers"]), default=1,
                   help="local worker processes (default: 1 = sequential); use up to one per core")
    p.add_argument("--threads", type=validate.number(BATCH["threads"]), default=None, help="torch threads per fit (default: 1; the result depends on it)")
    p.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="run one Ray task per scan: 'auto' joins a running cluster or starts a local one, "
                        "'local' starts one, or a cluster address (needs pip install 'surfrec[ray]')")
    p.add_argument("--format", default="ply", choices=("ply", "obj", "stl", "off", "glb"), help="mesh format")
    p.add_argument("--save-models", action="store_true", help="also write <name>.pt model files")
    p.add_argument("--preset", type=validate.preset, default="default", help="fit preset")
    p.add_argument("--iters", type=validate.number(FIT["iterations"]), default=None, help="optimization steps (overrides the preset)")
    p.add_argument("--time-budget", type=validate.number(FIT["time_budget"]), default=None, help="seconds of optimization per scan")
    p.add_argument("--seed", type=validate.number(FIT["seed"]), default=None, help="random seed")
    p.add_argument("--resolution", type=validate.number(EXTRACT["resolution"]), default=256, help="marching-cubes resolution (default: 256)")
    p.add_argument("--level", type=validate.number(EXTRACT["level"]), default=None, help="level c to extract")
    p.add_argument("--components", choices=("all", "largest", "near-data"), default="near-data",
                   help="pieces to keep (default: near-data)")
    p.add_argument("--no-refine", dest="refine", action="store_false",
                   help="no refinement of the meshes onto the input points")
    p.add_argument("--surface", choices=("auto", "closed", "open"), default="auto",
                   help="closed, open (only the part the data support) or auto (default; see surfrec fit --help)")
    p.add_argument("--fill", type=validate.number(EXTRACT["fill"]), default=2.0, metavar="S",
                   help="closed surfaces: vertices farther than S scan spacings from the scan go onto the membrane "
                        "of the others (default: 2; see surfrec fit --help)")
    p.add_argument("--trim", type=validate.number(EXTRACT["trim"]), default=0.0, metavar="S",
                   help="closed surfaces: drop the faces farther than S scan spacings from the scan; the meshes are "
                        "then not watertight (default: 0, no trim)")
    p.add_argument("--neighbors", type=validate.neighbors, default=0, metavar="K",
                   help="scan points per local fit of the refinement (default: auto, from each scan's noise; "
                        "see surfrec fit --help)")
    p.add_argument("--device", type=validate.device, default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from ..batch import BatchOptions, run_batch, summary_table
    from ..device import resolve_device

    device = str(resolve_device(args.device))
    overrides = {k: v for k, v in {"iterations": args.iters, "time_budget": args.time_budget,
                                   "seed": args.seed}.items() if v is not None}
    threads = args.threads or 1  # the preset's fixed count: the same meshes on any machine
    opts = BatchOptions(preset=args.preset, overrides=overrides, resolution=args.resolution, level=args.level,
                        components=args.components, device=device, threads=threads, refine=args.refine,
                        surface=args.surface, fill=args.fill, trim=args.trim, neighbors=args.neighbors)
    bar = Progress(None, "batch", args.quiet, unit="scan")

    def on_progress(done: int, total: int, rec: dict | None) -> None:
        bar.update_to(done, total, **({"last": Path(rec["input"]).name} if rec else {}))

    try:
        records = run_batch(args.inputs, args.out_dir, opts, workers=args.workers, ray=args.ray,
                            ext=f".{args.format}", save_models=args.save_models, progress=on_progress)
    finally:
        bar.close()
    if not args.quiet:
        print(summary_table(records))
        print(f"manifest: {args.out_dir / 'manifest.json'}")
    return 0 if all(r["status"] == "ok" for r in records) else 1
