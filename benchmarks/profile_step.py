"""Where a training step's time goes: cProfile of a default-preset fit on one bench scan.

Usage::

    python benchmarks/profile_step.py [SCAN] [--steps 1000] [--threads 2] [--set KEY=VALUE ...]

Prints the cumulative time of the step's parts (Newton value_and_grad, KD-tree queries,
seeds, the batched forward, backward, Adam) per step and as a share of the loop.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

PARTS = {
    # label: (file substring, function name)
    "fit total": ("fitting.py", "fit"),
    "Newton value_and_grad (closed form)": ("model.py", "value_and_grad"),
    "KD-tree nearest (surface targets)": ("fitting.py", "__call__"),
    "seeds (draw_seeds)": ("levelset.py", "draw_seeds"),
    "forward with graph (ImplicitMLP.forward)": ("model.py", "forward"),
    "sample network": ("losses.py", "sample_network"),
    "backward": ("_tensor.py", "backward"),
    "Adam step": ("fitting.py", "step"),
    "deepcopy of good state (every 50 steps)": ("copy.py", "deepcopy"),
    "quantile/median history (every 10 steps)": ("{built-in method torch.quantile}", ""),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scan", nargs="?", default="/work/shared/data/bench/armadillo.xyz")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="FitConfig overrides (JSON values), e.g. batch_points=512")
    args = ap.parse_args()
    OVER = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    import surfrec
    from surfrec.io import load_points

    pc = load_points(args.scan)
    surfrec.fit(pc, iterations=20, time_budget=0, threads=args.threads, **OVER)  # warm-up (imports, allocator)
    prof = cProfile.Profile()
    w0, c0 = time.perf_counter(), time.process_time()
    prof.enable()
    res = surfrec.fit(pc, iterations=args.steps, time_budget=0, threads=args.threads, **OVER)
    prof.disable()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"{res.steps} steps: wall {wall:.2f} s ({res.steps / wall:.1f} steps/s), cpu {cpu:.2f} s")
    st = pstats.Stats(prof)
    total_loop = None
    rows = []
    for (fname, _line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():
        for label, (fsub, fn) in PARTS.items():
            if (fsub in fname and func == fn) or (fn == "" and fsub == func):
                rows.append((label, nc, ct))
    agg: dict[str, list] = {}
    for label, nc, ct in rows:
        a = agg.setdefault(label, [0, 0.0])
        a[0] += nc
        a[1] += ct
    total_loop = agg.get("fit total", [1, wall])[1]
    print(f"{'part':45s} {'calls':>7s} {'ms/step':>8s} {'share':>6s}")
    for label in PARTS:
        if label in agg:
            nc, ct = agg[label]
            print(f"{label:45s} {nc:7d} {1000 * ct / res.steps:8.3f} {100 * ct / total_loop:5.1f}%")
    st.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
