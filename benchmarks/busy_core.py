"""Is the default mesh the same when the machine is busy?

For each case: run the default ``surfrec fit`` twice in fresh processes with the same seed,
once on a quiet machine and once while a second CPU-bound process (``while True: pass``)
runs, then compare the written meshes byte for byte and report both wall-clock times.

    python benchmarks/busy_core.py ../shared/data/bench --cases armadillo,bunny_sparse --out /tmp/load
    python benchmarks/busy_core.py ../shared/data/bench --cases bunny_sparse --iters 100   # a quick check

Prints the Markdown table of benchmarks/RESULTS_LOAD.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path


def _fit(scan: Path, out: Path, iters: int | None) -> float:
    t0 = time.perf_counter()
    extra = [] if iters is None else ["--iters", str(iters)]
    subprocess.run([sys.executable, "-m", "surfrec.cli.main", "fit", str(scan), "-o", str(out), "-q", "--seed", "0",
                    *extra], check=True, env={**os.environ})
    return time.perf_counter() - t0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--cases", default="armadillo,bunny_sparse")
    ap.add_argument("--out", type=Path, default=Path("load_out"))
    ap.add_argument("--iters", type=int, default=None, help="fit steps (default: the preset's)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| case | quiet s | busy s | busy / quiet | mesh sha256 quiet | mesh sha256 busy | same mesh |")
    print("|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        scan = args.folder / f"{name}.xyz"
        quiet, busy = args.out / f"{name}.quiet.ply", args.out / f"{name}.busy.ply"
        t_quiet = _fit(scan, quiet, args.iters)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            t_busy = _fit(scan, busy, args.iters)
        finally:
            hog.kill()
        a, b = _digest(quiet), _digest(busy)
        print(f"| {name} | {t_quiet:.1f} | {t_busy:.1f} | {t_busy / t_quiet:.2f} | {a} | {b} | "
              f"{'yes' if a == b else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
