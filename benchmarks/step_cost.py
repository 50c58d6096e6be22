"""The cost of a training step: the fused engine (surfrec.field.engine) against the torch
loop on the default network, then the cost of its parts, tool against tool.

**The step** (section ``step``), interleaved round by round (medians of many repeats):

(a) forward + θ-backward over 2816 points (F, then the gradient of Σ wᵢFᵢ),
(b) value_and_grad over 1280 points (F and ∇ₓF, no θ-gradient),
(c) one Adam step over all parameters,

for torch autograd (1 intra-op thread; ``--torch-threads`` adds more) and the engine at 1
and 2 threads, then the same again while another process burns one core (``--no-busy``
skips it). GFLOP/s count the matrix products only: forward ≈ 2·Σ(in·out) per point,
θ-backward ≈ 2× forward, value_and_grad ≈ 2× forward. Before and after, what two threads
of a GIL-free loop get from the host against one ("capacity": virtual cores can share a
physical one with other work).

**The loop** (section ``loop``): one whole default fit of a bench scan (``--scan``, default
the 50k-point armadillo; ``--iters``, default the preset's 6000 steps) with every part of
the fused step timed inside it: the random draws, the slope term's points, the refresh +
Newton projection (one value_and_grad pass over the samples and the slope points), the
slope pairs, the batch, the forward pass (the grid search of the samples' nearest points
runs in it), the KD-tree's share of that search (queries far from the data), the targets,
the loss terms and their dL/dF, the θ-backward and Adam; ms per step and share, and the
step's GFLOP/s against its matrix-product FLOPs.

**The parts** (section ``parts``), one thread, interleaved:

1. softplus + sigmoid over a (470, 64) layer (one chunk of the fit's 2816-point batch) and
   over (2816, 64): numpy ufuncs, torch ops, numba calling libm's exp/log1p, and the
   engine's hand-written kernel; ns per value, both outputs.
2. The three matrix-product shapes of a chunk (470 points, 64 wide): forward h·Wᵀ,
   backward d·W and the weight gradient dᵀ·h, through SciPy's OpenBLAS called from numba
   (what the engine does), numpy's matmul (its own OpenBLAS) and torch.mm (1 thread).

Usage::

    python benchmarks/step_cost.py [--sections step,loop,parts] [--repeats 100] [--rounds 5]
        [--no-busy] [--width 64 --layers 3] [--torch-threads 2] [--part-repeats 300]

Regenerates RESULTS.md, the cost of a step (the log of the engine's choices:
EXPERIMENTS.md, 2026-12-07, the fused training engine). About a minute at the defaults, more
the first time numba compiles the kernels.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba as nb
import numpy as np
import torch

from surfrec.field.engine import FusedMLP, _OneBlasThread
from surfrec.input.index import GridNearest
from surfrec.field.model import ImplicitMLP
from surfrec.settings import ModelConfig
from surfrec.field.optim import Adam

N_TRAIN, N_VAG = 2816, 1280
SECTIONS = ("step", "loop", "parts")
f32 = np.float32


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


def step_section(args) -> None:
    """The step: torch autograd against the engine on 1 and 2 threads, quiet, then with a busy core."""
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
    print(f"## The step: network {args.width}x{args.layers}; {args.rounds} rounds x {args.repeats} repeats, "
          "medians\n")
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


# ------------------------------------------------------------------ the parts
@nb.njit(nogil=True, error_model="numpy", fastmath={"contract"})
def act_libm(z, beta, h, s):
    """softplus and sigmoid with numba's np.exp / np.log1p (libm calls, no SVML)."""
    zf, hf, sf = z.reshape(z.size), h.reshape(h.size), s.reshape(s.size)
    for k in range(zf.size):
        t = zf[k] * beta
        e = np.exp(-abs(t))
        hf[k] = (max(t, f32(0.0)) + np.log1p(e)) / beta
        sf[k] = f32(1.0) / (f32(1.0) + e) if t >= 0 else e / (f32(1.0) + e)


