"""The default preset against screened Poisson on large scans: total seconds, peak memory, stage times.

One bench shape (default: ../shared/data/bench/armadillo.gt.ply, a ground-truth mesh) is
sampled uniformly on its surface with a fixed seed (0), with Gaussian noise of 0.1% of its
bounding-box diagonal and no normals: the scan a user would have, written as a binary PLY
(float64, ``surfrec.io.save_points``). The sizes are nested: the 50k scan is the first 50k
points of the 500k one. For each size each method runs in a fresh subprocess (its peak
resident memory, VmHWM, is its own), from reading the scan file to the written mesh:

- ``surfrec``: ``surfrec.reconstruct(scan, output=..., preset="default")``; every stage time
  of ``report.timings`` (read, inspect, index, orient, sigma, sides, fit, extract, refine,
  surface, fill, support, write). The set-up stages are those before the fit loop: read,
  inspect (duplicates, strays, normalization), index (k-d tree, spacing, noise), orient
  (the scan's normals, oriented, for the closed/open decision), sigma and sides.
- ``poisson``: the project's baseline, ``surfrec.evaluation.baselines.poisson`` with its
  defaults, as ``surfrec baseline poisson`` and ``surfrec bench`` call it: normals estimated
  from 30 nearest neighbours (PCA), oriented with Open3D's
  ``orient_normals_consistent_tangent_plane(15)`` (a minimum spanning tree over a 15-NN
  Riemannian graph), screened Poisson at octree depth 9 on one thread, no density trim,
  the mesh cropped to the points' box ×1.1. Its stage times (normals, orient, solve, crop)
  are the ones the baseline logs itself.

Interpreter start-up and the imports (torch, Open3D, and the modules the product imports on
its first call) are outside the clock (``import_s`` in the CSV); the peak memory includes
them (``base_gb``: the resident memory after them). ``t_other`` is the time no stage counts.
Off the clock, each mesh is scored against the ground truth with ``surfrec.evaluate``
(Chamfer-L1 ×1000 of the truth's largest box side, normal consistency) and for the side its
normals face (``outward``: the share of its surface near the truth facing the truth's way;
NC is unsigned and does not see a mesh turned inside out); ``--samples 0`` skips the
scores. Prints a Markdown table; one CSV row per (points, method)::

    python benchmarks/large_scans.py                                   # 50k, 500k, 2M
    python benchmarks/large_scans.py --points 5000,20000 --iters 50    # a quick check (~1 min)
    python benchmarks/large_scans.py --methods poisson --timeout 1800 --out /tmp/poisson.csv

Run time on the 2-core machine: 15 minutes at the default sizes (2026-12-07: three default
fits of 63, 142 and 210 s, Poisson 14, 129 and 310 s, plus the scoring); the quick check
above takes about a minute.
Replaces point_count.py (fit + mesh of a torus against the point count, surfrec alone).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SURFREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SHAPE = DATA / "bench" / "armadillo.gt.ply"
METHODS = ("surfrec", "poisson")
#: the stages before the fit loop (surfrec) or the solve (poisson), in the table
SETUP = {"surfrec": ("read", "inspect", "index", "orient", "sigma", "sides"),
         "poisson": ("read", "normals", "orient")}
#: every stage time in the CSV, in the order a scan passes them
STAGES = ("read", "inspect", "index", "normals", "orient", "sigma", "sides", "start", "fit", "solve", "extract", "filter",
          "pretrim", "refine", "surface", "fill", "trim", "crop", "support", "write")
FIELDS = ("points", "method", "status", "seconds", "peak_gb", "base_gb", "import_s", "ratio_to_poisson",
          *(f"t_{s}" for s in STAGES), "t_other", "data_points", "steps", "faces", "cd_l1_x1000", "nc", "outward",
          "error")


# ------------------------------------------------------------------------- the scans
def make_scans(shape: Path, sizes: list[int], folder: Path, seed: int = 0) -> dict[int, Path]:
    """Uniform samples of the shape's surface with 0.1%-of-diagonal Gaussian noise, nested
    (the smaller scans are prefixes of the largest), written as binary PLY without normals."""
    import trimesh

    from surfrec.io import save_points

    mesh = trimesh.load(shape, process=False, force="mesh")
    pts, _ = trimesh.sample.sample_surface(mesh, max(sizes), seed=seed)
    diag = float(np.linalg.norm(np.ptp(np.asarray(mesh.vertices), axis=0)))
    pts = pts + np.random.default_rng(seed + 1).normal(scale=1e-3 * diag, size=pts.shape)
    paths = {}
    for n in sizes:
        paths[n] = folder / f"{shape.name.split('.')[0]}_{n}.ply"
        save_points(paths[n], pts[:n])
    return paths


# --------------------------------------------------------------- one run (subprocess)
def _rss_gb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024.0 ** 2
    return math.nan


def _peak_gb() -> float:
    from surfrec.resources import peak_rss_mb

    return peak_rss_mb() / 1024.0


class _Records(logging.Handler):
    """The log records of the Poisson baseline (its own stage times)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _poisson_stages(records: list[logging.LogRecord]) -> dict[str, float]:
    """normals (estimate), orient, solve, crop from the baseline's two INFO lines (see
    surfrec/evaluation/baselines.py: ``_point_cloud`` and ``poisson``)."""
    out: dict[str, float] = {}
    for r in records:
        if r.msg.startswith("normals: estimated from") and len(r.args) == 4:
            out["normals"], out["orient"] = float(r.args[1]), float(r.args[3])
        elif r.msg.startswith("poisson depth") and len(r.args) == 7:
            out["solve"], out["crop"] = float(r.args[4]), float(r.args[5])
    return out


