"""Is the default mesh the same when the machine is busy? (issue 15)

For each case: run the default ``surfrec fit`` twice in fresh processes with the same seed,
once on a quiet machine and once while a second CPU-bound process (``while True: pass``)
runs, then compare the written meshes byte for byte and report both wall-clock times.

    python benchmarks/bench_load.py ../shared/data/bench --cases armadillo,bunny_sparse \
        --out /tmp/load > benchmarks/RESULTS_LOAD.md
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path


def _fit(scan: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "surfrec.cli.main", "fit", str(scan), "-o", str(out), "-q", "--seed", "0"],
                   check=True, env={**os.environ})
    return time.perf_counter() - t0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--cases", default="armadillo,bunny_sparse")
    ap.add_argument("--out", type=Path, default=Path("load_out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| case | quiet s | busy s | busy / quiet | mesh sha256 quiet | mesh sha256 busy | same mesh |")
    print("|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        scan = args.folder / f"{name}.xyz"
        quiet, busy = args.out / f"{name}.quiet.ply", args.out / f"{name}.busy.ply"
        t_quiet = _fit(scan, quiet)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            t_busy = _fit(scan, busy)
        finally:
            hog.kill()
        a, b = _digest(quiet), _digest(busy)
        print(f"| {name} | {t_quiet:.1f} | {t_busy:.1f} | {t_busy / t_quiet:.2f} | {a} | {b} | "
              f"{'yes' if a == b else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
