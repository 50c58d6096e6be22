"""Newton-step cost: autograd vs the closed-form value_and_grad before/after the fused
softplus+slope, and whole fits with each (interleaved, CPU seconds).

Usage::

    python benchmarks/bench_step_speed.py [--threads 1] [--steps 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch


def vg_unfused(model, x):
    """value_and_grad as it was before the fused activation (separate softplus and sigmoid)."""
    with torch.no_grad():
        s2 = 1.0 / math.sqrt(2.0)
        h, slopes = x, []
        for i, lin in enumerate(model.layers):
            if i in model.config.skip_layers:
                h = torch.cat([h, x], dim=-1) * s2
            z = lin(h)
            slopes.append(model._act_grad(z))
            h = model._act(z)
        f = model.out(h).squeeze(-1)
        v = model.out.weight.expand(x.shape[0], -1)
        g_skip = torch.zeros_like(x)
        for i in range(len(model.layers) - 1, -1, -1):
            v = torch.matmul(v * slopes[i], model.layers[i].weight)
            if i in model.config.skip_layers:
                g_skip = g_skip + v[:, -3:] * s2
                v = v[:, :-3] * s2
        return f, v + g_skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scan", default="/work/shared/data/bench/armadillo.xyz")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import surfrec
    from surfrec.settings import FitConfig
    from surfrec.io import load_points
    from surfrec.field.model import ImplicitMLP

    m = ImplicitMLP(FitConfig().model)
    x = torch.rand(1024, 3) * 1.6 - 0.8
    fns = {"autograd": lambda: m.gradient(x), "closed form (unfused)": lambda: vg_unfused(m, x),
           "closed form (fused)": lambda: m.value_and_grad(x)}
    ts = {k: [] for k in fns}
    for _ in range(300):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    print(f"F and grad F of 1024 points, default 3x64 MLP, {args.threads} thread(s):")
    base = statistics.median(ts["autograd"])
    for k, v in ts.items():
        print(f"  {k:24s} {1e6 * statistics.median(v):8.1f} us  ({base / statistics.median(v):.2f}x autograd)")

    pc = load_points(args.scan)
    fused = ImplicitMLP.value_and_grad
    variants = {"unfused": vg_unfused, "fused": fused}
    cpu = {k: [] for k in variants}
    surfrec.fit(pc, iterations=20, time_budget=0, threads=args.threads)
    for _ in range(args.rounds):
        for k, fn in variants.items():
            ImplicitMLP.value_and_grad = fn
            c = time.process_time()
            surfrec.fit(pc, iterations=args.steps, time_budget=0, threads=args.threads)
            cpu[k].append(time.process_time() - c)
    ImplicitMLP.value_and_grad = fused
    print(f"whole fit, {args.steps} steps, CPU s (median of {args.rounds}, interleaved):")
    for k, v in cpu.items():
        print(f"  {k:10s} {statistics.median(v):6.2f} s  ({args.steps / statistics.median(v):.0f} steps per CPU s)")
    print(f"  speed-up {statistics.median(cpu['unfused']) / statistics.median(cpu['fused']):.3f}x")


if __name__ == "__main__":
    main()