#: modules each method imports on its first call (about 1 s together), imported before the clock
PREIMPORT = {"surfrec": ("torch", "trimesh", "numba", "skimage.measure", "point_cloud_utils", "plyfile",
                         "scipy.spatial", "surfrec.field.train", "surfrec.surface.extract", "surfrec.surface.refine",
                         "surfrec.surface.decide", "surfrec.surface.fill", "surfrec.surface.support"),
             "poisson": ("trimesh", "plyfile", "scipy.spatial")}


def _preimport(method: str) -> None:
    import importlib

    for name in PREIMPORT.get(method, ()):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def child(spec: dict) -> None:
    """One method on one scan; prints ``RESULT {json}``."""
    t_import = time.perf_counter()
    method, scan, out = spec["method"], spec["scan"], spec["out"]
    extra: dict = {}
    _preimport(method)
    if method == "surfrec":
        from surfrec.run import reconstruct

        overrides = {} if spec["iters"] is None else {"iterations": spec["iters"]}
        base = _rss_gb("VmRSS")
        t_import = time.perf_counter() - t_import
        t0 = time.perf_counter()
        rec = reconstruct(scan, output=out, preset="default", seed=0, **overrides)
        seconds = time.perf_counter() - t0
        stages = rec.report.timings.as_dict()
        faces = len(rec.mesh.faces)
        extra = {"data_points": rec.report.input.data_points, "steps": rec.report.fit.steps}
    elif method == "poisson":
        from surfrec.evaluation.baselines import poisson
        from surfrec.io import load_points, save_mesh
        from surfrec.optional import import_open3d

        import_open3d("the Poisson baseline")
        records = _Records()
        logger = logging.getLogger("surfrec.evaluation.baselines")
        logger.addHandler(records)
        logger.setLevel(logging.INFO)
        base = _rss_gb("VmRSS")
        t_import = time.perf_counter() - t_import
        t0 = time.perf_counter()
        cloud = load_points(scan)
        t1 = time.perf_counter()
        mesh = poisson(cloud.points, cloud.normals)
        t2 = time.perf_counter()
        save_mesh(mesh, out, protect=(scan,))
        seconds = time.perf_counter() - t0
        stages = {"read": t1 - t0, **_poisson_stages(records.records), "write": time.perf_counter() - t2}
        faces = len(mesh.faces)
        extra = {"data_points": len(cloud.points)}
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    print("RESULT " + json.dumps({"seconds": seconds, "peak_gb": _peak_gb(), "base_gb": base,
                                  "import_s": t_import, "stages": stages, "faces": faces, **extra}), flush=True)


def run_one(method: str, scan: Path, out: Path, iters: int | None, timeout: float | None) -> dict:
    spec = {"method": method, "scan": str(scan), "out": str(out), "iters": iters}
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": f"timed out after {timeout:g} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"status": "failed", "error": err[:300]}
    return {"status": "ok", **json.loads(lines[-1][len("RESULT "):])}


# ------------------------------------------------------------------------ the runner
def outward_share(mesh, truth, samples: int, near: float) -> float:
    """Share of the mesh's surface samples within ``near`` of the truth whose face normal
    points to the same side as the truth's nearest face (NC takes ``|n . n'|``: it does not
    see a mesh turned inside out, which a wrongly oriented Poisson input gives)."""
    import point_cloud_utils as pcu
    import trimesh

    pts, fi = trimesh.sample.sample_surface(mesh, samples, seed=0)
    dist, tri, _ = pcu.closest_points_on_mesh(np.asarray(pts, dtype=np.float64),
                                              np.asarray(truth.vertices, dtype=np.float64),
                                              np.asarray(truth.faces, dtype=np.int64))
    keep = dist < near
    dots = np.einsum("ij,ij->i", mesh.face_normals[fi][keep], truth.face_normals[tri[keep]])
    return float((dots > 0).mean()) if len(dots) else math.nan


