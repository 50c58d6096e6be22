"""``surfrec eval``: score a reconstructed mesh against a ground truth and/or the scan."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import SurfrecError
from ..validation import SAMPLES, SEED, THRESHOLD_FRACTION
from . import validate
from .common import check_output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rec", type=Path, help="reconstructed mesh (or point set) to score")
    p.add_argument("--gt", type=Path, default=None,
                   help="ground truth: a mesh (exact point-to-mesh distances) or a point file "
                        "(nearest-point distances)")
    p.add_argument("--scan", type=Path, default=None,
                   help="input scan, for the one-sided SRB distances scan->rec and rec->scan "
                        "(enough on its own for data without ground truth)")
    p.add_argument("--samples", type=validate.number(SAMPLES), default=100_000, metavar="N",
                   help="points sampled on each mesh surface (default: 100000)")
    p.add_argument("--thresholds", type=validate.number_list(THRESHOLD_FRACTION), default=None, metavar="F1,F2",
                   help="F-score thresholds as fractions of the ground truth's largest box "
                        "side (default: 0.005,0.01)")
    p.add_argument("--seed", type=validate.number(SEED), default=0, help="sampling seed (default: 0)")
    p.add_argument("--json", type=Path, default=None,  # checked by run(), before any work metavar="FILE",
                   help="also write the full result (raw values, protocol) as JSON")


def run(args: argparse.Namespace) -> int:
    from ..io import atomic_path
    from ..evaluation.metrics import evaluate, format_report

    if args.gt is None and args.scan is None:
        raise SurfrecError("nothing to score against: give --gt GT, --scan SCAN, or both")
    if args.json is not None:
        inputs = tuple(p for p in (args.rec, args.gt, args.scan) if p is not None)
        check_output_path(args.json, inputs=inputs, kind="json")
    result = evaluate(
        args.rec,
        args.gt,
        scan=args.scan,
        n_samples=args.samples,
        threshold_fractions=args.thresholds,
        seed=args.seed,
    )
    print(format_report(result))
    if args.json is not None:
        text = json.dumps(result, indent=2, allow_nan=False) + "\n"
        with atomic_path(args.json) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(f"surfrec: wrote {args.json}")
    return 0