def act_numpy(z, beta, h, s, e):
    """The same with numpy ufuncs into preallocated buffers (10 passes)."""
    np.multiply(z, beta, out=s)           # t
    np.abs(s, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)                      # e = exp(-|t|)
    np.log1p(e, out=h)
    np.maximum(s, 0, out=s)               # (t no longer needed after the max and the sign)
    np.add(s, h, out=h)
    np.divide(h, beta, out=h)
    np.add(e, 1, out=s)
    np.divide(1, s, out=s)                # sigmoid(|t|) (the sign flip left out: a lower bound)


def act_torch(z, beta):
    t = z * beta
    return torch.nn.functional.softplus(z, beta=beta), torch.sigmoid(t)


def timeit(cases: dict, repeats: int) -> dict:
    """{case: median seconds}, the cases interleaved call by call after one warm-up call each."""
    for fn in cases.values():
        fn()
    out = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            t = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in out.items()}


def parts_section(args) -> None:
    """The activations and the matrix products of one chunk, tool against tool (one thread)."""
    from numba.extending import get_cython_function_address

    from surfrec.field import _kernels as K

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    beta = f32(100.0)
    print(f"## The parts: softplus + sigmoid (ns per value, both outputs; {args.part_repeats} repeats, "
          "medians)\n")
    print("| layer | numpy ufuncs | torch softplus + sigmoid | numba + libm exp/log1p | fused kernel |")
    print("|---|---|---|---|---|")
    for m in (470, 2816):
        z = (rng.standard_normal((m, 64)) * 0.2).astype(f32)
        h, s, e = np.empty_like(z), np.empty_like(z), np.empty_like(z)
        zt = torch.from_numpy(z)
        ninf = f32(-np.inf)
        med = timeit({"numpy": lambda: act_numpy(z, beta, h, s, e), "torch": lambda: act_torch(zt, 100.0),
                      "libm": lambda: act_libm(z, beta, h, s),
                      "fused": lambda: K.activate(z, beta, ninf, True, h, s)}, args.part_repeats)
        print(f"| ({m}, 64) | " + " | ".join(f"{med[k] * 1e9 / z.size:.2f}" for k in
                                            ("numpy", "torch", "libm", "fused")) + " |")
    fn = int(get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))
    m, n = 470, 64
    a, d = rng.random((m, n)).astype(f32), rng.random((m, n)).astype(f32)
    w = rng.random((n, n)).astype(f32)
    c, g = np.empty((m, n), f32), np.empty((n, n), f32)
    ta, td, tw, tc, tg = (torch.from_numpy(v) for v in (a, d, w, c, g))
    flops = 2 * m * n * n
    print(f"\n## The parts: matrix products of one chunk ({m} points, width {n}): µs (GFLOP/s)\n")
    print("| product | SciPy OpenBLAS from numba | numpy matmul | torch.mm |")
    print("|---|---|---|---|")
    with _OneBlasThread():
        rows = {
            "h·Wᵀ (forward)": (lambda: K._mm_abt(a, w, c, f32(0.0), fn), lambda: np.matmul(a, w.T, out=c),
                               lambda: torch.mm(ta, tw.t(), out=tc)),
            "d·W (backward)": (lambda: K._mm_ab(d, w, c, fn), lambda: np.matmul(d, w, out=c),
                               lambda: torch.mm(td, tw, out=tc)),
            "dᵀ·h (weight gradient)": (lambda: K._mm_atb(d, a, g, fn), lambda: np.matmul(d.T, a, out=g),
                                       lambda: torch.mm(td.t(), ta, out=tg)),
        }
        for name, fns in rows.items():
            med = timeit(dict(zip(("scipy", "numpy", "torch"), fns)), args.part_repeats)
            print(f"| {name} | " + " | ".join(f"{med[k] * 1e6:.1f} ({flops / med[k] / 1e9:.0f})"
                                              for k in ("scipy", "numpy", "torch")) + " |")
    print()


