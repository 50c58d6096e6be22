"""Scans per hour of `surfrec batch`: 1 worker, 2 local workers, and Ray locally, same scans.

    python benchmarks/batch_throughput.py --scans 6 --iters 300 --out /tmp/batch_throughput

Generates small scans (noisy spheres/tori of 5k points), runs each executor on a fresh
output folder, and prints a Markdown table (wall clock, scans per hour, speed-up).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from surfrec.batch import default_threads, run_batch
from surfrec.settings import get_config


def make_scans(folder: Path, n: int, points: int = 5000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        u, v = rng.uniform(0, 2 * np.pi, (2, points))
        if i % 2:
            R, r = 1.0, 0.35 + 0.05 * i
            p = np.stack([(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u), r * np.sin(v)], 1)
        else:
            d = rng.normal(size=(points, 3))
            p = d / np.linalg.norm(d, axis=1, keepdims=True) * (1 + 0.1 * i)
        np.savetxt(folder / f"scan{i:02d}.xyz", p + rng.normal(scale=0.003, size=p.shape), fmt="%.6f")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scans", type=int, default=6)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--out", type=Path, default=Path("/tmp/surfrec_batch_throughput"))
    ap.add_argument("--modes", default="1,2,ray")
    args = ap.parse_args()
    scans = args.out / "scans"
    make_scans(scans, args.scans)
    rows = []
    for mode in args.modes.split(","):
        out = args.out / f"out_{mode}"
        shutil.rmtree(out, ignore_errors=True)
        workers = 1 if mode == "ray" else int(mode)
        threads = default_threads(workers) if mode != "ray" else 1
        config = get_config("fast", iterations=args.iters, resolution=args.resolution, threads=threads)
        t0 = time.perf_counter()
        recs = run_batch([scans], out, config, workers=workers, ray="local" if mode == "ray" else None)
        wall = time.perf_counter() - t0
        ok = sum(r["status"] == "ok" for r in recs)
        rows.append((mode, workers, threads, wall, ok, 3600 * ok / wall))
    base = rows[0][3]
    print(f"{args.scans} scans of 5k points, preset fast with {args.iters} steps, resolution {args.resolution}\n")
    print("| executor | workers | threads/worker | wall s | scans ok | scans/hour | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for mode, w, t, wall, ok, sph in rows:
        name = "Ray (local, 1 CPU per task)" if mode == "ray" else f"local processes" if w > 1 else "sequential"
        print(f"| {name} | {w if mode != 'ray' else 'cores'} | {t} | {wall:.1f} | {ok} | {sph:.0f} | {base / wall:.2f} |")


if __name__ == "__main__":
    main()
