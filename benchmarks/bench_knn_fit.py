"""Whole fits with the step's nearest-point queries on scipy cKDTree vs pykdtree
(interleaved, CPU seconds; same exact nearest neighbours).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_knn_fit.py [--steps 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


class PyKDNearest:
    """Drop-in for surfrec.fitting._NearestPoints (clouds below COARSE_NN_ABOVE) on pykdtree."""

    def __init__(self, points: np.ndarray, seed: int = 0) -> None:
        from pykdtree.kdtree import KDTree

        self.points = np.ascontiguousarray(points, dtype=np.float32)
        self.tree = KDTree(self.points)

    def __call__(self, q: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
        qn = np.ascontiguousarray(q.detach().float().cpu().numpy())
        _, idx = self.tree.query(qn, k=1, eps=eps)
        return torch.from_numpy(self.points[idx.astype(np.int64)]).to(q.device, q.dtype)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scan", default="/work/shared/data/bench/armadillo.xyz")
    args = ap.parse_args()
    import surfrec
    from surfrec import fitting
    from surfrec.io import load_points

    pc = load_points(args.scan)
    variants = {"scipy": fitting._NearestPoints, "pykdtree": PyKDNearest}
    cpu = {k: [] for k in variants}
    models = {}
    surfrec.fit(pc, iterations=20, time_budget=0, threads=args.threads)
    for _ in range(args.rounds):
        for k, cls in variants.items():
            fitting._NearestPoints = cls
            c = time.process_time()
            r = surfrec.fit(pc, iterations=args.steps, time_budget=0, threads=args.threads)
            cpu[k].append(time.process_time() - c)
            models[k] = r.model
    fitting._NearestPoints = variants["scipy"]
    x = torch.rand(4096, 3) - 0.5
    with torch.no_grad():
        diff = float((models["scipy"](x) - models["pykdtree"](x)).abs().max())
    for k, v in cpu.items():
        print(f"{k:9s} {statistics.median(v):6.2f} CPU s for {args.steps} steps")
    print(f"speed-up {statistics.median(cpu['scipy']) / statistics.median(cpu['pykdtree']):.3f}x; "
          f"max |F_scipy - F_pykdtree| on 4096 points after the fits: {diff:.2e}")


if __name__ == "__main__":
    main()
