"""torch.compile on the CPU for the fit's two network passes: compile time and speed.

Usage::

    python benchmarks/bench_compile.py

One torch thread; the default 3×64 network. ``value_and_grad`` on 1024 points (a step's
Newton pass) and forward + backward on 2816 points (a step's loss pass), eager and
compiled (inductor, static shapes), ms per call (best of the timed loop), and the seconds
the first compiled call takes.
"""

from __future__ import annotations

import time

import torch


def _ms(fn, n: int = 200) -> float:
    for _ in range(10):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e3


def main() -> None:
    from surfrec.field.model import build_model

    torch.set_num_threads(1)
    model = build_model()
    x_newton, x_loss = torch.rand(1024, 3) * 2 - 1, torch.rand(2816, 3) * 2 - 1

    def loss_pass(net) -> None:
        net(x_loss).abs().mean().backward()

    print(f"eager value_and_grad(1024): {_ms(lambda: model.value_and_grad(x_newton)):.2f} ms")
    print(f"eager forward+backward(2816): {_ms(lambda: loss_pass(model)):.2f} ms")
    t0 = time.perf_counter()
    vg = torch.compile(model.value_and_grad, dynamic=False)
    vg(x_newton)
    print(f"compile value_and_grad: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    net = torch.compile(model, dynamic=False)
    loss_pass(net)
    print(f"compile forward+backward: {time.perf_counter() - t0:.1f} s")
    print(f"compiled value_and_grad(1024): {_ms(lambda: vg(x_newton)):.2f} ms")
    print(f"compiled forward+backward(2816): {_ms(lambda: loss_pass(net)):.2f} ms")
    f0, g0 = model.value_and_grad(x_newton)
    f1, g1 = vg(x_newton)
    print(f"max |ΔF| {float((f0 - f1).abs().max()):.2e}, max |Δ∇F| {float((g0 - g1).abs().max()):.2e}")


if __name__ == "__main__":
    main()