def score(path: Path, truth, samples: int) -> dict:
    import trimesh

    from surfrec.evaluation.metrics import evaluate

    mesh = trimesh.load(path, process=False, force="mesh")
    s = evaluate(mesh, truth, n_samples=samples)
    side = float(np.ptp(np.asarray(truth.vertices), axis=0).max())
    return {"cd_l1_x1000": 1000.0 * s["chamfer_l1"] / side, "nc": s["normal_consistency"],
            "outward": outward_share(mesh, truth, min(samples, 20_000), 0.01 * side)}


def row_of(n: int, method: str, r: dict) -> dict:
    row = {"points": n, "method": method, "status": r["status"], "error": r.get("error", "")}
    if r["status"] != "ok":
        return row
    stages = r["stages"]
    row.update({k: r.get(k) for k in ("seconds", "peak_gb", "base_gb", "import_s", "data_points", "steps", "faces")})
    row.update({f"t_{k}": v for k, v in stages.items() if k in STAGES})
    row["t_other"] = r["seconds"] - sum(v for k, v in stages.items() if k in STAGES)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f"  note: stages not in the CSV: {', '.join(unknown)}", file=sys.stderr)
    return row


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _f(v, fmt: str) -> str:
    return "—" if v is None or v == "" or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def table(rows: list[dict]) -> str:
    out = ["| points | method | total s | peak GB | × Poisson's time | set-up stages, s | CD-L1 ×1000 | NC "
           "| outward |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"| {r['points']:,} | {r['method']} | {r['status']}: {r['error'][:80]} | | | | | | |")
            continue
        setup = ", ".join(f"{k} {r[f't_{k}']:.2f}" for k in SETUP.get(r["method"], ())
                          if r.get(f"t_{k}") is not None)
        out.append(f"| {r['points']:,} | {r['method']} | {r['seconds']:.1f} | {r['peak_gb']:.2f} | "
                   f"{_f(r.get('ratio_to_poisson'), '.2f')} | {setup} | {_f(r.get('cd_l1_x1000'), '.3f')} | "
                   f"{_f(r.get('nc'), '.3f')} | {_f(r.get('outward'), '.3f')} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="50000,500000,2000000", help="scan sizes, comma-separated")
    ap.add_argument("--shape", type=Path, default=SHAPE, help="a ground-truth mesh to sample (default: %(default)s)")
    ap.add_argument("--iters", type=int, default=None, help="surfrec's fit steps (default: the preset's)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "large_scans.csv",
                    help="CSV of the rows (default: benchmarks/large_scans.csv)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated: surfrec, poisson")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a run's subprocess may take, start-up included (default: no limit)")
    ap.add_argument("--samples", type=int, default=50_000,
                    help="surface samples per mesh for the scores, off the clock (0: no scores)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the scans and meshes here (default: a temp dir)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    sizes = [int(float(s)) for s in args.points.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method {', '.join(bad)}; choose from {', '.join(METHODS)}")
    truth = None
    if args.samples > 0:
        import trimesh

        truth = trimesh.load(args.shape, process=False, force="mesh")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        scans = make_scans(args.shape, sizes, work)
        print(f"scans of {args.shape.name} written in {time.perf_counter() - t0:.1f} s: "
              f"{', '.join(f'{n:,}' for n in sizes)} points", file=sys.stderr, flush=True)
        rows: list[dict] = []
        for n in sizes:
            done: dict[str, dict] = {}
            for method in methods:
                mesh = work / f"{scans[n].stem}.{method}.ply"
                r = run_one(method, scans[n], mesh, args.iters, args.timeout)
                row = row_of(n, method, r)
                if row["status"] == "ok" and truth is not None:
                    row.update(score(mesh, truth, args.samples))
                done[method] = row
                rows.append(row)
                print(f"{n:,} points, {method}: {row['status']}"
                      + (f", {row['seconds']:.1f} s, peak {row['peak_gb']:.2f} GB" if row["status"] == "ok"
                         else f" ({row['error']})"), file=sys.stderr, flush=True)
            p = done.get("poisson")
            for row in done.values():
                if p and p["status"] == "ok" and row["status"] == "ok":
                    row["ratio_to_poisson"] = row["seconds"] / p["seconds"]
            write_csv(rows, args.out)
    iters = "the preset's steps" if args.iters is None else f"{args.iters} steps"
    print(f"\nsurfrec default preset ({iters}) against screened Poisson (depth 9, estimated normals), "
          f"{args.shape.name}, CPU; from reading the scan to the written mesh\n")
    print(table(rows))
    print(f"\nrows: {args.out}")


if __name__ == "__main__":
    main()
