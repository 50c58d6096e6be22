"""Real and single-view scans: cover, phantom and one-sided distances against the scan, one run.

For every scan in ``../shared/data/scans``, the 5 closed bench shapes (``--bench``), and
single-view partial scans generated here from bench shapes (one camera, z-buffer hidden
point removal, light noise, fixed seed; nothing is written to the data folders):

* ``surfrec``: the default :func:`surfrec.fit` and the stages after it
  (:func:`surfrec.run.mesh_stages`) with ``--surface`` (auto by default: the scan's
  closure decides before the fit whether it is fitted as an open surface,
  :mod:`surfrec.input.orient`); seconds = read-to-mesh (fit + meshing);
* ``poisson-trim``: Open3D screened Poisson depth 9, estimated normals oriented by tangent
  plane (k=15), the tutorial density trim (drop the lowest 5% density vertices), no crop.

Each mesh is scored with :func:`surfrec.surface.support.measure_support` against the whole
scan. Usage::

    python benchmarks/real_scans.py [--iters N] [--surface auto|open|closed] [--bench] [--scenes]
                                    [--only NAME ...] [--out out/real] [--json F] [--trim S]

``--scenes`` adds the generated depth-camera and lidar scenes of ``scenes.py`` (confirmation
cases: nothing was tuned on them), with one more column, mesh→truth: the mean distance from
the mesh to the scene's true surface in scan spacings s.

``--trim S`` adds ``surfrec-trim``: the same fit meshed with ``trim=S`` (a closed surface
without its faces beyond S scan spacings; seconds = fit + that meshing).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
REAL = ["bunny_rangescan_bun000.xyz", "milk_carton.pcd", "abc00994122_simscan.xyz", "gargoyle_srb.ply"]
PARTIAL = ["armadillo", "fandisk", "spot_noisy"]
BENCH = ["abc00994122", "armadillo", "bunny_sparse", "fandisk", "spot_noisy"]
#: single-view generator: z-buffer pixel side in scan spacings (a pixel must hold several
#: front points, or back points show through the gaps), relative noise, seed
PIXEL_OF_SPACING, NOISE_OF_SPACING, SEED = 3.0, 0.2, 0


def single_view(points: np.ndarray, direction=(0.3, 0.2, 1.0), seed: int = SEED) -> np.ndarray:
    """Points visible from a far camera looking along ``-direction`` (orthographic z-buffer
    with pixels of ``PIXEL_OF_SPACING`` scan spacings: per pixel, the points within one
    pixel depth of the nearest one), plus Gaussian noise of ``NOISE_OF_SPACING`` times the
    kept points' spacing."""
    from surfrec.input.inspect import scan_spacing

    d = np.asarray(direction, float)
    d /= np.linalg.norm(d)
    u = np.cross(d, [0.0, 1.0, 0.0] if abs(d[1]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    uv = np.stack([points @ u, points @ v], 1)
    depth = points @ d  # larger = nearer the camera
    px = PIXEL_OF_SPACING * scan_spacing(points)
    ij = np.floor((uv - uv.min(0)) / px).astype(np.int64)
    key = ij[:, 0] * (ij[:, 1].max() + 1) + ij[:, 1]
    near = np.full(key.max() + 1, -np.inf)
    np.maximum.at(near, key, depth)
    keep = depth >= near[key] - px
    pts = points[keep]
    rng = np.random.default_rng(seed)
    return pts + rng.normal(scale=NOISE_OF_SPACING * scan_spacing(pts), size=pts.shape)


def cases(bench: bool, scenes: bool = False) -> list[tuple[str, np.ndarray]]:
    from surfrec.io import load_points

    out = [(Path(n).stem, load_points(SHARED / "scans" / n).points) for n in REAL]
    for name in PARTIAL:
        out.append((f"{name}_view", single_view(_bench_points(name))))
    if bench:
        out += [(name, _bench_points(name)) for name in BENCH]
    if scenes:
        from scenes import SCENES, scene_points

        out += [(name, scene_points(name)) for name in SCENES]
    return out


def _bench_points(name: str) -> np.ndarray:
    from surfrec.io import load_points

    return load_points(SHARED / "bench" / f"{name}.xyz").points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--time-budget", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None, help="the fit's threads (default: the cores available)")
    ap.add_argument("--bench", action="store_true", help="also the 5 closed bench shapes")
    ap.add_argument("--scenes", action="store_true",
                    help="also the generated depth-camera and lidar scenes of benchmarks/scenes.py")
    ap.add_argument("--surface", choices=("auto", "open", "closed"), default="auto")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", type=Path, default=Path("out/real"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--trim", type=float, default=0.0, metavar="S",
                    help="also score the same fit meshed with trim=S (closed surfaces trimmed beyond S scan "
                         "spacings) as method surfrec-trim")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="setting overrides by name (JSON values), e.g. slope_weight=0.1")
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}

    import torch

    import surfrec
    from surfrec.evaluation.baselines import poisson
    from surfrec.input.inspect import scan_spacing
    from surfrec.run import mesh_config, mesh_stages
    from surfrec.settings import get_config
    from surfrec.surface.support import measure_support

    torch.set_num_threads(args.threads or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    truths = {}
    if args.scenes:
        from scenes import scene_truth, SCENES

        truths = {name: scene_truth(name) for name in SCENES}
    rows = []
    for name, pts in cases(args.bench, args.scenes):
        if args.only and name not in args.only:
            continue
        s = scan_spacing(pts)
        cfg = get_config("default", iterations=args.iters, time_budget=args.time_budget, threads=args.threads,
                         surface=args.surface, **overrides)
        t0 = time.perf_counter()
        result = surfrec.fit(pts, config=cfg)
        t_fit = time.perf_counter() - t0
        mesh, report = mesh_stages(result)
        t_surfrec = time.perf_counter() - t0
        methods = [("surfrec", mesh, t_surfrec)]
        if args.trim > 0:
            t1 = time.perf_counter()
            trimmed, _ = mesh_stages(result, mesh_config(result, trim=args.trim))
            methods.append(("surfrec-trim", trimmed, t_fit + time.perf_counter() - t1))
        t2 = time.perf_counter()
        pmesh = poisson(pts, None, depth=9, density_quantile=0.05, crop_factor=0.0)
        t_poisson = time.perf_counter() - t2
        for method, m, sec in (*methods, ("poisson-trim", pmesh, t_poisson)):
            rep = measure_support(m.vertices, m.faces, pts, spacing=s) if len(m.faces) else None
            row = dict(case=name, method=method, n_points=len(pts), seconds=round(sec, 1),
                       faces=len(m.faces), watertight=bool(m.is_watertight) if len(m.faces) else False)
            if rep is not None:
                row.update(cover=rep.cover, phantom=rep.phantom, s2m_s=rep.scan_to_mesh_mean_s,
                           m2s_s=rep.mesh_to_scan_mean_s, s2m=rep.scan_to_mesh_mean, m2s=rep.mesh_to_scan_mean)
                if args.scenes and name in truths:
                    row.update(m2gt_s=mesh_to_truth(m, truths[name]) / s)
            if method.startswith("surfrec"):
                row.update(decision=report.surface.surface, steps=result.steps,
                           closure=result.shape.closure if result.shape is not None else None,
                           timings={k: round(v, 2) for k, v in {**result.timings, **report.timings}.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
            if len(m.faces):
                m.export(args.out / f"{name}__{method}.ply")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print("| case | method | cover | phantom | scan→mesh (s) | mesh→scan (s) | mesh→truth (s) | watertight | seconds "
          "| surface (closure) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        closure = "" if r.get("closure") is None else f" ({r['closure']:.3f})"
        print(f"| {r['case']} | {r['method']} | {r.get('cover', float('nan')):.3f} | {r.get('phantom', float('nan')):.3f} | "
              f"{r.get('s2m_s', float('nan')):.2f} | {r.get('m2s_s', float('nan')):.2f} | "
              f"{r.get('m2gt_s', float('nan')):.2f} | {r['watertight']} | {r['seconds']} | {r.get('decision') or ''}{closure} |")


def mesh_to_truth(mesh, truth, n: int = 100_000) -> float:
    """Mean distance from ``n`` area-uniform samples of ``mesh`` to the ``truth`` mesh (scene units)."""
    import point_cloud_utils as pcu
    import trimesh

    x, _ = trimesh.sample.sample_surface(mesh, n, seed=0)
    d, _, _ = pcu.closest_points_on_mesh(np.asarray(x, np.float64), np.asarray(truth.vertices, np.float64),
                                         np.asarray(truth.faces, np.int64))
    return float(d.mean())


if __name__ == "__main__":
    main()
