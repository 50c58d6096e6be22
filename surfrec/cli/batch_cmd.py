"""``surfrec batch``: reconstruct many scans, locally in parallel or on a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..validation import BATCH
from . import options, validate
from .common import Progress, add_quiet


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="scan files, folders (their point-cloud files) or glob patterns")
    p.add_argument("-o", "--out-dir", type=Path, required=True, help="output folder (meshes and manifest.json)")
    p.add_argument("--workers", type=validate.number(BATCH["workers"]), default=1,
                   help="local worker processes (default: 1 = sequential); use up to one per core")
    p.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="run one Ray task per scan: 'auto' joins a running cluster or starts a local one, "
                        "'local' starts one, or a cluster address (needs pip install 'surfrec[ray]')")
    p.add_argument("--format", default="ply", choices=("ply", "obj", "stl", "off", "glb"), help="mesh format")
    p.add_argument("--save-models", action="store_true", help="also write <name>.pt model files")
    p.add_argument("--preset", type=validate.preset, default="default", help="settings preset (default: default)")
    add_quiet(p)
    options.add_setting_options(p, ("input", "fit", "mesh"))


def run(args: argparse.Namespace) -> int:
    from ..batch import run_batch, summary_table
    from ..settings import get_config

    config = get_config(args.preset, **options.overrides(args))  # checked once, before any scan
    bar = Progress(None, "batch", args.quiet, unit="scan")

    def on_progress(done: int, total: int, rec: dict | None) -> None:
        bar.update_to(done, total, **({"last": Path(rec["input"]).name} if rec else {}))

    try:
        records = run_batch(args.inputs, args.out_dir, config, workers=args.workers, ray=args.ray,
                            ext=f".{args.format}", save_models=args.save_models, progress=on_progress)
    finally:
        bar.close()
    if not args.quiet:
        print(summary_table(records))
        print(f"manifest: {args.out_dir / 'manifest.json'}")
    return 0 if all(r["status"] == "ok" for r in records) else 1
