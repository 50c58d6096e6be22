"""Time and peak memory of fit + mesh against the number of input points (100k … 5M).

    python benchmarks/point_count.py --points 50000,1000000,5000000 --iters 6000

Each size runs in a fresh subprocess (its own peak resident memory, VmHWM). The cloud is
a noisy torus sampled uniformly, written as .npy; loading is included in the time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_cloud(n: int, path: Path) -> None:
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    R, r = 1.0, 0.4
    p = np.stack([(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u), r * np.sin(v)], 1)
    p += rng.normal(scale=0.002, size=p.shape)
    np.save(path, p.astype(np.float64))


def child(path: str, iters: int, resolution: int, preset: str) -> None:
    import torch

    from surfrec.run import fit
    from surfrec.io import load_points
    from surfrec.run import extract_mesh

    t0 = time.perf_counter()
    cloud = load_points(path)
    t_load = time.perf_counter() - t0
    res = fit(cloud, preset=preset, iterations=iters, device="cpu")
    t_fit = time.perf_counter() - t0 - t_load
    mesh = extract_mesh(res, resolution=resolution, device="cpu")
    t_all = time.perf_counter() - t0
    hwm = 0.0
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            hwm = float(line.split()[1]) / 1024
    print("RESULT " + json.dumps({"load_s": t_load, "fit_s": t_fit, "total_s": t_all, "peak_mb": hwm,
                                  "steps_per_s": res.steps / t_fit, "faces": len(mesh.faces),
                                  "threads": torch.get_num_threads()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", default="100000,1000000,5000000")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.iters, args.resolution, args.preset)
        return
    print(f"fit ({args.preset} preset, {args.iters} steps) + mesh at {args.resolution}, CPU\n")
    print("| points | load s | fit s | total s | steps/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for n in (int(s) for s in args.points.split(",")):
            path = Path(d) / f"torus_{n}.npy"
            make_cloud(n, path)
            out = subprocess.run([sys.executable, __file__, "--child", str(path), "--iters", str(args.iters),
                                  "--resolution", str(args.resolution), "--preset", args.preset],
                                 capture_output=True, text=True)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                print(f"| {n:,} | failed: {out.stderr.strip().splitlines()[-1:]} | | | | |")
                continue
            r = json.loads(line[0][7:])
            print(f"| {n:,} | {r['load_s']:.1f} | {r['fit_s']:.1f} | {r['total_s']:.1f} | {r['steps_per_s']:.1f} | "
                  f"{r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
