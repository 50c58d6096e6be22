"""Narrow-band extraction at 256: grid evaluations and time against ``band_factor``
(interleaved, CPU seconds; the mesh must not change where |∇F| stays below 2·band_factor).

Usage::

    python benchmarks/bench_band.py [SCAN] [--steps 800]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scan", nargs="?", default="/work/shared/data/bench/armadillo.xyz")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--factors", nargs="+", type=float, default=[2.0, 1.0, 0.75])
    args = ap.parse_args()
    import torch

    import surfrec
    from surfrec.surface import extract as mesh as meshmod
    from surfrec.input.normalize import UNIT_HALF_EXTENT

    res = surfrec.fit(args.scan, iterations=args.steps, time_budget=0, threads=1)
    torch.set_num_threads(1)
    half = UNIT_HALF_EXTENT * 1.1
    bounds = np.array([[-half] * 3, [half] * 3])
    field = res.field("cpu")
    counts = {}
    orig = meshmod._Evaluator.at_points

    def counting(self, pts):
        counts["n"] = counts.get("n", 0) + len(pts)
        return orig(self, pts)

    meshmod._Evaluator.at_points = counting
    g = res.gradient("cpu")
    x = torch.from_numpy(res.data_points[:20000])
    gn = np.linalg.norm(g(x.numpy()), axis=1)
    print(f"|grad F| at data points: median {np.median(gn):.3f}, p99 {np.percentile(gn, 99):.3f}, max {gn.max():.3f}")
    out = {}
    for _ in range(2):
        for bf in args.factors:
            counts["n"] = 0
            c = time.process_time()
            m = meshmod.extract_mesh_from_field(field, bounds, resolution=256, level=0.0, band_factor=bf,
                                                components="all")
            out.setdefault(bf, []).append((time.process_time() - c, counts["n"], len(m.faces), m))
    ref = out[args.factors[0]][0][3]
    for bf, runs in out.items():
        t = min(r[0] for r in runs)
        m = runs[0][3]
        same = len(m.faces) == len(ref.faces) and np.allclose(np.sort(m.vertices, axis=0), np.sort(ref.vertices, axis=0))
        print(f"band_factor {bf}: {runs[0][1]} F evaluations ({runs[0][1] / 257**3:.1%} of the grid), "
              f"{t:.2f} CPU s, {runs[0][2]} faces, same mesh as {args.factors[0]}: {same}")


if __name__ == "__main__":
    main()
