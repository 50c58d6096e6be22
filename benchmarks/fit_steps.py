"""Mesh quality against the number of fit steps, seeds and settings (no time budget: the
step count alone ends the fit).

Usage::

    python benchmarks/fit_steps.py OUT.csv --cases armadillo fandisk --steps 1000 2000 6000 --seeds 0
    python benchmarks/fit_steps.py quality.csv --preset quality --cases abc00994122 --steps 6000
    python benchmarks/fit_steps.py OUT.csv --cases armadillo --steps 6000 --set keep_far_fraction=0.3

Each case of the bench folder (``SURFREC_BENCH``, default ``../shared/data/bench``:
``NAME.xyz`` and its ground truth ``NAME.gt.ply``) is fitted with ``surfrec.fit`` (the
preset, then the ``--set`` overrides: any setting name, JSON values), meshed at resolution
256 by the stages after the fit, and scored against the ground truth
(:func:`surfrec.evaluate`). Each row, appended to OUT.csv: case, steps, seed, overrides, fit
wall/CPU seconds, extraction seconds, CD-L1 ×1000, normal consistency, faces, the last
surface and data terms, accuracy/completeness/Hausdorff ×1000 and the surface written. The
fit history of every run is written next to the CSV (``OUT.hist/``), so stopping rules can
be replayed on it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("SURFREC_BENCH", HERE.parent.parent / "shared" / "data" / "bench"))
FIELDS = ["case", "steps", "seed", "overrides", "fit_wall_s", "fit_cpu_s", "extract_wall_s", "extract_cpu_s",
          "cd_x1000", "normal_consistency", "n_faces", "final_surface", "final_data",
          "acc_x1000", "comp_x1000", "hausdorff_x1000", "surface_mode"]


def run_one(case: str, steps: int, seed: int, overrides: dict, mesh_out: Path | None = None,
            preset: str = "default") -> tuple[dict, dict]:
    import surfrec
    from surfrec.run import mesh_config, mesh_stages

    scan, gt = BENCH / f"{case}.xyz", BENCH / f"{case}.gt.ply"
    w0, c0 = time.perf_counter(), time.process_time()
    res = surfrec.fit(str(scan), preset=preset, **{"iterations": steps, "seed": seed, **overrides})
    w1, c1 = time.perf_counter(), time.process_time()
    mesh, report = mesh_stages(res, mesh_config(res, resolution=256))
    w2, c2 = time.perf_counter(), time.process_time()
    ev = surfrec.evaluate(mesh, str(gt))
    if mesh_out is not None:
        mesh_out.parent.mkdir(parents=True, exist_ok=True)
        mesh.export(mesh_out)
    h = res.history
    named = overrides if preset == "default" else {"preset": preset, **overrides}
    row = {"case": case, "steps": res.steps, "seed": seed, "overrides": json.dumps(named, sort_keys=True),
           "fit_wall_s": round(w1 - w0, 2), "fit_cpu_s": round(c1 - c0, 2),
           "extract_wall_s": round(w2 - w1, 2), "extract_cpu_s": round(c2 - c1, 2),
           "cd_x1000": round(1000 * ev["chamfer_l1"], 4),
           "normal_consistency": round(ev["normal_consistency"], 4), "n_faces": len(mesh.faces),
           "final_surface": h["surface"][-1], "final_data": h["data"][-1],
           "acc_x1000": round(1000 * ev["acc"], 4), "comp_x1000": round(1000 * ev["comp"], 4),
           "hausdorff_x1000": round(1000 * ev["hausdorff"], 2),
           "surface_mode": report.surface.surface}
    return row, h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--cases", nargs="+", default=["armadillo", "fandisk"])
    ap.add_argument("--steps", nargs="+", type=int, default=[1000, 1500, 2000, 3000, 6000])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--preset", default="default", help="fast, default or quality")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="setting overrides by name (JSON values), e.g. lr=0.01 or 'model={\"hidden_dim\": 128}'")
    ap.add_argument("--hist-dir", type=Path, default=None,
                    help="where the fit histories go (default: OUT with the suffix .hist)")
    ap.add_argument("--mesh-dir", type=Path, default=None, help="also write every mesh there (PLY)")
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    hist_dir = args.hist_dir or args.out.with_suffix(".hist")
    hist_dir.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with args.out.open("a", newline="") as fh:
        wr = csv.DictWriter(fh, FIELDS)
        if new:
            wr.writeheader()
        for seed in args.seeds:
            for steps in args.steps:
                for case in args.cases:
                    tag = "_".join(f"{k}{v}" for k, v in sorted(overrides.items()))
                    tag = "_".join(t for t in ("" if args.preset == "default" else args.preset, tag) if t)
                    name = f"{case}_{steps}_s{seed}{('_' + tag) if tag else ''}"
                    row, hist = run_one(case, steps, seed, overrides,
                                        args.mesh_dir / f"{name}.ply" if args.mesh_dir else None, args.preset)
                    wr.writerow(row)
                    fh.flush()
                    (hist_dir / f"{name}.json").write_text(json.dumps(hist))
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
