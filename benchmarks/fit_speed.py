"""Accuracy and speed of ``surfrec.fit`` against screened Poisson, per bench case.

Two parts:

``accuracy``
    For every case of a bench folder (``NAME.xyz`` + ``NAME.gt.ply``; by default
    ``../shared/data/bench``) and, with ``--scans``, the simulated scan
    ``abc00994122_simscan`` and the project's example (``data/example.xyz``): fit with a
    preset, mesh with :func:`surfrec.run.extract_mesh` at resolution 256, score with
    :func:`surfrec.evaluation.metrics.evaluate`, run :func:`surfrec.evaluation.baselines.poisson` on the same
    points in the same run, and print a table with the ratios surfrec/Poisson of Chamfer,
    normal consistency and seconds.
``speed``
    Steps per second of the fit loop and the cost of one Newton step (F and ∇ₓF of the
    sample buffer) vs network size (50k points) and vs point count (10k → 1M).

Pin to two cores to emulate the target machine: ``taskset -c 0,1 python ... --threads 2``.

Usage::

    python benchmarks/bench_fit.py accuracy --preset default --threads 2
    python benchmarks/bench_fit.py accuracy --preset fast --cases armadillo fandisk --scans
    python benchmarks/bench_fit.py accuracy --preset default --no-poisson --save-meshes out/m  # fit only
    python benchmarks/bench_fit.py accuracy --score-meshes out/m                               # score later
    python benchmarks/bench_fit.py speed --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
log = logging.getLogger("bench_fit")

BENCH_CASES = ("armadillo", "spot_noisy", "fandisk", "abc00994122", "bunny_sparse")


def _cases(args) -> list[tuple[str, Path, Path]]:
    data = Path(args.data)
    names = args.cases or [c for c in BENCH_CASES if (data / f"{c}.xyz").exists()]
    out = [(c, data / f"{c}.xyz", data / f"{c}.gt.ply") for c in names]
    if args.scans:
        scans = Path(args.scans_dir)
        out.append(("abc00994122_simscan", scans / "abc00994122_simscan.xyz", scans / "abc00994122_gt.ply"))
        out.append(("example", REPO / "data" / "example.xyz", REPO / "data" / "example.gt.ply"))
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _score(mesh, gt: Path) -> dict:
    from surfrec.evaluation.metrics import evaluate

    e = evaluate(mesh, str(gt), n_samples=100_000)
    return {"cd": 1000 * e["chamfer_l1"], "nc": e["normal_consistency"], "hausdorff": e["hausdorff"],
            "fscore": e.get("fscore@0.005") or next((v for k, v in e.items() if k.startswith("fscore")), None)}


def accuracy(args) -> list[dict]:
    import torch
    import trimesh

    from surfrec.run import fit
    from surfrec.io import load_points
    from surfrec.run import extract_mesh

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name, scan, gt in _cases(args):
        row: dict = {"case": name}
        pc = load_points(str(scan))
        mesh_file = Path(args.score_meshes or args.save_meshes or ".") / f"{name}.{args.preset}.ply"
        if args.score_meshes:
            mesh = trimesh.load(mesh_file, process=False)
            meta = json.loads(mesh_file.with_suffix(".json").read_text())
            row.update(meta)
        else:
            t0 = time.perf_counter()
            res = fit(pc.points, preset=args.preset, device=args.device, threads=args.threads)
            t1 = time.perf_counter()
            mesh = extract_mesh(res, resolution=256, device=args.device)
            t2 = time.perf_counter()
            row.update({"fit_s": t1 - t0, "mesh_s": t2 - t1, "seconds": t2 - t0, "steps": res.steps,
                        "steps_per_s": res.steps / max(res.seconds, 1e-9), "peak_mb": _peak_rss_mb()})
            if args.save_meshes:
                mesh_file.parent.mkdir(parents=True, exist_ok=True)
                mesh.export(mesh_file)
                mesh_file.with_suffix(".json").write_text(json.dumps(row))
        if not args.no_score:
            row.update({k: v for k, v in _score(mesh, gt).items()})
        if not args.no_poisson:
            from surfrec.evaluation.baselines import poisson

            t0 = time.perf_counter()
            pm = poisson(pc.points)
            row["poisson_s"] = time.perf_counter() - t0
            ps = _score(pm, gt)
            row.update({"poisson_cd": ps["cd"], "poisson_nc": ps["nc"], "poisson_hausdorff": ps["hausdorff"]})
        rows.append(row)
        log.info("%s", json.dumps(row))
    return rows


def _fmt(v, d=3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"


def accuracy_table(rows: list[dict], preset: str) -> str:
    head = (f"| case ({preset}) | steps | fit+mesh s | CD×1000 | NC | Hausdorff | Poisson CD | Poisson NC | "
            "Poisson s | CD ratio | NC ratio | time ratio |\n|" + "---|" * 12)
    lines = [head]
    for r in rows:
        cr = r["cd"] / r["poisson_cd"] if "cd" in r and "poisson_cd" in r else None
        nr = r["nc"] / r["poisson_nc"] if "nc" in r and "poisson_nc" in r else None
        tr = r["seconds"] / r["poisson_s"] if "seconds" in r and "poisson_s" in r else None
        lines.append(f"| {r['case']} | {r.get('steps', '–')} | {_fmt(r.get('seconds'), 1)} | {_fmt(r.get('cd'))} | "
                     f"{_fmt(r.get('nc'))} | {_fmt(r.get('hausdorff'))} | {_fmt(r.get('poisson_cd'))} | "
                     f"{_fmt(r.get('poisson_nc'))} | {_fmt(r.get('poisson_s'), 1)} | {_fmt(cr, 2)} | {_fmt(nr, 3)} | "
                     f"{_fmt(tr, 2)} |")
    scored = [r for r in rows if "cd" in r and "poisson_cd" in r]
    if scored:
        m = lambda k: float(np.mean([r[k] for r in scored]))  # noqa: E731
        lines.append(f"| **mean** | | | {_fmt(m('cd'))} | {_fmt(m('nc'))} | | {_fmt(m('poisson_cd'))} | "
                     f"{_fmt(m('poisson_nc'))} | | {_fmt(m('cd') / m('poisson_cd'), 2)} | "
                     f"{_fmt(m('nc') / m('poisson_nc'), 3)} | |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ speed
def _shape_points(n: int, seed: int = 0) -> np.ndarray:
    """n points on a bumpy sphere (a stand-in scan of any size)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    r = 1.0 + 0.1 * np.sin(6 * d[:, 0]) * np.sin(6 * d[:, 1]) * np.sin(6 * d[:, 2])
    return d * r[:, None]


