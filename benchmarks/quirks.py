"""The quirks of real clouds against their clean twin: the same mesh quality?

For each case (a scan of ../shared/data), every quirk of :mod:`surfrec.input.quirks` is
applied to the clean scan (every point twice, near duplicates, 3–5 returns per sample,
float32 UTM coordinates, 0.1% far strays, all at once) and reconstructed with the default
preset; the mesh is scored against the clean scan moved the same way (cover, phantom, the
one-sided distances in spacings) and, where the case has a ground truth, against it
(Chamfer-L1 ×1000 of the box side, normal consistency). One CSV row per (case, quirk)::

    python benchmarks/quirks.py --out benchmarks/quirks.csv [--cases fandisk,bun000] [--iters N]

Run time: about 8 default fits per case (10–15 minutes per case on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SURFREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
#: name -> (scan, ground truth or None)
CASES = {
    "fandisk": (DATA / "bench" / "fandisk.xyz", DATA / "bench" / "fandisk.gt.ply"),
    "bun000": (DATA / "scans" / "bunny_rangescan_bun000.xyz", None),
    "armadillo": (DATA / "bench" / "armadillo.xyz", DATA / "bench" / "armadillo.gt.ply"),
}
UTM_SIZE, UTM_OFFSET = 2000.0, 5e6


def _moved(quirk: str, x: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Points ``x`` moved where the quirk puts the clean scan (float64: the quirk's float32
    rounding aside)."""
    if quirk not in ("utm_float32", "all"):
        return x
    return (x - clean.min(axis=0)) * (UTM_SIZE / float(np.ptp(clean, axis=0).max())) + UTM_OFFSET


def run_case(name: str, quirks: list[str], overrides: dict) -> list[dict]:
    import trimesh

    from surfrec.evaluation.metrics import evaluate
    from surfrec.input.inspect import scan_spacing
    from surfrec.input.quirks import QUIRKS
    from surfrec.io import load_points
    from surfrec.run import reconstruct
    from surfrec.surface.support import measure_support

    scan, gt = CASES[name]
    clean = load_points(scan).points
    s = scan_spacing(clean)
    rows = []
    for quirk in quirks:
        cloud = QUIRKS[quirk](clean, s)
        t0 = time.perf_counter()
        rec = reconstruct(cloud, preset="default", seed=0, **overrides)
        seconds = time.perf_counter() - t0
        ref = _moved(quirk, clean, clean)
        sup = measure_support(rec.mesh.vertices, rec.mesh.faces, ref)
        row = {"case": name, "quirk": quirk, "points": len(cloud), "distinct": rec.report.input.points,
               "duplicates": rec.report.input.duplicates, "near_duplicates": rec.report.input.near_duplicates,
               "far_outliers": rec.report.input.far_outliers, "spacing_ratio": rec.report.input.scan_spacing /
               (s * (UTM_SIZE / float(np.ptp(clean, axis=0).max()) if quirk in ("utm_float32", "all") else 1.0)),
               "cover": sup.cover, "phantom": sup.phantom, "scan_to_mesh_s": sup.scan_to_mesh_mean_s,
               "mesh_to_scan_s": sup.mesh_to_scan_mean_s, "watertight": bool(rec.mesh.is_watertight),
               "surface": rec.report.surface.surface, "seconds": seconds}
        if gt is not None:
            truth = trimesh.load(gt, process=False, force="mesh")
            truth.vertices = _moved(quirk, np.asarray(truth.vertices), clean)
            scores = evaluate(rec.mesh, truth, n_samples=100_000)
            side = float(np.ptp(np.asarray(truth.vertices), axis=0).max())
            row.update(cd_x1000=1000.0 * scores["chamfer_l1"] / side, nc=scores["normal_consistency"])
        rows.append(row)
        print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
              file=sys.stderr, flush=True)
    return rows


def main() -> int:
    from surfrec.input.quirks import QUIRKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("quirks.csv"), help="CSV to write (default: benchmarks/quirks.csv)")
    ap.add_argument("--cases", default="fandisk,bun000", help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--quirks", default=",".join(QUIRKS), help="comma-separated quirk names")
    ap.add_argument("--iters", type=int, default=None, help="optimization steps (default: the preset's)")
    args = ap.parse_args()
    overrides = {"iterations": args.iters} if args.iters else {}
    rows = []
    for name in args.cases.split(","):
        rows += run_case(name, args.quirks.split(","), overrides)
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(args.out, "w", newline="") as f:  # after every case: an interrupted run keeps what it did
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
