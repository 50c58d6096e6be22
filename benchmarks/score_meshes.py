"""Chamfer of written meshes against a ground truth (e.g. bench_real's meshes of the
abc00994122 simscan, whose ground truth is in ../shared/data/scans).

    python benchmarks/score_meshes.py ../shared/data/scans/abc00994122_gt.ply \
        OUT/abc00994122_simscan__surfrec.ply OUT/abc00994122_simscan__poisson-trim.ply

Prints one row per mesh: CD-L1 ×1000 (mean of the two one-sided mean distances, in the
ground truth's units), accuracy (mesh → truth) and completeness (truth → mesh) ×1000,
normal consistency (``surfrec.evaluate``, 100k samples per side, seed 0).
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    import surfrec

    gt = sys.argv[1]
    print("| mesh | CD-L1 ×1000 | accuracy ×1000 | completeness ×1000 | NC |")
    print("|---|---|---|---|---|")
    for path in sys.argv[2:]:
        s = surfrec.evaluate(path, gt)
        print(f"| {path} | {1000 * s['chamfer_l1']:.2f} | {1000 * s['acc']:.2f} | "
              f"{1000 * s['comp']:.2f} | {s['normal_consistency']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
