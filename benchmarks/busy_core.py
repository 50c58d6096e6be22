"""Is the default mesh the same when the machine is busy, and with one thread?

For each case: run the default ``surfrec fit`` three times in fresh processes with the same
seed: on a quiet machine (the default thread count: the cores available), while a second
CPU-bound process (``while True: pass``) runs, and quiet with ``--threads 1``; then compare
the written meshes byte for byte and report the wall-clock times.

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


def _fit(scan: Path, out: Path, iters: int | None, *more: str) -> float:
    t0 = time.perf_counter()
    extra = ([] if iters is None else ["--iters", str(iters)]) + list(more)
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
    print("| case | quiet s | busy s | busy / quiet | 1 thread s | mesh sha256 | same mesh busy | same mesh 1 thread |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        scan = args.folder / f"{name}.xyz"
        quiet, busy, one = (args.out / f"{name}.{kind}.ply" for kind in ("quiet", "busy", "one"))
        t_quiet = _fit(scan, quiet, args.iters)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            t_busy = _fit(scan, busy, args.iters)
        finally:
            hog.kill()
        t_one = _fit(scan, one, args.iters, "--threads", "1")
        a, b, c = _digest(quiet), _digest(busy), _digest(one)
        print(f"| {name} | {t_quiet:.1f} | {t_busy:.1f} | {t_busy / t_quiet:.2f} | {t_one:.1f} | {a} | "
              f"{'yes' if a == b else 'NO'} | {'yes' if a == c else 'NO'} |", flush=True)

if __name__ == "__main__":
    main()
