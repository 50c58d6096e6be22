"""Stray points: a scan with flying pixels added, fitted with and without ``remove_stray``
(``surfrec fit --remove-stray``).

Flying pixels are made as a depth camera makes them: a share of the scan's points (default
1%, fixed seed) is moved along the viewing direction (the scan's axis of least extent) by
5–50 scan spacings, to either side. Each mesh is scored with
:func:`surfrec.surface.support.measure_support` against the clean scan (cover, phantom), and
the stray count found by :func:`surfrec.input.inspect.find_outliers` is compared with the
points added.

Usage::

    python benchmarks/stray_points.py [--scan bunny_rangescan_bun000.xyz] [--share 0.01] [--iters N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCANS = HERE.parent.parent / "shared" / "data" / "scans"


def flying_pixels(points: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """(N, 3) -> (M, 3) copies of a random ``share`` of the points moved 5–50 spacings along
    the axis of least extent (a depth camera's viewing direction for a single view)."""
    from surfrec.input.inspect import scan_spacing

    rng = np.random.default_rng(seed)
    c = points - points.mean(0)
    axis = np.linalg.eigh(c.T @ c)[1][:, 0]
    pick = rng.choice(len(points), max(1, int(share * len(points))), replace=False)
    shift = rng.uniform(5, 50, len(pick)) * rng.choice([-1.0, 1.0], len(pick)) * scan_spacing(points)
    return points[pick] + shift[:, None] * axis


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scan", default="bunny_rangescan_bun000.xyz")
    ap.add_argument("--share", type=float, default=0.01)
    ap.add_argument("--iters", type=int, default=None)
    args = ap.parse_args()

    import surfrec
    from surfrec.input.inspect import find_outliers, scan_spacing
    from surfrec.io import load_points
    from surfrec.run import mesh_stages
    from surfrec.surface.support import measure_support

    clean = load_points(SCANS / args.scan).points
    extra = flying_pixels(clean, args.share)
    noisy = np.concatenate([clean, extra])
    flagged = find_outliers(noisy)
    print(json.dumps({"scan": args.scan, "added": len(extra), "flagged": int(flagged.sum()),
                      "flagged_among_added": int(flagged[len(clean):].sum())}), flush=True)
    s = scan_spacing(clean)
    rows = []
    for remove in (False, True):
        t0 = time.perf_counter()
        res = surfrec.fit(noisy, iterations=args.iters, remove_stray=remove)
        mesh, report = mesh_stages(res)
        sec = time.perf_counter() - t0
        rep = measure_support(mesh.vertices, mesh.faces, clean, spacing=s)
        row = dict(remove_stray=remove, removed=res.input.stray if res.input.stray_removed else 0,
                   surface=report.surface.surface, closure=res.shape.closure, cover=round(rep.cover, 4),
                   phantom=round(rep.phantom, 4), s2m_s=round(rep.scan_to_mesh_mean_s, 3),
                   m2s_s=round(rep.mesh_to_scan_mean_s, 3), faces=len(mesh.faces), seconds=round(sec, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| remove_stray | removed | surface (closure) | cover | phantom | scan→mesh (s) | mesh→scan (s) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['remove_stray']} | {r['removed']} | {r['surface']} ({r['closure']:.3f}) | {r['cover']:.3f} | "
              f"{r['phantom']:.3f} | {r['s2m_s']:.2f} | {r['m2s_s']:.2f} | {r['seconds']} |")


if __name__ == "__main__":
    main()
