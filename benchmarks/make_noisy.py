"""Noisy copies of bench shapes (confirmation cases for terms tuned on a noisy real scan).

    python benchmarks/make_noisy.py OUT_DIR --sigma 0.01 --cases abc00994122 armadillo fandisk

Writes OUT_DIR/NAME_n{sigma}.xyz (the bench points plus isotropic Gaussian noise of
standard deviation ``sigma`` × the ground truth's largest side, seed 0) and links
OUT_DIR/NAME_n{sigma}.gt.ply to the ground truth, so ``benchmarks/fit_steps.py`` and
``benchmarks/mesh_variants.py`` (with ``SURFREC_BENCH=OUT_DIR``) score them against it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from fit_steps import BENCH  # the bench folder (SURFREC_BENCH), one definition


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--cases", nargs="+", default=["abc00994122", "armadillo", "fandisk"])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases:
        pts = np.loadtxt(BENCH / f"{name}.xyz")[:, :3]
        noisy = pts + np.random.default_rng(0).normal(scale=args.sigma, size=pts.shape)  # the box's largest side is 1
        tag = f"{name}_n{args.sigma:g}"
        np.savetxt(args.out / f"{tag}.xyz", noisy, fmt="%.6f")
        gt = args.out / f"{tag}.gt.ply"
        if not gt.exists():
            gt.symlink_to((BENCH / f"{name}.gt.ply").resolve())
        print(tag, len(noisy))


if __name__ == "__main__":
    main()
