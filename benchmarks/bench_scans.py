"""surfrec vs screened Poisson on the real scans of ``../shared/data/scans``, in one run.

* ``abc00994122_simscan`` (simulated scanner noise) is scored against its ground truth
  (``abc00994122_gt.ply``) with :func:`surfrec.evaluation.metrics.evaluate`.
* ``gargoyle_srb`` (SRB, no ground truth here) is scored one-sided, as the SRB protocol
  does: scan → mesh (how well the mesh explains the data) and mesh → scan (how much surface
  lies away from the data: blobs, hole fillings), in the scan's units.

Each method runs in the same process one after the other; seconds are each method's own
wall clock (loading excluded). Usage::

    python benchmarks/bench_scans.py [--preset default] [--threads 2] [--out out/scans]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCANS = HERE.parent.parent / "shared" / "data" / "scans"
CASES = {
    "abc00994122_simscan": ("abc00994122_simscan.xyz", "abc00994122_gt.ply"),
    "gargoyle_srb": ("gargoyle_srb.ply", None),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=Path, default=SCANS)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("out/scans"))
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()

    import torch

    import surfrec
    from surfrec.evaluation.baselines import poisson

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.cases:
        scan_file, gt_file = CASES[name]
        cloud = surfrec.load_points(args.scans / scan_file)
        gt = None if gt_file is None else args.scans / gt_file
        for method in (f"surfrec-{args.preset}", "poisson"):
            t0 = time.perf_counter()
            if method == "poisson":
                mesh = poisson(cloud.points, None)  # normals estimated, as for the bench
            else:
                result = surfrec.fit(cloud, preset=args.preset)
                mesh = surfrec.extract_mesh(result, resolution=256)
            seconds = time.perf_counter() - t0
            surfrec.save_mesh(mesh, args.out / f"{name}__{method}.ply")
            s = surfrec.evaluate(mesh, gt, scan=cloud.points)
            row = {"case": name, "method": method, "seconds": round(seconds, 1),
                   **{k: s[k] for k in ("chamfer_l1", "normal_consistency", "hausdorff", "scan_to_rec_mean",
                                        "scan_to_rec_max", "rec_to_scan_mean", "rec_to_scan_max") if k in s}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "scans.json").write_text(json.dumps(rows, indent=1))
    print("\n| case | method | seconds | CD-L1 ×1000 | NC | scan→mesh mean / max | mesh→scan mean / max |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cd = f"{1000 * r['chamfer_l1']:.3f}" if "chamfer_l1" in r else "–"
        nc = f"{r['normal_consistency']:.3f}" if r.get("normal_consistency") is not None else "–"
        print(f"| {r['case']} | {r['method']} | {r['seconds']} | {cd} | {nc} | "
              f"{r['scan_to_rec_mean']:.4g} / {r['scan_to_rec_max']:.4g} | "
              f"{r['rec_to_scan_mean']:.4g} / {r['rec_to_scan_max']:.4g} |")


if __name__ == "__main__":
    main()