def speed(args) -> list[dict]:
    import torch

    from surfrec.run import fit
    from surfrec.settings import get_config
    from surfrec.settings import ModelConfig
    from surfrec.field.model import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = "cuda" if args.device == "cuda" else "cpu"
    base = get_config(args.preset)
    nets = {
        "mlp 2x64": ModelConfig(hidden_dim=64, n_hidden_layers=2),
        "mlp 3x64": ModelConfig(hidden_dim=64, n_hidden_layers=3),
        "mlp 4x128": ModelConfig(hidden_dim=128, n_hidden_layers=4),
        "mlp 4x256": ModelConfig(hidden_dim=256, n_hidden_layers=4),
        "grid 16-128 + 2x64": ModelConfig(encoding="grid", hidden_dim=64, n_hidden_layers=2),
        f"preset {args.preset}": base.model,
    }
    rows = []
    pts50k = _shape_points(50_000)
    for name, mcfg in nets.items():
        model = build_model(mcfg).to(dev)
        x = torch.rand(base.n_samples, 3, device=dev) * 1.6 - 0.8
        for _ in range(3):
            model.value_and_grad(x)
        reps = 20
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            model.value_and_grad(x)
        if dev == "cuda":
            torch.cuda.synchronize()
        newton_ms = (time.perf_counter() - t) / reps * 1e3
        res = fit(pts50k, config=base, model=mcfg, iterations=10**6, time_budget=args.seconds, device=dev,
                  threads=args.threads)
        rows.append({"table": "network", "what": name, "points": 50_000, "steps_per_s": res.steps / res.seconds,
                     "newton_ms": newton_ms, "n_samples": base.n_samples})
        log.info("%s", json.dumps(rows[-1]))
    for n in (10_000, 100_000, 1_000_000):
        pts = _shape_points(n)
        t = time.perf_counter()
        res = fit(pts, config=base, iterations=10**6, time_budget=args.seconds, device=dev, threads=args.threads)
        total = time.perf_counter() - t
        rows.append({"table": "points", "what": f"preset {args.preset}", "points": n,
                     "steps_per_s": res.steps / res.seconds, "setup_s": total - res.seconds})
        log.info("%s", json.dumps(rows[-1]))
    return rows


def speed_table(rows: list[dict]) -> str:
    a = ["| network (50k points) | steps/s | Newton step on the buffer (ms) |", "|---|---|---|"]
    a += [f"| {r['what']} | {r['steps_per_s']:.1f} | {r['newton_ms']:.1f} ({r['n_samples']} samples) |"
          for r in rows if r["table"] == "network"]
    b = ["| points | steps/s | setup s (KD-tree, σ) |", "|---|---|---|"]
    b += [f"| {r['points']:,} | {r['steps_per_s']:.1f} | {r['setup_s']:.1f} |" for r in rows if r["table"] == "points"]
    return "\n".join(a) + "\n\n" + "\n".join(b)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="part", required=True)
    for name in ("accuracy", "speed"):
        s = sub.add_parser(name)
        s.add_argument("--preset", default="default")
        s.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default)")
        s.add_argument("--device", default="cpu")
        s.add_argument("--json", help="also write the rows here")
    a = sub.choices["accuracy"]
    a.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "bench"))
    a.add_argument("--cases", nargs="*")
    a.add_argument("--scans", action="store_true", help="add abc00994122_simscan and data/example")
    a.add_argument("--scans-dir", default=str(REPO.parent / "shared" / "data" / "scans"))
    a.add_argument("--no-poisson", action="store_true")
    a.add_argument("--no-score", action="store_true", help="fit and mesh only (e.g. where open3d is missing)")
    a.add_argument("--save-meshes", help="write each mesh (PLY) and its timings here")
    a.add_argument("--score-meshes", help="score meshes saved by --save-meshes instead of fitting")
    sub.choices["speed"].add_argument("--seconds", type=float, default=10.0, help="fit time per row")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.part == "accuracy":
        rows = accuracy(args)
        print(accuracy_table(rows, args.preset))
    else:
        rows = speed(args)
        print(speed_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
