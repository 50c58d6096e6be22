"""A fused, deterministic CPU training engine for the plain :class:`ImplicitMLP`.

:class:`FusedMLP` holds a float32 copy of the network's weights (one flat vector θ, the
module's parameters in order) and runs the passes of a training step without torch:

* :meth:`FusedMLP.forward_train` evaluates F and keeps every layer's activation and slope
  in persistent buffers; :meth:`FusedMLP.backward` turns per-point weights w (the loss's
  dL/dF) into the θ-gradient of Σᵢ wᵢ F(xᵢ; θ); :meth:`FusedMLP.adam_step` applies the
  update of :class:`surfrec.optim.Adam`.
* :meth:`FusedMLP.value` and :meth:`FusedMLP.value_and_grad` evaluate F (and ∇ₓF) without
  a θ-gradient, as :meth:`ImplicitMLP.value` and :meth:`ImplicitMLP.value_and_grad` do.

Each pass cuts its points into a fixed partition of chunks that depends only on the
number of points (:func:`partition`), runs one compiled, GIL-free call per chunk on a small
thread pool, and adds the chunks' gradients in chunk order. So every output is bit for
bit the same whatever the number of threads, and a busy core only slows the pass (the
other thread takes more chunks): there is no spinning barrier.

Matrix products use SciPy's BLAS, held to one thread while a pass runs (the pool is the
parallelism; a BLAS that threads by itself inside each chunk would oversubscribe the
cores). Needs ``numba`` and ``threadpoolctl``; they are imported when an engine is built.
The first engine of a process compiles the kernels (~7 s on a machine that has never
run them) or loads them from numba's on-disk cache (~0.5 s).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import queue
import threading
import time
import weakref
from typing import Callable

import numpy as np
import torch

from .model import SOFTPLUS_FLOOR, ImplicitMLP, ModelConfig

log = logging.getLogger(__name__)

#: default largest chunk of points one call processes (the partition's unit)
CHUNK_POINTS = 512


def supports(model: torch.nn.Module) -> bool:
    """Whether :class:`FusedMLP` can run ``model``: an :class:`ImplicitMLP` with softplus
    activations, no skip layers and no feature grid."""
    if type(model) is not ImplicitMLP:
        return False
    c = model.config
    return c.activation == "softplus" and not c.skip_layers and c.encoding == "none"


@functools.lru_cache(maxsize=64)
def partition(n_points: int, chunk_points: int = CHUNK_POINTS) -> np.ndarray:
    """Chunk boundaries of a pass over ``n_points`` points: a function of the count alone.

    The count is ⌈n / chunk_points⌉, rounded up to an even number (two cores share the
    chunks evenly), and the sizes differ by at most one point.

    Returns
    -------
    (n_chunks + 1,) int64 boundaries, 0 first and ``n_points`` last
    """
    n = max(1, math.ceil(n_points / chunk_points))
    if n > 1 and n % 2:
        n += 1
    n = min(n, max(1, n_points))
    bounds = (np.arange(n + 1, dtype=np.int64) * n_points) // n
    bounds.flags.writeable = False   # cached: shared by every caller
    return bounds


def default_threads() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Job:
    """One pass: tasks 0..n-1 handed out in order to whichever worker asks next."""

    def __init__(self, fn: Callable[[int, int], None], n_tasks: int) -> None:
        self.fn, self.n_tasks = fn, n_tasks
        self.tasks = iter(range(n_tasks))     # next() on these is atomic under the GIL
        self.finished = itertools.count(1)
        self.done = threading.Event()
        self.error: BaseException | None = None

    def work(self, worker: int) -> None:
        for task in self.tasks:
            try:
                self.fn(worker, task)
            except BaseException as exc:   # re-raised by the caller of run()
                self.error = self.error or exc
            if next(self.finished) == self.n_tasks:
                self.done.set()


def _serve(worker: int, jobs: queue.SimpleQueue) -> None:
    """A helper thread: work on each job it is handed until it gets None."""
    while (job := jobs.get()) is not None:
        job.work(worker)


def _stop(queues: list[queue.SimpleQueue], helpers: list[threading.Thread]) -> None:
    """Hand each helper None and wait until it has returned."""
    for q in queues:
        q.put(None)
    for t in helpers:
        if t is not threading.current_thread():
            t.join()


class _Pool:
    """Runs ``fn(worker, task)`` for tasks 0..n-1 on ``threads`` workers, the caller being worker 0.

    The helpers are daemon threads that block on a queue between passes (no spinning). A
    helper that wakes late finds the tasks taken and does nothing, so the caller waits
    only for tasks that are actually running. Which worker runs a task never changes its
    result.

    Lifetime: :meth:`close`, or the pool's garbage collection, stops and joins the
    helpers. At interpreter exit an unclosed pool's helpers are left asleep: a daemon
    thread woken while the interpreter finalizes is killed mid-way, which aborted test
    runs ("terminate called without an active exception", exit status 134).
    """

    def __init__(self, threads: int) -> None:
        self.threads = int(threads)
        self._queues = [queue.SimpleQueue() for _ in range(self.threads - 1)]
        self._helpers = [threading.Thread(target=_serve, args=(worker, q), name=f"surfrec-fused-{worker}",
                                          daemon=True) for worker, q in enumerate(self._queues, start=1)]
        for t in self._helpers:
            t.start()
        self._finalizer = weakref.finalize(self, _stop, self._queues, self._helpers)
        self._finalizer.atexit = False

    def run(self, fn: Callable[[int, int], None], n_tasks: int) -> None:
        job = _Job(fn, n_tasks)
        for q in self._queues[:n_tasks - 1]:
            q.put(job)
        job.work(0)
        job.done.wait()
        if job.error is not None:
            raise job.error

    def close(self) -> None:
        """Stop and join the helpers; later passes run on the calling thread alone."""
        self._finalizer()
        self._queues, self._helpers = [], []


class _OneBlasThread:
    """Context: every BLAS library in the process runs on one thread, then gets its count back.

    OpenBLAS's own counters are called directly through ctypes (about a microsecond a
    pass; threadpoolctl's setter also ignores calls from any thread but the first that
    used it). Other BLAS vendors go through threadpoolctl.
    """

    _SYMBOLS = [(f"{pre}openblas_get_num_threads{suf}", f"{pre}openblas_set_num_threads{suf}")
                for pre in ("", "scipy_") for suf in ("", "64_")]

    def __init__(self) -> None:
        import ctypes

        from threadpoolctl import ThreadpoolController

        self._controls: list[tuple[Callable[[], int], Callable[[int], None]]] = []
        for lib in ThreadpoolController().lib_controllers:
            if lib.user_api != "blas":
                continue
            if lib.internal_api == "openblas":
                dll = ctypes.CDLL(lib.filepath)
                for get_name, set_name in self._SYMBOLS:
                    get, set_ = getattr(dll, get_name, None), getattr(dll, set_name, None)
                    if get is not None and set_ is not None:
                        get.restype, get.argtypes = ctypes.c_int, []
                        set_.restype, set_.argtypes = None, [ctypes.c_int]
                        self._controls.append((get, set_))
                        break
                else:
                    self._controls.append((lib.get_num_threads, lib.set_num_threads))
            else:
                self._controls.append((lib.get_num_threads, lib.set_num_threads))
        self._saved: list[int] = []

    def __enter__(self) -> None:
        self._saved = [get() for get, _ in self._controls]
        for _, set_ in self._controls:
            set_(1)

    def __exit__(self, *exc) -> None:
        for (_, set_), n in zip(self._controls, self._saved):
            if n:
                set_(n)


def _empty(*shape: int) -> np.ndarray:
    """Uninitialized float32 array whose data starts on a 64-byte boundary (every worker's
    buffers then look alike to the BLAS, whichever memory they got)."""
    n = math.prod(shape)
    raw = np.empty(n + 16, np.float32)
    skip = (-raw.ctypes.data % 64) // 4
    return raw[skip:skip + n].reshape(shape)


class _Scratch:
    """One worker's working memory (nothing in it outlives a chunk)."""

    def __init__(self, cap: int, hdim: int, n_layers: int) -> None:
        self.w3 = _empty(3, hdim)
        self.d0 = _empty(cap, hdim)
        self.d1 = _empty(cap, hdim)
        self.hs = _empty(n_layers, cap, hdim)
        self.ss = _empty(n_layers, cap, hdim)


