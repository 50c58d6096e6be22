"""Each kernel of surfrec.field.engine timed alone on one chunk (one thread): where a pass's time goes.

Usage::

    python benchmarks/profile_fused_chunk.py [--points 470] [--width 64] [--layers 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba.extending import get_cython_function_address

from surfrec import _fused_kernels as K
from surfrec.field.engine import _OneBlasThread

f32 = np.float32


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=470, help="chunk size (2816 points make 6 of 469-470)")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    m, H, L = args.points, args.width, args.layers
    fn = int(get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((m, H)) * 0.05).astype(f32)
    h, s = np.empty_like(z), np.empty_like(z)
    x = rng.random((m, 3)).astype(f32)
    W = (rng.standard_normal((H, H)) * 0.2).astype(f32)
    w0, w3 = rng.random((H, 3)).astype(f32), np.empty((3, H), f32)
    P = 4 * H + (L - 1) * (H * H + H) + H + 1
    theta = (rng.standard_normal(P) * 0.2).astype(f32)
    hs, ss = np.empty((L, m, H), f32), np.empty((L, m, H), f32)
    f, g, grad = np.empty(m, f32), np.empty((m, 3), f32), np.empty(P, f32)
    d0, d1, w = np.empty((m, H), f32), np.empty((m, H), f32), rng.random(m).astype(f32)
    ninf = f32(-np.inf)
    cases = {
        "activation + slope": lambda: K.activate(z, f32(100), ninf, True, h, s),
        "activation alone": lambda: K.activate(z, f32(100), ninf, False, h, s),
        "bias fill": lambda: K._fill_rows(z, W[0]),
        "first layer": lambda: K._first_layer(x, w0, W[0], z, w3),
        "h·Wᵀ (forward)": lambda: K._mm_abt(h, W, z, f32(1), fn),
        "d·W (backward)": lambda: K._mm_ab(h, W, z, fn),
        "dᵀ·h (weight gradient)": lambda: K._mm_atb(h, s, W, fn),
        "output dot": lambda: K._rowdot(h, W[0], f32(1), f),
        "d·W₀ (∇ₓ)": lambda: K._mm_ab(h, w0, g, fn),
        "slope product": lambda: K._mul_slope(h, s),
        "slope product + bias sums": lambda: K._mul_slope_colsum(h, s, W[1]),
        "first-layer gradient": lambda: K._grad_first(h, x, w0, w3),
        "FORWARD chunk": lambda: K.forward_chunk(x, theta, H, L, f32(100), ninf, True, hs, ss, 0, d0, f, fn, w3),
        "BACKWARD chunk": lambda: K.backward_chunk(x, w, theta, H, L, hs, ss, 0, d0, d1, grad, fn, w3),
        "∇ₓ SWEEP chunk": lambda: K.reverse_chunk(theta, H, L, ss, d0, d1, g, fn),
    }
    with _OneBlasThread():
        for fn_ in cases.values():
            fn_()
        res = {k: [] for k in cases}
        for _ in range(args.repeats):
            for k, fn_ in cases.items():
                t = time.perf_counter()
                for _ in range(4):
                    fn_()
                res[k].append((time.perf_counter() - t) / 4)
    print(f"chunk of {m} points, width {H}, {L} hidden layers (µs, medians)\n")
    for k, v in res.items():
        print(f"{k:28s} {statistics.median(v) * 1e6:8.1f}")


if __name__ == "__main__":
    main()
