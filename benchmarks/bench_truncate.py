"""Mesh quality at intermediate steps of one default fit, and ground-truth-free signals there.

Usage::

    python benchmarks/bench_truncate.py CASE [--seed 0] [--steps 1000 1500 2000 2500 3000 4000 5000]
                                        [--set KEY=VALUE ...] [--out FILE.json]

One fit of the preset's full length (cosine learning rate over all its steps); at each
listed step the weights are copied, and after the fit each copy is meshed (resolution
256, the default pipeline) and scored against the case's ground truth (CD×1000, NC,
Hausdorff×1000). So a row says what stopping at that step *without* finishing the
learning-rate decay would give. Every 250 steps it also records signals a stopping rule
could use without the truth: the share of the side term's points with F on the wrong side
at x ± δn (``side_viol``), mean and 90th percentile of |F − c| on the scan, the surface
term, and the share of a 65³ grid whose sign of F − c changed since the last record.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

import bench_steps

CHECKS = [1000, 1500, 2000, 2500, 3000, 4000, 5000]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", nargs="+", type=int, default=CHECKS)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}

    import surfrec
    from surfrec.field import train as fitting

    bench_steps._patch_open3d()
    seen: dict = {}
    train = fitting.train

    def keep_data(cfg, data, st, **kw):  # the hook sees the state only; the signals need the data
        seen["data"], seen["cfg"] = data, cfg
        return train(cfg, data, st, **kw)

    fitting.train = keep_data
    axis = torch.linspace(-1, 1, 65)
    snaps, signals, last = {}, {}, {}

    def hook(st) -> None:
        if st.step % 250 and st.step not in args.steps:
            return
        data, cfg = seen["data"], seen["cfg"]
        lvl, m = float(cfg.level), st.model
        sig = {}
        with torch.no_grad():
            s = data.sides
            if s is not None:
                fp = m.value(s.points + s.delta[:, None] * s.normals)
                fm = m.value(s.points - s.delta[:, None] * s.normals)
                sig["side_viol"] = float(((fp < lvl) | (fm > lvl)).float().mean())
            fx = (m.value(data.x_all) - lvl).abs()
            sig["data_mean"], sig["data_p90"] = float(fx.mean()), float(fx.quantile(0.9))
            sig["surface"] = float(st.terms.get("surface", torch.tensor(float("nan"))))
            grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) * cfg.box
            sign = m.value(grid) > lvl
        if "sign" in last:
            sig["grid_flip"] = float((sign != last["sign"]).float().mean())
        last["sign"] = sign
        signals[st.step] = sig
        if st.step in args.steps:
            snaps[st.step] = copy.deepcopy(m.state_dict())

    scan, gt = bench_steps.BENCH / f"{args.case}.xyz", bench_steps.BENCH / f"{args.case}.gt.ply"
    t0 = time.perf_counter()
    res = surfrec.fit(str(scan), seed=args.seed, on_step=hook, time_budget=0, **overrides)
    fit_s = time.perf_counter() - t0
    snaps[res.steps] = copy.deepcopy(res.model.state_dict())
    rows = {}
    for step, state in sorted(snaps.items()):
        res.model.load_state_dict(state)
        ev = surfrec.evaluate(surfrec.extract_mesh(res, resolution=256), str(gt))
        rows[step] = {"cd": round(1000 * ev["chamfer_l1"], 4), "nc": round(ev["normal_consistency"], 4),
                      "haus": round(1000 * ev["hausdorff"], 2)}
        print(args.case, args.seed, step, rows[step], signals.get(step), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"case": args.case, "seed": args.seed, "overrides": overrides,
                                        "fit_s": fit_s, "rows": rows, "signals": signals}))


if __name__ == "__main__":
    main()
