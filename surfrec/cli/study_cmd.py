"""``surfrec study NAME``: run one of the studies that answer the method's open questions."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..studies import STUDIES
    from ..validation import SEED
    from . import validate

    names = "; ".join(f"{k}: {v[2]}" for k, v in STUDIES.items())
    p.add_argument("name", choices=list(STUDIES), metavar="NAME",
                   help=f"the study ({names})")
    p.add_argument("--cases", type=Path, default=None, metavar="DIR",
                   help="folder of scans NAME.xyz (+ NAME.gt.ply), e.g. ../shared/data/bench "
                        "(default: a small set generated in code)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder for report.md, CSV and PNGs (default: out/studies/NAME)")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke run in seconds")
    p.add_argument("--seed", type=validate.number(SEED), default=0, help="random seed (default: 0)")
    p.add_argument("--device", type=validate.device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from ..device import resolve_device
    from ..studies import get_study

    out = args.out if args.out is not None else Path("out") / "studies" / args.name
    device = str(resolve_device(args.device))
    report = get_study(args.name)(args.cases, out, quick=args.quick, seed=args.seed, device=device)
    if not args.quiet:
        print(f"wrote {report} (CSV and PNGs beside it)")
    return 0
