"""Speed of the fit loop: steps per second and the cost of one Newton step (F and ∇ₓF of the
sample buffer), against the network's size (50k points) and against the point count
(10k, 100k, 1M points).

Each row is one fit of a stand-in scan (a bumpy sphere) that runs for ``--seconds`` of wall
clock (``time_budget``), so steps/s includes the short run's warm-up; the point-count rows
also give the set-up time before the loop (spatial index, seeds' σ, orientation).

Pin to two cores to emulate the target machine::

    taskset -c 0,1 python benchmarks/fit_speed.py --threads 2 --seconds 5
    python benchmarks/fit_speed.py --device cuda --seconds 3
    python benchmarks/fit_speed.py --seconds 1 --points 10000      # a quick check

Prints the two Markdown tables of benchmarks/RESULTS.md ("Speed of the fit loop").
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("fit_speed")


def shape_points(n: int, seed: int = 0) -> np.ndarray:
    """n points on a bumpy sphere (a stand-in scan of any size)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    r = 1.0 + 0.1 * np.sin(6 * d[:, 0]) * np.sin(6 * d[:, 1]) * np.sin(6 * d[:, 2])
    return d * r[:, None]


def _newton_ms(model, n: int, dev: str, reps: int = 20) -> float:
    """Milliseconds of one closed-form F and ∇ₓF pass over ``n`` points."""
    import torch

    x = torch.rand(n, 3, device=dev) * 1.6 - 0.8
    for _ in range(3):
        model.value_and_grad(x)
    if dev == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        model.value_and_grad(x)
    if dev == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps * 1e3


def speed(args) -> list[dict]:
    import torch

    from surfrec.field.model import build_model
    from surfrec.run import fit
    from surfrec.settings import ModelConfig, get_config

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
        f"preset {args.preset}": base.fit.model,
    }
    # time_budget ends each fit; the step count is only an upper bound
    run = dict(iterations=10**6, time_budget=args.seconds, device=dev, threads=args.threads or None)
    rows = []
    if not args.no_networks:
        pts = shape_points(50_000)
        for name, mcfg in nets.items():
            newton_ms = _newton_ms(build_model(mcfg).to(dev), base.fit.n_samples, dev)
            res = fit(pts, config=base, model=mcfg, **run)
            rows.append({"table": "network", "what": name, "points": len(pts),
                         "steps_per_s": res.steps / res.seconds, "newton_ms": newton_ms,
                         "n_samples": base.fit.n_samples})
            log.info("%s", json.dumps(rows[-1]))
    for n in args.points:
        pts = shape_points(n)
        t = time.perf_counter()
        res = fit(pts, config=base, **run)
        total = time.perf_counter() - t
        rows.append({"table": "points", "what": f"preset {args.preset}", "points": n,
                     "steps_per_s": res.steps / res.seconds, "setup_s": total - res.seconds})
        log.info("%s", json.dumps(rows[-1]))
    return rows


def speed_table(rows: list[dict]) -> str:
    a = ["| network (50k points) | steps/s | Newton step on the buffer (ms) |", "|---|---|---|"]
    a += [f"| {r['what']} | {r['steps_per_s']:.1f} | {r['newton_ms']:.1f} ({r['n_samples']} samples) |"
          for r in rows if r["table"] == "network"]
    b = ["| points (synthetic shape) | steps/s | set-up s (KD-tree, σ) |", "|---|---|---|"]
    b += [f"| {r['points']:,} | {r['steps_per_s']:.1f} | {r['setup_s']:.1f} |" for r in rows if r["table"] == "points"]
    return "\n\n".join("\n".join(t) for t in (a, b) if len(t) > 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seconds", type=float, default=10.0, help="fit time per row")
    p.add_argument("--points", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                   help="point counts of the second table")
    p.add_argument("--no-networks", action="store_true", help="skip the network-size table")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = speed(args)
    print(speed_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
