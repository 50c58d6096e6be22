"""The fused engine (surfrec.field.engine) against torch autograd on the default network.

Times, interleaved round by round (medians of many repeats):

(a) forward + θ-backward over 2816 points (F, then the gradient of Σ wᵢFᵢ),
(b) value_and_grad over 1280 points (F and ∇ₓF, no θ-gradient),
(c) one Adam step over all parameters,

for torch (1 intra-op thread; ``--torch-threads`` adds more) and the engine at 1 and 2
threads, then the same again while another process burns one core. GFLOP/s count the
matrix products only: forward ≈ 2·Σ(in·out) per point, θ-backward ≈ 2× forward,
value_and_grad ≈ 2× forward.

Usage::

    python benchmarks/bench_fused_step.py [--repeats 100] [--rounds 5] [--no-busy]
        [--width 64 --layers 3] [--torch-threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from surfrec.field.engine import FusedMLP
from surfrec.field.model import ImplicitMLP
from surfrec.settings import ModelConfig
from surfrec.field.optim import Adam

N_TRAIN, N_VAG = 2816, 1280


def _burn(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    x = 1.0
    while not stop.is_set():
        for _ in range(100_000):
            x = x * 1.0000001 + 1e-9


def parallel_capacity(rounds: int = 5) -> float:
    """Speed-up of a GIL-free arithmetic loop on 2 threads over 1: what the host gives two
    threads right now (virtual cores can share a physical one with other work)."""
    import numba

    @numba.njit(nogil=True)
    def spin(n):
        s = 0.0
        for i in range(n):
            s += (i * 0.5) ** 0.5
        return s

    spin(10)
    pool = ThreadPoolExecutor(2)
    ratios = []
    for _ in range(rounds):
        t = time.perf_counter()
        spin(2_000_000)
        spin(2_000_000)
        one = time.perf_counter() - t
        t = time.perf_counter()
        list(pool.map(spin, [2_000_000, 2_000_000]))
        ratios.append(one / (time.perf_counter() - t))
    pool.shutdown()
    return statistics.median(ratios)


def forward_flops(cfg: ModelConfig) -> int:
    """Multiply-adds ×2 of one forward pass, per point."""
    dims = [3] + [cfg.hidden_dim] * cfg.n_hidden_layers + [1]
    return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def torch_cases(model: ImplicitMLP, x: torch.Tensor, w: torch.Tensor, xv: torch.Tensor) -> dict:
    opt = Adam([{"params": model.mlp_parameters()}], lr=1e-4)

    def train():
        opt.zero_grad()
        (model(x) * w).sum().backward()

    train()
    return {"train": train, "vag": lambda: model.value_and_grad(xv), "adam": opt.step}


def fused_cases(engine: FusedMLP, x: np.ndarray, w: np.ndarray, xv: np.ndarray) -> dict:
    def train():
        engine.forward_train(x)
        engine.backward(w)

    train()
    return {"train": train, "vag": lambda: engine.value_and_grad(xv), "adam": lambda: engine.adam_step(1e-4)}


def measure(variants: dict, repeats: int, rounds: int, torch_threads: dict) -> dict:
    """{variant: {case: [seconds...]}}, variants and cases interleaved within each round."""
    out = {v: {c: [] for c in cases} for v, cases in variants.items()}
    for _ in range(rounds):
        for v, cases in variants.items():
            torch.set_num_threads(torch_threads.get(v, 1))
            for c, fn in cases.items():
                for _ in range(repeats):
                    t = time.perf_counter()
                    fn()
                    out[v][c].append(time.perf_counter() - t)
    torch.set_num_threads(1)
    return out


def report(title: str, times: dict, cfg: ModelConfig) -> list[str]:
    ff = forward_flops(cfg)
    flops = {"train": 3 * ff * N_TRAIN, "vag": 2 * ff * N_VAG, "adam": 0}
    lines = [f"### {title}", "", "| variant | (a) fwd+bwd 2816 | (b) value_and_grad 1280 | (c) Adam | a+b+c |",
             "|---|---|---|---|---|"]
    for v, cases in times.items():
        med = {c: statistics.median(ts) * 1e3 for c, ts in cases.items()}
        cells = []
        for c in ("train", "vag", "adam"):
            gf = f" ({flops[c] / med[c] / 1e6:.0f} GF/s)" if flops[c] else ""
            cells.append(f"{med[c]:.3f} ms{gf}")
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {sum(med.values()):.3f} ms |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=100, help="calls per case per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-busy", action="store_true", help="skip the runs with a busy core")
    ap.add_argument("--torch-threads", type=int, default=0, help="also time torch with this many threads")
    ap.add_argument("--width", type=int, default=64, help="hidden width (the fit's default: 64)")
    ap.add_argument("--layers", type=int, default=3, help="hidden layers (the fit's default: 3)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_dim=args.width, n_hidden_layers=args.layers)
    model = ImplicitMLP(cfg)
    x = torch.rand(N_TRAIN, 3) * 2 - 1
    w = torch.randn(N_TRAIN) / N_TRAIN
    xv = torch.rand(N_VAG, 3) * 2 - 1
    e1, e2 = FusedMLP(model, threads=1), FusedMLP(model, threads=2)
    xn, wn, xvn = x.numpy(), w.numpy(), xv.numpy()
    variants = {"torch autograd, 1 thread": torch_cases(model, x, w, xv),
                "fused, 1 thread": fused_cases(e1, xn, wn, xvn),
                "fused, 2 threads": fused_cases(e2, xn, wn, xvn)}
    tthreads = {}
    if args.torch_threads > 1:
        name = f"torch autograd, {args.torch_threads} threads"
        variants[name] = torch_cases(ImplicitMLP(cfg), x, w, xv)
        tthreads[name] = args.torch_threads
    cores = len(os.sched_getaffinity(0))
    print(f"network {args.width}x{args.layers}; {cores} cores, torch {torch.__version__}, numpy {np.__version__}; "
          f"{args.rounds} rounds x {args.repeats} repeats, medians\n")
    print(f"two threads of a GIL-free loop run {parallel_capacity():.2f}x one (before)\n")
    print("\n".join(report("quiet", measure(variants, args.repeats, args.rounds, tthreads), cfg)))
    print(f"two threads of a GIL-free loop run {parallel_capacity():.2f}x one (after)\n")
    if not args.no_busy:
        stop = mp.Event()
        burner = mp.Process(target=_burn, args=(stop,), daemon=True)
        burner.start()
        try:
            time.sleep(0.5)
            times = measure(variants, args.repeats, args.rounds, tthreads)
        finally:
            stop.set()
            burner.join()
        print("\n".join(report("one core kept busy by another process", times, cfg)))
    e1.close()
    e2.close()


if __name__ == "__main__":
    main()
