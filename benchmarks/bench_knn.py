"""KD-tree libraries for the fit's queries: scipy cKDTree vs pykdtree, 1 vs 2 threads.

Usage::

    python benchmarks/bench_knn.py [SCAN] [--repeats 30]

Cases: a step's surface-sample queries (1k–4k points near the data, k=1), queries
uniform in the box (k=1), and every point's 10 neighbours (the seed σ, once per fit).
Each configuration runs in its own process (pykdtree's OpenMP reads OMP_NUM_THREADS at
start); the rounds are interleaved and each reports the median ms per call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

CHILD = r"""
import json, sys, time, numpy as np
lib, threads, scan, repeats = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
from surfrec.io import load_points
from surfrec.input.normalize import Normalization
pc = load_points(scan)
pts = Normalization.from_points(pc.points).to_unit(pc.points).astype(np.float32)
rng = np.random.default_rng(0)
def near(m):
    i = rng.integers(0, len(pts), m)
    return (pts[i] + rng.normal(0, 0.005, (m, 3))).astype(np.float32)
cases = {"near 1k k=1": (near(1024), 1), "near 4k k=1": (near(4096), 1),
         "uniform 1k k=1": (rng.uniform(-1, 1, (1024, 3)).astype(np.float32), 1),
         "all 50k k=11 (sigma)": (pts, 11)}
t0 = time.perf_counter()
if lib == "scipy":
    from scipy.spatial import cKDTree
    tree = cKDTree(pts)
    q = lambda x, k: tree.query(x, k=k, workers=threads)
else:
    from pykdtree.kdtree import KDTree
    tree = KDTree(pts)
    q = lambda x, k: tree.query(x, k=k)
build = time.perf_counter() - t0
out = {"build": build * 1000}
for name, (x, k) in cases.items():
    n = max(3, repeats // (20 if len(x) > 10000 else 1))
    ts = []
    for _ in range(n):
        t = time.perf_counter(); q(x, k); ts.append(time.perf_counter() - t)
    out[name] = 1000 * float(np.median(ts))
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scan", nargs="?", default="/work/shared/data/bench/armadillo.xyz")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    configs = [("scipy", 1), ("scipy", 2), ("pykdtree", 1), ("pykdtree", 2)]
    res: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for lib, th in configs:
            env = dict(os.environ, OMP_NUM_THREADS=str(th))
            out = subprocess.run([sys.executable, "-c", CHILD, lib, str(th), args.scan, str(args.repeats)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            res.setdefault(f"{lib} threads={th}", []).append(json.loads(out))
    keys = list(next(iter(res.values()))[0])
    print("| library | " + " | ".join(f"{k} (ms)" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, runs in res.items():
        print(f"| {name} | " + " | ".join(f"{np.median([r[k] for r in runs]):.2f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
