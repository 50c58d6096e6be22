"""``surfrec residuals``: how close do Newton-projected samples get to the level set?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..validation import RESIDUALS
from . import validate
from .render_cmd import png_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model file written by `surfrec fit --save-model`")
    p.add_argument("--scan", type=Path, default=None,
                   help="the scan (seeds and distances); default: the points stored with the model")
    p.add_argument("--steps", type=validate.number_list(RESIDUALS["steps"]), default=[10, 20], metavar="K1,K2",
                   help="Newton step counts to report (default: 10,20)")
    p.add_argument("--level", type=validate.number(RESIDUALS["level"]), default=None, metavar="C", help="level c (default: the fitted level)")
    p.add_argument("--seeds", type=validate.number(RESIDUALS["n_seeds"]), default=20_000, metavar="N", help="number of seeds (default: 20000)")
    p.add_argument("--tol", type=validate.number(RESIDUALS["tol"]), default=1e-5, help="residual counted as converged (default: 1e-5)")
    p.add_argument("--seed", type=validate.number(RESIDUALS["seed"]), default=0, help="random seed")
    p.add_argument("--plot", type=png_path, default=None, metavar="PNG", help="write a histogram of the residuals")
    p.add_argument("--json", type=validate.out_path((".json",)), default=None, metavar="FILE", help="write the report as JSON")
    p.add_argument("--device", type=validate.device, default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from ..device import resolve_device
    from ..evaluation.residuals import plot_residuals, residual_report
    from ..io import atomic_path, load_points
    from ..result import load_model

    result = load_model(args.model)
    pts = load_points(args.scan).points if args.scan is not None else None
    rep = residual_report(result, pts, steps=args.steps, level=args.level, n_seeds=args.seeds,
                          tol=args.tol, seed=args.seed, device=resolve_device(args.device))
    if not args.quiet:
        print(rep.format())
    if args.plot is not None:
        plot_residuals(rep, args.plot)
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(rep.to_dict(), indent=2))
    return 0
