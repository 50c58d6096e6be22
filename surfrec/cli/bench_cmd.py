"""``surfrec bench``: every method on every case of a folder, timed and scored."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..bench import METHODS
    from ..validation import POISSON, SAMPLES, TIMEOUT
    from . import options, validate

    p.add_argument("folder", type=Path, help="folder with NAME.xyz (or .ply ...) and NAME.gt.ply per case")
    p.add_argument("--methods", type=validate.names(METHODS, "methods"), default="surfrec,poisson",
                   help=f"comma-separated, from: {', '.join(METHODS)} (default: surfrec,poisson)")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="output folder (default: ./bench_out)")
    p.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    p.add_argument("--samples", type=validate.number(SAMPLES), default=100_000, help="surface samples per side for metrics")
    p.add_argument("--poisson-depth", type=validate.number(POISSON["depth"]), default=9, help="octree depth for Poisson (default: 9)")
    p.add_argument("--force", action="store_true", help="re-run cases that already have results")
    p.add_argument("--timeout", type=validate.number(TIMEOUT), default=3600.0, help="seconds allowed per case and method")
    p.add_argument("--html", type=validate.out_path((".html", ".htm"), folder_must_exist=False), default=None,
                   metavar="HTML",
                   help="also write the bench page: one offline HTML file with the table of methods x cases, a "
                        "thumbnail per cell, and each case's meshes side by side (needs surfrec[viz])")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    options.add_setting_options(p, ("input", "fit", "mesh"), title="surfrec's {stage} settings")


def run(args: argparse.Namespace) -> int:
    from ..bench import run_bench
    from . import options
    from .common import Progress

    methods = args.methods
    if args.html is not None:  # before any run: the packages and the path
        from ..evaluation.report import check_available
        from ..io import check_output

        check_available()
        if args.html.parent.resolve() == args.out.resolve():
            args.out.mkdir(parents=True, exist_ok=True)  # the page beside the results: the folder made first
        check_output(args.html, suffixes=(".html", ".htm"))
    cases = [c.strip() for c in args.cases.split(",")] if args.cases else None
    bar = Progress(None, "bench", args.quiet, unit="run")

    def on_progress(done: int, total: int, label: str) -> None:
        bar.update_to(done, total)
        if bar.bar is not None:
            bar.bar.set_description(label)

    try:
        rows = run_bench(args.folder, args.out, methods, cases=cases, force=args.force, samples=args.samples,
                         options={"poisson_depth": args.poisson_depth, "settings": options.overrides(args)},
                         timeout=args.timeout, progress=on_progress)
    finally:
        bar.close()
    failed = [r for r in rows if r.get("status") != "ok"]
    if args.html is not None:
        from ..evaluation.report import write_bench_report
        from ..evaluation.story import bench_report_data

        write_bench_report(rows, bench_report_data(args.out, rows), args.html,
                           title=f"surfrec bench: {args.folder.name}")
    if not args.quiet:  # --quiet: errors only
        print((args.out / "RESULTS.md").read_text())
        print(f"surfrec: {len(rows) - len(failed)} runs ok, {len(failed)} failed; results in {args.out}/"
              + (f"; page {args.html}" if args.html is not None else ""))
    else:
        for r in failed:
            print(f"surfrec bench: {r.get('case')} {r.get('method')} failed: {r.get('error')}", file=sys.stderr)
    return 1 if failed else 0
