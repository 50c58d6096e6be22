"""What fitting a scan as an open surface costs: CPU seconds per fit step, closed vs open.

The same scan fitted for ``--iters`` steps with ``surface="closed"`` (the closed path:
since 2026-12-02 it orients the normals too, for the sign push and the closed side term)
and ``"open"`` (side term, sheet-only sample term), alternating in one process, ``--reps``
times each; CPU seconds (``time.process_time``, 1 thread), so another process on the
machine slows both alike.

Usage::

    python benchmarks/open_fit_cost.py [--scans bunny_rangescan_bun000.xyz milk_carton.pcd]
                                       [--iters 400] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCANS = HERE.parent.parent / "shared" / "data" / "scans"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", nargs="*", default=["bunny_rangescan_bun000.xyz", "milk_carton.pcd"])
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import surfrec
    from surfrec.io import load_points

    print("| scan | points | closed: CPU ms/step | open: CPU ms/step | open / closed | orientation s (wall) |")
    print("|---|---|---|---|---|---|")
    for name in args.scans:
        pts = load_points(SCANS / name).points
        cpu: dict[str, list[float]] = {"closed": [], "open": []}
        orient = []
        for _ in range(args.reps):
            for mode in ("closed", "open"):
                c0 = time.process_time()
                res = surfrec.fit(pts, iterations=args.iters, threads=1, surface=mode)
                cpu[mode].append(time.process_time() - c0)
                if mode == "open":
                    orient.append(res.timings["orient"])
        c, o = statistics.median(cpu["closed"]), statistics.median(cpu["open"])
        print(f"| {name} | {len(pts)} | {1000 * c / args.iters:.2f} | {1000 * o / args.iters:.2f} | {o / c:.2f} | "
              f"{statistics.median(orient):.2f} |", flush=True)


if __name__ == "__main__":
    main()