_warm = False


def _warm_up() -> None:
    """Run every kernel once on a tiny network, so that compilation (about 10 s the first
    time on a machine; later processes load numba's on-disk cache in ~0.5 s) happens when
    the first engine is built, not inside a timed pass. The kernels take sizes as
    arguments: one warm-up serves every width and depth."""
    global _warm
    if _warm:
        return
    _warm = True
    t0 = time.perf_counter()
    with FusedMLP(ImplicitMLP(ModelConfig(hidden_dim=8, n_hidden_layers=2)), threads=1, chunk_points=8) as eng:
        x = np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(10, 3)
        eng.forward_train(x)
        eng.backward(np.ones(10, np.float32))
        eng.adam_step(1e-4)
        eng.value(x)
        eng.value_and_grad(x)
    log.info("fused kernels ready in %.1f s", time.perf_counter() - t0)


def _points(x, name: str = "x") -> np.ndarray:
    """(M, 3) float32 C-contiguous view or copy of an array or CPU tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (M, 3), got {x.shape}")
    return x


class FusedMLP:
    """The training and inference passes of a plain softplus :class:`ImplicitMLP`.

    Parameters
    ----------
    model : ImplicitMLP
        The network; :func:`supports` must hold. Its weights are copied (float32).
    threads : int, optional
        Workers of the pool (default: the cores available). Results do not depend on it.
    chunk_points : int
        Largest chunk of points per call (the partition's unit, see :func:`partition`).
        Results depend on it (floating-point order within the BLAS), so keep it fixed.

    Attributes
    ----------
    theta : (P,) float32
        The parameters, flat, in the order of ``model.parameters()``.
    grad : (P,) float32
        The θ-gradient of the last :meth:`backward`.

    Notes
    -----
    One pass at a time per engine (the workers' scratch is shared). While a pass runs,
    every BLAS library of the process is held to one thread (a process-wide setting,
    restored afterwards): keep other BLAS-heavy work off other threads meanwhile. The
    pool's threads live until :meth:`close` or the engine's garbage collection.
    Memory: per worker (2L + 2)·chunk_points·H floats; the training buffers hold
    2L·M·H floats for the largest batch M seen (4.6 MB for 2816 points, 64 wide, L = 3).
    """

    def __init__(self, model: ImplicitMLP, threads: int | None = None,
                 chunk_points: int = CHUNK_POINTS) -> None:
        if not supports(model):
            raise ValueError("FusedMLP runs plain softplus MLPs only (no skip layers, no grid encoding)")
        from . import _kernels as kernels
        from scipy.linalg import cython_blas  # noqa: F401  (loads the BLAS that serves sgemm)
        from numba.extending import get_cython_function_address

        self._k = kernels
        self._sgemm = int(get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))
        self._one_blas = _OneBlasThread()
        c = model.config
        self.hdim, self.n_layers = int(c.hidden_dim), int(c.n_hidden_layers)
        self.beta = np.float32(c.softplus_beta)
        self.chunk_points = int(chunk_points)
        self.module = model
        self._shapes = [tuple(p.shape) for p in model.parameters()]
        self.theta = np.zeros(sum(math.prod(s) for s in self._shapes), np.float32)
        self.grad = np.zeros_like(self.theta)
        self.load_module(model)
        self._m = np.zeros_like(self.theta)
        self._v = np.zeros_like(self.theta)
        self.adam_steps = 0
        self.betas, self.eps = (0.9, 0.999), 1e-8
        self.threads = int(threads) if threads else default_threads()
        self._pool = _Pool(self.threads)
        self._scratch = [_Scratch(self.chunk_points, self.hdim, self.n_layers) for _ in range(self.threads)]
        self._cap = 0          # points the training buffers hold
        self._bounds = None    # chunk boundaries of the last forward_train
        log.debug("FusedMLP: width %d, %d hidden layers, %d parameters, %d threads",
                  self.hdim, self.n_layers, self.theta.size, self.threads)
        _warm_up()

    # ------------------------------------------------------------- weights
    def _views(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of a (P,) vector shaped like ``module.parameters()``."""
        out, o = [], 0
        for s in self._shapes:
            n = math.prod(s)
            out.append(flat[o:o + n].reshape(s))
            o += n
        return out

    def parameters(self) -> list[np.ndarray]:
        """Views of θ shaped like ``module.parameters()`` (weights (out, in), biases (out,))."""
        return self._views(self.theta)

    def load_module(self, model: ImplicitMLP) -> None:
        """Copy ``model``'s weights into θ (shapes must match)."""
        shapes = [tuple(p.shape) for p in model.parameters()]
        if shapes != self._shapes:
            raise ValueError(f"parameter shapes {shapes} do not match the engine's {self._shapes}")
        with torch.no_grad():
            for dst, p in zip(self.parameters(), model.parameters()):
                dst[...] = p.detach().cpu().numpy()

    @torch.no_grad()
    def to_module(self, model: ImplicitMLP | None = None) -> ImplicitMLP:
        """Write θ into ``model`` (default: the module the engine was built from)."""
        model = self.module if model is None else model
        for src, p in zip(self.parameters(), model.parameters()):
            p.copy_(torch.from_numpy(src).to(p.device, p.dtype))
        return model

    # ----------------------------------------------------------- inference
    def value(self, x) -> np.ndarray:
        """F(x) as :meth:`ImplicitMLP.value` computes it (βz clamped at −15).

        Parameters
        ----------
        x : (M, 3) array or CPU tensor

        Returns
        -------
        (M,) float32 array
        """
        return self._infer(x, grad=False)[0]

    def value_and_grad(self, x) -> tuple[np.ndarray, np.ndarray]:
        """F(x) and ∇ₓF(x), as :meth:`ImplicitMLP.value_and_grad` computes them.

        Parameters
        ----------
        x : (M, 3) array or CPU tensor

        Returns
        -------
        f : (M,) float32 array
        g : (M, 3) float32 array
        """
        return self._infer(x, grad=True)

    def _infer(self, x, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """F(x), and ∇ₓF(x) when ``grad`` (else None): one GIL-free chunk call per pass."""
        x = _points(x)
        f = np.empty(x.shape[0], np.float32)
        g = np.empty((x.shape[0], 3), np.float32) if grad else None
        bounds = partition(x.shape[0], self.chunk_points)
        tmin = np.float32(-SOFTPLUS_FLOOR)

        def chunk(worker: int, c: int) -> None:
            s, a, b = self._scratch[worker], bounds[c], bounds[c + 1]
            self._k.forward_chunk(x[a:b], self.theta, self.hdim, self.n_layers, self.beta, tmin, grad,
                                  s.hs, s.ss, 0, s.d0, f[a:b], self._sgemm, s.w3)
            if grad:
                self._k.reverse_chunk(self.theta, self.hdim, self.n_layers, s.ss, s.d0, s.d1, g[a:b], self._sgemm)

        self._run(chunk, len(bounds) - 1 if x.shape[0] else 0)
        return f, g

    # ------------------------------------------------------------ training
    def forward_train(self, x, also: list[Callable[[], None]] = ()) -> np.ndarray:
        """F at the points, keeping what :meth:`backward` needs (no clamp: torch's softplus).

        Parameters
        ----------
        x : (M, 3) array or CPU tensor (copied into a persistent buffer)
        also : independent calls (that release the GIL while they work) to run in the
            same pass, before the chunks, on whichever worker is free (e.g. the shares of a
            nearest-point search)

        Returns
        -------
        (M,) float32 view of a persistent buffer, overwritten by the next call
        """
        x = _points(x)
        n = x.shape[0]
        self._grow(n)
        np.copyto(self._x[:n], x)
        self._bounds = bounds = partition(n, self.chunk_points)
        tmin = np.float32(-np.inf)

        n_chunks = len(bounds) - 1

        n_also = len(also)

        def chunk(worker: int, c: int) -> None:
            if c < n_also:
                also[c]()
                return
            c -= n_also
            s, a, b = self._scratch[worker], bounds[c], bounds[c + 1]
            self._k.forward_chunk(self._x[a:b], self.theta, self.hdim, self.n_layers, self.beta, tmin, True,
                                  self._hs, self._ss, a, s.d0, self._f[a:b], self._sgemm, s.w3)

        self._run(chunk, (n_chunks if n else 0) + n_also)
        return self._f[:n]

    def backward(self, w) -> None:
        """θ-gradient of Σᵢ wᵢ F(xᵢ; θ) over the points of the last :meth:`forward_train`.

        Parameters
        ----------
        w : (M,) per-point weights (dL/dFᵢ), M as in the last forward_train

        The result goes to :attr:`grad` (see also :meth:`gradients`).
        """
        if self._bounds is None:
            raise RuntimeError("backward() needs a forward_train() first")
        bounds, n = self._bounds, int(self._bounds[-1])
        w = np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w)
        if w.shape != (n,):
            raise ValueError(f"w must have shape ({n},), got {w.shape}")
        np.copyto(self._w[:n], w)

        def chunk(worker: int, c: int) -> None:
            s, a, b = self._scratch[worker], bounds[c], bounds[c + 1]
            self._k.backward_chunk(self._x[a:b], self._w[a:b], self.theta, self.hdim, self.n_layers, self._hs,
                                   self._ss, a, s.d0, s.d1, self._parts[c], self._sgemm, s.w3)

        self._run(chunk, len(bounds) - 1 if n else 0)
        self._k.sum_rows(self._parts, len(bounds) - 1, self.grad)

    def gradients(self) -> list[np.ndarray]:
        """Views of :attr:`grad` shaped like ``module.parameters()``."""
        return self._views(self.grad)

    def adam_step(self, lr: float) -> None:
        """One Adam step (β = (0.9, 0.999), ε = 1e-8: :class:`surfrec.optim.Adam`) with :attr:`grad`."""
        b1, b2 = self.betas
        self.adam_steps += 1
        t = self.adam_steps
        f32 = np.float32
        self._k.adam(self.theta, self.grad, self._m, self._v, f32(lr / (1 - b1 ** t)), f32(b2), f32(1 - b1),
                     f32(1 - b2), f32(math.sqrt(1 - b2 ** t)), f32(self.eps))

    def adam_state(self) -> list[list]:
        """The Adam state per parameter as :class:`surfrec.optim.Adam` keeps it:
        ``[[steps, exp_avg, exp_avg_sq], ...]`` (tensors, copies), or ``None`` entries before
        the first step. Fits ``Adam.state[group]`` for the module's parameters in order."""
        if self.adam_steps == 0:
            return [None] * len(self._shapes)
        return [[self.adam_steps, torch.from_numpy(m.copy()), torch.from_numpy(v.copy())]
                for m, v in zip(self._views(self._m), self._views(self._v))]

    def load_adam_state(self, state: list) -> None:
        """Load what :meth:`adam_state` returns (or ``Adam.state[group]`` of the module's parameters)."""
        if len(state) != len(self._shapes):
            raise ValueError(f"expected {len(self._shapes)} parameter states, got {len(state)}")
        if all(s is None for s in state):
            self._m[:] = 0.0
            self._v[:] = 0.0
            self.adam_steps = 0
            return
        steps = {int(s[0]) for s in state if s is not None}
        if len(steps) != 1 or any(s is None for s in state):
            raise ValueError("all parameters must share one Adam step count")
        for dm, dv, (_, m, v) in zip(self._views(self._m), self._views(self._v), state):
            dm[...] = np.asarray(m, dtype=np.float32).reshape(dm.shape)
            dv[...] = np.asarray(v, dtype=np.float32).reshape(dv.shape)
        self.adam_steps = steps.pop()

    # ------------------------------------------------------------ plumbing
    def _run(self, chunk: Callable[[int, int], None], n_tasks: int) -> None:
        """``chunk(worker, task)`` for tasks 0..n_tasks-1 on the pool, BLAS on one thread."""
        if n_tasks == 0:
            return
        with self._one_blas:
            self._pool.run(chunk, n_tasks)

    def _grow(self, n: int) -> None:
        """Training buffers for ``n`` points (reallocated only when n exceeds the capacity)."""
        if n <= self._cap:
            return
        L, H = self.n_layers, self.hdim
        self._x = _empty(n, 3)
        self._w = _empty(n)
        self._f = _empty(n)
        self._hs = _empty(L, n, H)
        self._ss = _empty(L, n, H)
        self._parts = _empty(len(partition(n, self.chunk_points)) - 1, self.theta.size)
        self._cap = n
        log.debug("FusedMLP: training buffers for %d points (%.1f MB)", n, self.buffer_bytes() / 1e6)

    def buffer_bytes(self) -> int:
        """Bytes held by the training buffers and the workers' scratch."""
        train = (sum(a.nbytes for a in (self._x, self._w, self._f, self._hs, self._ss, self._parts))
                 if self._cap else 0)
        scratch = sum(a.nbytes for s in self._scratch for a in vars(s).values())
        return train + scratch

    def close(self) -> None:
        """Stop the pool's threads (the engine can't run passes afterwards)."""
        self._pool.close()

    def __enter__(self) -> FusedMLP:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["FusedMLP", "supports", "partition", "default_threads", "CHUNK_POINTS"]
