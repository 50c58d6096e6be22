"""Where extract_mesh's time goes at resolution 256 (cProfile; F evaluations, marching
cubes, stitching, component filter, gradient normals, refinement).

Usage::

    python benchmarks/profile_extract.py [SCAN] [--steps 1500] [--threads 1]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

STAGES = {
    "extract_mesh total": ("result.py", "extract_mesh"),
    "F on grid samples (_Evaluator.at_points)": ("mesh.py", "at_points"),
    "narrow band total": ("mesh.py", "_narrowband"),
    "marching cubes blocks": ("mesh.py", "_marching_cubes_block"),
    "stitch": ("mesh.py", "_stitch"),
    "component filter": ("mesh.py", "_component_filter"),
    "gradient normals (all calls)": ("mesh.py", "gradient_normals"),
    "refinement total": ("result.py", "_refine_onto_data"),
    "refine: plan": ("refine.py", "plan"),
    "refine: refine_vertices": ("refine.py", "refine_vertices"),
    "crossing check": ("result.py", "_check_crossing"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scan", nargs="?", default="/work/shared/data/bench/armadillo.xyz")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=256)
    args = ap.parse_args()
    import torch

    import surfrec

    res = surfrec.fit(args.scan, iterations=args.steps, time_budget=0, threads=args.threads)
    torch.set_num_threads(args.threads)
    prof = cProfile.Profile()
    w, c = time.perf_counter(), time.process_time()
    prof.enable()
    mesh = surfrec.extract_mesh(res, resolution=args.resolution)
    prof.disable()
    print(f"extract_mesh: wall {time.perf_counter() - w:.2f} s, cpu {time.process_time() - c:.2f} s, "
          f"{len(mesh.faces)} faces")
    st = pstats.Stats(prof)
    agg: dict[str, list] = {}
    for (fname, _line, func), (_cc, nc, _tt, ct, _callers) in st.stats.items():
        for label, (fsub, fn) in STAGES.items():
            if fsub in fname and func == fn:
                a = agg.setdefault(label, [0, 0.0])
                a[0] += nc
                a[1] += ct
    for label in STAGES:
        if label in agg:
            print(f"  {label:45s} {agg[label][0]:6d} calls {agg[label][1]:7.2f} s")
    st.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
