"""Speed and agreement of ``surfrec eval``'s point-to-mesh engine: before/after.

before: Open3D's ``RaycastingScene`` finds the closest triangle in float32, the distance to
        it is recomputed in float64 (Ericson's closest point on a triangle) -- surfrec's
        engine until the libusb-free rewrite, reproduced here verbatim.
after:  point-cloud-utils ``closest_points_on_mesh`` (float64, self-contained wheel), the
        engine of :func:`surfrec.evaluation.metrics._to_mesh` now.

For each of the 5 bench shapes (``../shared/data/bench``), a screened Poisson mesh is
built from the scan with its given normals (Open3D, depth 8) and scored against the
ground-truth mesh with :func:`surfrec.evaluation.metrics.evaluate` (100,000 samples a side, same
seeds) once per engine, interleaved, ``--repeats`` times; the table gives the median
seconds of the whole ``evaluate`` call and of the point-to-mesh queries alone, and the
largest relative difference of every metric between the engines.

Needs open3d importable (for "before" and the Poisson meshes): on a machine without
libusb, ``LD_LIBRARY_PATH`` can point at an extracted ``libusb-1.0-0`` package.

Usage::

    python benchmarks/eval_engine.py                      # writes benchmarks/RESULTS_EVAL.md
    python benchmarks/eval_engine.py --repeats 1 --no-write --cases bunny_sparse
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS_EVAL.md"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "bench"
CASES = ("abc00994122", "armadillo", "bunny_sparse", "fandisk", "spot_noisy")
METRICS = ("chamfer_l1", "chamfer_l2", "hausdorff", "normal_consistency")


# ---------------------------------------------------------------- the "before" engine
def closest_points_on_triangles(p, a, b, c):
    """Ericson (2005) 5.1.5, vectorized, float64 (surfrec.metrics before the rewrite)."""
    p, a, b, c = (np.asarray(x, dtype=np.float64) for x in (p, a, b, c))
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = va + vb + vc
        out = a + ab * (vb / denom)[:, None] + ac * (vc / denom)[:, None]
        done = np.zeros(len(p), dtype=bool)

        def put(mask, value):
            m = mask & ~done
            out[m] = value[m]
            done[m] = True

        put((d1 <= 0) & (d2 <= 0), a)
        put((d3 >= 0) & (d4 <= d3), b)
        put((d6 >= 0) & (d5 <= d6), c)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * (d1 / (d1 - d3))[:, None])
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * (d2 / (d2 - d6))[:, None])
        e = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + (c - b) * e[:, None])
    return out


def to_mesh_open3d(query, mesh, origin):
    import open3d as o3d

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices - origin, dtype=np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)))
    found = scene.compute_closest_points(
        o3d.core.Tensor(np.ascontiguousarray(query - origin, dtype=np.float32)))
    tri = found["primitive_ids"].numpy().astype(np.int64)
    corners = vertices[faces[tri]]
    closest = closest_points_on_triangles(query, corners[:, 0], corners[:, 1], corners[:, 2])
    bad = ~np.isfinite(closest).all(axis=1)
    if bad.any():
        closest[bad] = found["points"].numpy()[bad].astype(np.float64) + origin
    return np.linalg.norm(query - closest, axis=1), np.asarray(mesh.face_normals, dtype=np.float64)[tri]


# ---------------------------------------------------------------- the run
def poisson_mesh(data: Path, case: str):
    from surfrec.evaluation.baselines import poisson
    from surfrec.io import load_points

    cloud = load_points(data / f"{case}.withnormals.xyz")
    return poisson(cloud.points, cloud.normals, normals_mode="given", depth=8)


def timed_evaluate(engine, rec, gt, n_samples: int):
    from surfrec.evaluation import metrics

    query_time = [0.0]

    def wrapped(query, mesh, origin):
        t = time.perf_counter()
        out = engine(query, mesh, origin)
        query_time[0] += time.perf_counter() - t
        return out

    original = metrics._to_mesh
    metrics._to_mesh = wrapped
    try:
        t = time.perf_counter()
        res = metrics.evaluate(rec, gt, n_samples=n_samples, seed=0)
        total = time.perf_counter() - t
    finally:
        metrics._to_mesh = original
    return res, total, query_time[0]


def brute_force_check(rec, gt, n_worst: int = 20) -> tuple[float, float]:
    """Largest error of each engine against brute force (every triangle of ``gt``), on the
    ``n_worst`` samples of ``rec`` where the two engines disagree most."""
    import trimesh

    from surfrec.evaluation import metrics

    q, _ = trimesh.sample.sample_surface(rec, 100_000, seed=0)
    q = np.asarray(q, dtype=np.float64)
    d_before, _ = to_mesh_open3d(q, gt, np.zeros(3))
    d_after, _ = metrics._to_mesh(q, gt, np.zeros(3))
    worst = np.argsort(-np.abs(d_before - d_after))[:n_worst]
    tri = np.asarray(gt.triangles, dtype=np.float64)
    exact = np.array([
        np.linalg.norm(q[i] - closest_points_on_triangles(np.broadcast_to(q[i], (len(tri), 3)),
                                                          tri[:, 0], tri[:, 1], tri[:, 2]),
                       axis=1).min()
        for i in worst])
    return float(np.abs(d_before[worst] - exact).max()), float(np.abs(d_after[worst] - exact).max())


def git_commit() -> str | None:
    """The short hash of this checkout's HEAD (None outside a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def rel_diff(a, b) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SURFREC_SHARED_DATA", DEFAULT_DATA.parent)) / "bench")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    try:
        import open3d  # noqa: F401
    except (ImportError, OSError) as exc:
        print(f"eval_engine: open3d is needed for the 'before' engine ({exc})", file=sys.stderr)
        return 2
    import torch  # noqa: F401  (the CLI imports it too; keeps thread settings comparable)
    import trimesh

    from surfrec.evaluation import metrics

    after_engine = metrics._to_mesh
    rows = []
    for case in args.cases:
        gt = trimesh.load(args.data / f"{case}.gt.ply", process=False, force="mesh")
        rec = poisson_mesh(args.data, case)
        times = {"before": [], "after": []}
        results = {}
        for _ in range(args.repeats):
            for name, engine in (("before", to_mesh_open3d), ("after", after_engine)):
                res, total, query = timed_evaluate(engine, rec, gt, args.samples)
                times[name].append((total, query))
                results[name] = res
        b, a = results["before"], results["after"]
        keys = [*METRICS, *[k for k in a if k.startswith("fscore")]]
        diffs = {k: rel_diff(b[k], a[k]) for k in keys if isinstance(a.get(k), (int, float))}
        med = {n: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
               for n, v in times.items()}
        err_before, err_after = brute_force_check(rec, gt)
        # sampling noise: the same metrics with other seeds (after engine)
        other = [metrics.evaluate(rec, gt, n_samples=args.samples, seed=s) for s in (2, 4)]
        noise = {k: (max(r[k] for r in (a, *other)) - min(r[k] for r in (a, *other)))
                 / abs(a[k]) for k in ("chamfer_l1", "normal_consistency")}
        rows.append((case, len(gt.faces), len(rec.faces), med, b, a, diffs, err_before, err_after, noise))
        print(f"{case}: eval before {med['before'][0]:.2f}s (queries {med['before'][1]:.2f}s), "
              f"after {med['after'][0]:.2f}s (queries {med['after'][1]:.2f}s); "
              f"CD x1000 {b['chamfer_l1'] * 1e3:.6f} vs {a['chamfer_l1'] * 1e3:.6f}; "
              f"max rel diff {max(diffs.values()):.2e}; brute-force error before {err_before:.1e}, "
              f"after {err_after:.1e}", flush=True)

    command = shlex.join(["python", "benchmarks/eval_engine.py", *(sys.argv[1:] if argv is None else argv)])
    commit = git_commit()
    lines = [
        "# `surfrec eval`: point-to-mesh engine before/after",
        "",
        f"## {time.strftime('%Y-%m-%d')}{f', commit {commit}' if commit else ''}: Open3D's float32 triangle "
        "choice against point-cloud-utils",
        "",
        f"Reproduce: `{command}` (writes this file). {args.samples:,} samples a side,",
        f"median of {args.repeats} interleaved runs, {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}),",
        "machine shared with other jobs (loaded): compare the columns of one row, not across runs.",
        "rec = screened Poisson (Open3D, depth 8, given normals) of each bench scan; gt = its ground-truth mesh.",
        "before = Open3D RaycastingScene (float32) + float64 closest point on the found triangle;",
        "after = point-cloud-utils `closest_points_on_mesh` (float64). Seconds: the whole `evaluate`",
        "call (sampling, both directions, F-scores) and, in brackets, the point-to-mesh queries alone.",
        "Seed spread: (max - min) / value of the metric over seeds 0, 2, 4 (after engine): the sampling noise.",
        "Last two columns: on the 20 rec samples (of 100,000) where the engines disagree most, the largest",
        "|distance to gt - brute force over every gt triangle| of each engine (units of the data, box ~1).",
        "",
        "| case | gt faces | rec faces | eval s before (queries) | eval s after (queries) | CD×1000 before | CD×1000 after | NC before | NC after | F@0.5% before | F@0.5% after | rel. diff CD / NC | max rel. diff, all metrics | seed spread CD / NC | brute-force err. before | after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fkey = next(k for k in rows[0][5] if k.startswith("fscore"))
    for case, gf, rf, med, b, a, diffs, eb, ea, noise in rows:
        lines.append(
            f"| {case} | {gf:,} | {rf:,} | {med['before'][0]:.2f} ({med['before'][1]:.2f}) | "
            f"{med['after'][0]:.2f} ({med['after'][1]:.2f}) | {b['chamfer_l1'] * 1e3:.6f} | "
            f"{a['chamfer_l1'] * 1e3:.6f} | {b['normal_consistency']:.6f} | {a['normal_consistency']:.6f} | "
            f"{b[fkey]:.6f} | {a[fkey]:.6f} | {diffs['chamfer_l1']:.1e} / {diffs['normal_consistency']:.1e} | "
            f"{max(diffs.values()):.1e} | {noise['chamfer_l1']:.1e} / {noise['normal_consistency']:.1e} | "
            f"{eb:.1e} | {ea:.1e} |")
    tb = sum(r[3]["before"][0] for r in rows)
    ta = sum(r[3]["after"][0] for r in rows)
    qb = sum(r[3]["before"][1] for r in rows)
    qa = sum(r[3]["after"][1] for r in rows)
    lines += ["", f"Total over the {len(rows)} cases: eval {tb:.2f} s before, {ta:.2f} s after; "
                  f"point-to-mesh queries {qb:.2f} s before, {qa:.2f} s after.",
              f"Largest relative difference of any metric (CD L1/L2, Hausdorff, NC, F-scores) "
              f"between the engines: {max(max(r[6].values()) for r in rows):.1e}.", "",
              "Reading: the engines agree within sampling noise (rel. diff vs seed spread); where they differ, 'after'",
              "is the exact distance (brute force) and 'before' is off by up to the error of Open3D's",
              "float32 choice of triangle. 'after' is slower (about 1.1-1.8x the seconds here; the",
              "cause was not investigated) but needs no system library: open3d's wheel needs libusb,",
              "which pip cannot install.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
