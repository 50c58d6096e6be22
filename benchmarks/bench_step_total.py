"""Per-step CPU cost of the default fit: before (separate softplus/sigmoid, scipy cKDTree)
vs the fused closed form vs fused + single-threaded pykdtree (interleaved, CPU seconds).

Usage::

    python benchmarks/bench_step_total.py [--steps 400] [--rounds 2]
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scan", default="/work/shared/data/bench/armadillo.xyz")
    args = ap.parse_args()
    import pykdtree

    import surfrec
    from bench_knn_fit import PyKDNearest
    from bench_step_speed import vg_unfused
    from surfrec import fitting
    from surfrec.io import load_points
    from surfrec.model import ImplicitMLP

    # pykdtree bundles its own libgomp: one thread there, torch's pool untouched
    lib = glob.glob(os.path.join(os.path.dirname(pykdtree.__file__), "..", "pykdtree.libs", "libgomp*"))
    if lib:
        ctypes.CDLL(lib[0]).omp_set_num_threads(1)
    pc = load_points(args.scan)
    fused, scipy_nn = ImplicitMLP.value_and_grad, fitting._NearestPoints
    variants = {"before (unfused, scipy)": (vg_unfused, scipy_nn), "fused, scipy": (fused, scipy_nn),
                "fused, pykdtree 1 thread": (fused, PyKDNearest)}
    cpu = {k: [] for k in variants}
    surfrec.fit(pc, iterations=20, time_budget=0, threads=1)
    for _ in range(args.rounds):
        for k, (vg, nn) in variants.items():
            ImplicitMLP.value_and_grad, fitting._NearestPoints = vg, nn
            c = time.process_time()
            surfrec.fit(pc, iterations=args.steps, time_budget=0, threads=1)
            cpu[k].append(time.process_time() - c)
    ImplicitMLP.value_and_grad, fitting._NearestPoints = fused, scipy_nn
    base = statistics.median(cpu["before (unfused, scipy)"])
    for k, v in cpu.items():
        m = statistics.median(v)
        print(f"{k:26s} {m:6.2f} CPU s / {args.steps} steps = {1000 * m / args.steps:5.2f} ms/step ({base / m:.2f}x)")


if __name__ == "__main__":
    main()
