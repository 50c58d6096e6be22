"""The building blocks behind surfrec.field.engine, measured one by one (one thread, interleaved).

1. softplus + sigmoid over a (470, 64) layer (one chunk of the fit's 2816-point batch) and
   over (2816, 64): numpy ufuncs, torch ops, numba calling libm's exp/log1p, and the
   engine's hand-written kernel (one exponential, one division, a short series).
2. The three matrix-product shapes of a chunk (470 points, 64 wide): forward h·Wᵀ,
   backward d·W and the weight gradient dᵀ·h, through SciPy's OpenBLAS called from numba
   (what the engine does), numpy's matmul (its own OpenBLAS) and torch.mm (1 thread).

Usage::

    python benchmarks/bench_fused_parts.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba as nb
import numpy as np
import torch

from surfrec import _fused_kernels as K
from surfrec.field.engine import _OneBlasThread

f32 = np.float32


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
    for fn in cases.values():
        fn()
    out = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            t = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    beta = f32(100.0)
    print("## softplus + sigmoid (ns per value, both outputs)\n")
    print("| layer | numpy ufuncs | torch softplus + sigmoid | numba + libm exp/log1p | fused kernel |")
    print("|---|---|---|---|---|")
    for m in (470, 2816):
        z = (rng.standard_normal((m, 64)) * 0.2).astype(f32)
        h, s, e = np.empty_like(z), np.empty_like(z), np.empty_like(z)
        zt = torch.from_numpy(z)
        ninf = f32(-np.inf)
        med = timeit({"numpy": lambda: act_numpy(z, beta, h, s, e), "torch": lambda: act_torch(zt, 100.0),
                      "libm": lambda: act_libm(z, beta, h, s),
                      "fused": lambda: K.activate(z, beta, ninf, True, h, s)}, args.repeats)
        print(f"| ({m}, 64) | " + " | ".join(f"{med[k] * 1e9 / z.size:.2f}" for k in
                                            ("numpy", "torch", "libm", "fused")) + " |")
    from numba.extending import get_cython_function_address

    fn = int(get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))
    m, n = 470, 64
    a, d = rng.random((m, n)).astype(f32), rng.random((m, n)).astype(f32)
    w = rng.random((n, n)).astype(f32)
    c, g = np.empty((m, n), f32), np.empty((n, n), f32)
    ta, td, tw, tc, tg = (torch.from_numpy(v) for v in (a, d, w, c, g))
    flops = 2 * m * n * n
    print(f"\n## matrix products of one chunk ({m} points, width {n}): µs (GFLOP/s)\n")
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
            med = timeit(dict(zip(("scipy", "numpy", "torch"), fns)), args.repeats)
            print(f"| {name} | " + " | ".join(f"{med[k] * 1e6:.1f} ({flops / med[k] / 1e9:.0f})"
                                              for k in ("scipy", "numpy", "torch")) + " |")


if __name__ == "__main__":
    main()