def loop_section(args) -> None:
    """A whole default fit with the fused step's parts timed inside it."""
    from collections import defaultdict
    from pathlib import Path

    import surfrec
    from surfrec.field import step as fstep
    from surfrec.field import train

    spent: dict[str, float] = defaultdict(float)
    inside = [False]  # only the calls made inside a step count (not the set-up's, nor the records')

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*a, **k):
            outer = label == "step"
            if not (inside[0] or outer):
                return original(*a, **k)
            inside[0] = True
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                spent[label] += time.perf_counter() - t0
                if outer:
                    inside[0] = False

        setattr(owner, name, wrapper)

    for name, label in (("_draw", "random draws"), ("_project", "refresh + Newton (and the slope points' ∇F)"),
                        ("_slope_points", "slope points"), ("_slope", "slope pairs"),
                        ("_batch", "batch"), ("_targets", "targets"), ("step", "step")):
        timed(fstep.FusedLoop, name, label)
    for name, label in (("forward_train", "forward (and the nearest points' grid search)"),
                        ("backward", "theta-backward"), ("adam_step", "Adam")):
        timed(FusedMLP, name, label)
    timed(fstep, "loss_weights", "loss terms, dL/dF")
    tasks = GridNearest.tasks

    def tasks_timed(*a, **k):
        inside_step = inside[0]
        work, finish = tasks(*a, **k)

        def finished(*fa):
            t0 = time.perf_counter()
            try:
                return finish(*fa)
            finally:
                if inside_step:
                    spent["nearest points: the KD-tree's share"] += time.perf_counter() - t0

        return work, finished

    GridNearest.tasks = tasks_timed
    start = train._start_lookup

    def start_timed(*a, **k):
        wait = start(*a, **k)

        def waited():
            t0 = time.perf_counter()
            try:
                return wait()
            finally:
                spent["nearest-point wait"] += time.perf_counter() - t0

        return waited

    train._start_lookup = start_timed
    scan = Path(args.scan)
    t0 = time.perf_counter()
    result = surfrec.fit(str(scan), **({"iterations": args.iters} if args.iters else {}))
    wall = time.perf_counter() - t0
    steps = result.steps
    cfg = result.config.fit
    flops = forward_flops(cfg.model)
    n_vag = cfg.n_samples * cfg.newton_steps + (cfg.slope_points if cfg.slope_weight > 0 else 0)
    n_train = cfg.n_samples + cfg.batch_points + 2 * (cfg.slope_points if cfg.slope_weight > 0 else 0) + (
        cfg.side_points if result.closed_side else 0)
    step_flops = flops * (2 * n_vag + 3 * n_train) + 0.0
    per = {k: 1e3 * v / steps for k, v in spent.items()}
    total = per.pop("step")
    print(f"### the loop: {scan.name}, {steps} steps, fit {result.seconds:.1f} s (call {wall:.1f} s), "
          f"engine {cfg.engine}, threads {cfg.threads or 'all'}\n")
    print("| part | ms / step | share |\n|---|---:|---:|")
    for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.3f} | {v / total:.0%} |")
    other = total - sum(per.values())
    print(f"| the rest (loop, lr schedule, records) | {other:.3f} | {other / total:.0%} |")
    print(f"| **step** | **{total:.3f}** | |")
    print(f"\nmatrix-product FLOPs per step ≈ {step_flops / 1e6:.0f} M ({n_vag} points value_and_grad, "
          f"{n_train} forward + θ-backward): {step_flops / (total * 1e-3) / 1e9:.1f} GFLOP/s over the whole step\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1])
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated, from {', '.join(SECTIONS)} (default: both)")
    ap.add_argument("--repeats", type=int, default=100, help="step: calls per case per round")
    ap.add_argument("--rounds", type=int, default=5, help="step: rounds, the variants interleaved in each")
    ap.add_argument("--no-busy", action="store_true", help="step: skip the runs with a busy core")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="step: also time torch with this many threads")
    ap.add_argument("--width", type=int, default=64, help="step: hidden width (the fit's default: 64)")
    ap.add_argument("--layers", type=int, default=3, help="step: hidden layers (the fit's default: 3)")
    ap.add_argument("--part-repeats", type=int, default=300, help="parts: calls per case")
    ap.add_argument("--scan", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "bench" / "armadillo.xyz"),
                    help="loop: the scan fitted (default: ../shared/data/bench/armadillo.xyz)")
    ap.add_argument("--iters", type=int, default=None, help="loop: fit steps (default: the preset's)")
    args = ap.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, torch {torch.__version__}, numpy {np.__version__}, numba {nb.__version__}\n")
    if "step" in sections:
        step_section(args)
    if "loop" in sections:
        loop_section(args)
    if "parts" in sections:
        parts_section(args)


if __name__ == "__main__":
    main()
