"""The closed/open decision alone (no fits): closure of every scan, of single views of the
bench shapes generated from several camera directions (a confirmation set for the threshold
and the area cap, which were chosen on bun000 and two views from one direction), and of the
bench shapes with their bottom cut off (where the decision flips).

Usage::

    python benchmarks/closure_decision.py

Prints the three closure tables of benchmarks/RESULTS_REAL.md (about a minute).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: shares of the height cut off the bottom of the closed shapes (an object on a base,
#: scanned all around but not underneath)
CUTS = (0.05, 0.15, 0.3, 0.5)
#: camera directions of the confirmation views (real_scans.py uses (0.3, 0.2, 1))
DIRECTIONS = [(1, 0, 0), (0, 1, 0.3), (-0.5, -0.2, 1), (0.2, -1, -0.4), (-1, 0.5, -0.5)]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    import real_scans as br

    from surfrec.input.orient import scan_orientation
    from surfrec.settings import SurfaceConfig

    thr = SurfaceConfig().open_closure
    print(f"open above {thr}\n\n| scan | points | closure | pieces | decision |\n|---|---|---|---|---|")
    for name, pts in br.cases(True):
        o = scan_orientation(pts)
        c, pieces = o.closure, o.pieces
        print(f"| {name} | {len(pts)} | {c:.3f} | {pieces} | {'open' if c > thr else 'closed'} |", flush=True)
    head = " | ".join(str(d) for d in DIRECTIONS)
    print(f"\n| shape, single view from | {head} |\n|---|" + "---|" * len(DIRECTIONS))
    for name in br.BENCH:
        pts = br._bench_points(name)
        vals = [scan_orientation(br.single_view(pts, direction=d)).closure for d in DIRECTIONS]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + " |", flush=True)
    head = " | ".join(f"{c:.0%} cut" for c in CUTS)
    print(f"\n| shape without its bottom | {head} |\n|---|" + "---|" * len(CUTS))
    for name in br.BENCH:
        pts = br._bench_points(name)
        z = pts[:, 2]
        vals = [scan_orientation(pts[z > z.min() + c * (z.max() - z.min())]).closure for c in CUTS]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + " |", flush=True)


if __name__ == "__main__":
    main()
