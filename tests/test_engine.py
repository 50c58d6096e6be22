"""surfrec.field.engine: the fused engine against torch autograd, determinism across threads,
persistent buffers, and exact weight round trips."""

from __future__ import annotations

import copy
import math
import tracemalloc

import numpy as np
import pytest
import torch

from surfrec.field.engine import FusedMLP, partition, supports
from surfrec.field.model import SOFTPLUS_FLOOR, ImplicitMLP
from surfrec.settings import ModelConfig
from surfrec.field.optim import Adam

# (hidden width, hidden layers, softplus β)
NETS = [(64, 3, 100.0), (32, 1, 100.0), (24, 2, 10.0), (16, 4, 100.0)]


def random_net(width: int, layers: int, beta: float, seed: int) -> ImplicitMLP:
    """A network with random weights and biases (not the sphere init): varied saturation."""
    torch.manual_seed(seed)
    m = ImplicitMLP(ModelConfig(hidden_dim=width, n_hidden_layers=layers, softplus_beta=beta))
    with torch.no_grad():
        for p in m.parameters():
            fan_in = p.shape[1] if p.ndim == 2 else 4.0
            p.copy_(torch.randn_like(p) * math.sqrt(2.0 / fan_in))
    return m


def random_points(n: int, seed: int) -> np.ndarray:
    """Points near the unit cube, a few far away (deeply saturated units) and some exact zeros."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.2, 1.2, (n, 3))
    far = rng.random(n) < 0.1
    x[far] *= rng.uniform(10.0, 80.0, (int(far.sum()), 1))
    x[: n // 50] = 0.0
    return x.astype(np.float32)


def rel_err(a, b) -> float:
    """max |a − b| / max |b| (float32 tolerance is relative to the scale of the result)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def weight_excess(engine_params, module_params, lr: float) -> np.ndarray:
    """|fused − torch| per weight beyond float32 rounding of the weight itself (4 ulp), in units of lr."""
    out = []
    for q, p in zip(engine_params, module_params):
        p = p.detach().numpy()
        out.append((np.abs(q - p) - 4 * np.finfo(np.float32).eps * np.abs(p)).ravel() / lr)
    return np.concatenate(out)


def torch_grads(model: ImplicitMLP, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    model.zero_grad()
    f = model(torch.from_numpy(x))
    (f * torch.from_numpy(w)).sum().backward()
    return f.detach().numpy(), [p.grad.numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("width,layers,beta", NETS)
def test_forward_and_theta_gradient_match_autograd(width, layers, beta):
    model = random_net(width, layers, beta, seed=width + layers)
    eng = FusedMLP(model, threads=2, chunk_points=128)
    for seed, n in ((1, 700), (2, 37)):
        x = random_points(n, seed)
        w = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
        f_ref, g_ref = torch_grads(model, x, w)
        f = eng.forward_train(x)
        eng.backward(w)
        assert rel_err(f, f_ref) < 1e-5
        for name, g, r in zip([n for n, _ in model.named_parameters()], eng.gradients(), g_ref):
            assert g.shape == r.shape
            assert rel_err(g, r) < 1e-4, name


@pytest.mark.parametrize("width,layers,beta", NETS)
def test_value_and_grad_match_the_model(width, layers, beta):
    model = random_net(width, layers, beta, seed=7 * width + layers)
    eng = FusedMLP(model, threads=2, chunk_points=128)
    x = random_points(900, seed=3)
    f_ref, g_ref = model.value_and_grad(torch.from_numpy(x))
    f, g = eng.value_and_grad(x)
    assert f.shape == (900,) and g.shape == (900, 3)
    assert rel_err(f, f_ref) < 1e-5
    assert rel_err(g, g_ref) < 1e-4
    # and against autograd of the unclamped network (the clamp at -15 is below float32 there)
    assert rel_err(g, model.gradient(torch.from_numpy(x))[1]) < 1e-4
    assert rel_err(eng.value(x), model.value(torch.from_numpy(x))) < 1e-5
    assert rel_err(eng.value(torch.from_numpy(x)), f_ref) < 1e-5   # tensors are accepted too


def test_activation_extremes_match_torch():
    """One unit per layer: βz across the whole float range, including both clamps."""
    model = random_net(1, 1, 100.0, seed=0)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        model.layers[0].bias.zero_()
        model.out.weight.fill_(1.0)
        model.out.bias.zero_()
    z = np.concatenate([np.linspace(-2.0, 2.0, 4001), [-1e4, -1.0, -0.3, -0.2001, -0.15, -0.1, 0.0, 0.1999,
                                                       0.2, 0.2001, 1e4]])
    x = np.zeros((z.size, 3), np.float32)
    x[:, 0] = z
    eng = FusedMLP(model, threads=1)
    zt = torch.from_numpy(x[:, 0].astype(np.float64))
    exact = torch.nn.functional.softplus(zt, beta=100.0, threshold=20.0).numpy()
    assert np.abs(eng.forward_train(x) - exact).max() < 1e-6 * max(1.0, np.abs(exact).max())
    clamped = torch.nn.functional.softplus((zt * 100).clamp(min=-SOFTPLUS_FLOOR)).numpy() / 100
    f, g = eng.value_and_grad(x)
    assert np.abs(f - clamped).max() < 1e-6 * max(1.0, np.abs(clamped).max())
    slope = torch.sigmoid((zt * 100).clamp(min=-SOFTPLUS_FLOOR)).numpy()
    assert np.abs(g[:, 0] - slope).max() < 1e-6
    assert np.all(g[:, 1:] == 0)


def test_nan_stays_at_its_point():
    model = random_net(16, 2, 100.0, seed=1)
    eng = FusedMLP(model, threads=1)
    x = random_points(50, seed=1)
    x[7, 1] = np.nan
    f = eng.forward_train(x)
    assert np.isnan(f[7]) and np.isfinite(np.delete(f, 7)).all()
    f, g = eng.value_and_grad(x)
    assert np.isnan(f[7]) and np.isnan(g[7]).all() and np.isfinite(np.delete(g, 7, axis=0)).all()


def test_adam_matches_optim_adam_on_the_same_gradients():
    model = random_net(32, 2, 100.0, seed=4)
    ref = copy.deepcopy(model)
    opt = Adam([{"params": ref.mlp_parameters()}], lr=3e-3)
    eng = FusedMLP(model, threads=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [(rng.standard_normal(p.shape) * rng.choice([1e-6, 1.0, 100.0])).astype(np.float32)
                 for p in ref.parameters()]
        for p, g in zip(ref.parameters(), grads):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        for dst, g in zip(eng.gradients(), grads):
            dst[...] = g
        eng.adam_step(3e-3)
        assert weight_excess(eng.parameters(), ref.parameters(), 3e-3).max() < 1e-5


@pytest.mark.parametrize("width,layers,beta", NETS[:2])
def test_training_steps_match_autograd_and_adam(width, layers, beta):
    """Weights after 1 and after 3 steps of forward, backward and Adam."""
    model = random_net(width, layers, beta, seed=11)
    ref = copy.deepcopy(model)
    lr = 1e-3
    opt = Adam([{"params": ref.mlp_parameters()}], lr=lr)
    eng = FusedMLP(model, threads=2, chunk_points=200)
    rng = np.random.default_rng(5)
    for step in range(1, 4):
        x = random_points(600, seed=10 + step)
        w = rng.standard_normal(600).astype(np.float32)
        eng.forward_train(x)
        eng.backward(w)
        eng.adam_step(lr)
        opt.zero_grad()
        torch_grads(ref, x, w)
        opt.step()
        if step in (1, 3):
            # each step moves a weight by about lr; the float32 gradients (fused or torch's)
            # differ by ~1e-5 of their norm, which moves the small entries' steps a little
            excess = weight_excess(eng.parameters(), ref.parameters(), lr)
            assert np.quantile(excess, 0.99) < 5e-3 and excess.max() < 5e-2


def _run_all(eng: FusedMLP, x: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
    out = [eng.forward_train(x).copy()]
    eng.backward(w)
    out.append(eng.grad.copy())
    eng.adam_step(1e-3)
    out.append(eng.forward_train(x[::-1].copy()).copy())
    eng.backward(w[::-1].copy())
    eng.adam_step(1e-3)
    out += [eng.grad.copy(), eng.theta.copy(), eng.value(x), *eng.value_and_grad(x)]
    return out


@pytest.mark.parametrize("chunk_points", [64, 512])
def test_one_and_two_threads_are_bit_identical(chunk_points):
    model = random_net(64, 3, 100.0, seed=2)
    x = random_points(1100, seed=4)
    w = np.random.default_rng(1).standard_normal(1100).astype(np.float32)
    runs = [_run_all(FusedMLP(model, threads=t, chunk_points=chunk_points), x, w) for t in (1, 2, 2)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.shape == b.shape and a.tobytes() == b.tobytes()


def _addresses(eng: FusedMLP) -> list[int]:
    return [a.__array_interface__["data"][0] for a in (eng._x, eng._w, eng._f, eng._hs, eng._ss, eng._parts)]


def test_buffers_are_reused_and_grow_once():
    model = random_net(32, 3, 100.0, seed=3)
    eng = FusedMLP(model, threads=2, chunk_points=128)
    x, w = random_points(700, seed=1), np.ones(700, np.float32)
    eng.forward_train(x)
    eng.backward(w)
    addr, size = _addresses(eng), eng.buffer_bytes()
    tracemalloc.start()
    for _ in range(5):
        eng.forward_train(x)
        eng.backward(w)
        eng.adam_step(1e-4)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert _addresses(eng) == addr and eng.buffer_bytes() == size
    assert peak < 64_000   # Python bookkeeping only: one activation block alone is 90 kB
    big = random_points(1500, seed=2)
    f_big = eng.forward_train(big).copy()
    eng.backward(np.ones(1500, np.float32))
    fresh = FusedMLP(eng.to_module(copy.deepcopy(model)), threads=1, chunk_points=128)
    assert f_big.tobytes() == fresh.forward_train(big).tobytes()
    fresh.backward(np.ones(1500, np.float32))
    assert eng.grad.tobytes() == fresh.grad.tobytes()
    addr_big = _addresses(eng)
    eng.forward_train(x)     # smaller again: the large buffers serve
    eng.backward(w)
    assert _addresses(eng) == addr_big
    with pytest.raises(ValueError):
        eng.backward(np.ones(10, np.float32))


def test_weights_round_trip_exactly():
    model = random_net(24, 2, 100.0, seed=6)
    eng = FusedMLP(model, threads=1)
    copy_ = eng.to_module(copy.deepcopy(model))
    for p, q in zip(model.parameters(), copy_.parameters()):
        assert torch.equal(p, q)
    eng.forward_train(random_points(100, 0))
    eng.backward(np.ones(100, np.float32))
    eng.adam_step(1e-2)
    moved = eng.to_module(copy.deepcopy(model))
    assert not torch.equal(moved.out.bias, model.out.bias)
    again = FusedMLP(moved, threads=1)
    assert again.theta.tobytes() == eng.theta.tobytes()
    eng.to_module()          # default: the module it was built from
    for p, q in zip(model.parameters(), moved.parameters()):
        assert torch.equal(p, q)


def test_adam_state_round_trip_and_optim_adam_format():
    model = random_net(16, 2, 100.0, seed=8)
    eng = FusedMLP(model, threads=1)
    assert eng.adam_state() == [None] * 6
    x, w = random_points(300, 2), np.random.default_rng(0).standard_normal(300).astype(np.float32)
    for _ in range(2):
        eng.forward_train(x)
        eng.backward(w)
        eng.adam_step(1e-3)
    state = eng.adam_state()
    assert [s[0] for s in state] == [2] * 6
    assert [tuple(s[1].shape) for s in state] == [tuple(p.shape) for p in model.parameters()]
    # a resumed engine takes the same next step bit for bit
    other = FusedMLP(eng.to_module(copy.deepcopy(model)), threads=2)
    other.load_adam_state(state)
    for e in (eng, other):
        e.forward_train(x)
        e.backward(w)
        e.adam_step(1e-3)
    assert eng.theta.tobytes() == other.theta.tobytes()
    # the same lists drive surfrec.field.optim.Adam
    ref = eng.to_module(copy.deepcopy(model))
    opt = Adam([{"params": ref.mlp_parameters()}], lr=1e-3)
    opt.state[0] = eng.adam_state()
    eng.forward_train(x)
    eng.backward(w)
    for p, g in zip(ref.parameters(), eng.gradients()):
        p.grad = torch.from_numpy(g.copy())
    opt.step()
    eng.adam_step(1e-3)
    assert weight_excess(eng.parameters(), ref.parameters(), 1e-3).max() < 1e-5
    with pytest.raises(ValueError):
        eng.load_adam_state(state[:2])


def test_partition_depends_on_the_count_alone():
    for n in (1, 2, 7, 511, 512, 513, 2816, 10_000):
        b = partition(n, 512)
        sizes = np.diff(b)
        assert b[0] == 0 and b[-1] == n and sizes.min() >= 1 and sizes.max() <= 512
        assert sizes.max() - sizes.min() <= 1
        assert len(sizes) == 1 or len(sizes) % 2 == 0
    assert len(partition(2816)) - 1 == 6


def test_empty_batches_and_unsupported_networks():
    model = random_net(16, 2, 100.0, seed=1)
    eng = FusedMLP(model, threads=2)
    assert eng.value(np.zeros((0, 3), np.float32)).shape == (0,)
    f, g = eng.value_and_grad(np.zeros((0, 3), np.float32))
    assert f.shape == (0,) and g.shape == (0, 3)
    with pytest.raises(ValueError):
        eng.value(np.zeros((4, 2), np.float32))
    for cfg in (ModelConfig(hidden_dim=16, n_hidden_layers=3, skip_layers=(1,)),
                ModelConfig(hidden_dim=16, n_hidden_layers=2, encoding="grid", grid_max_res=16),
                ModelConfig(hidden_dim=16, n_hidden_layers=2, activation="relu")):
        assert not supports(ImplicitMLP(cfg))
        with pytest.raises(ValueError):
            FusedMLP(ImplicitMLP(cfg))


def test_pool_runs_each_task_once_and_reraises():
    from surfrec.field.engine import _Pool

    pool = _Pool(2)
    seen = []
    pool.run(lambda worker, task: seen.append(task), 9)
    assert sorted(seen) == list(range(9))

    def fail(worker, task):
        if task == 3:
            raise RuntimeError("task 3")

    with pytest.raises(RuntimeError, match="task 3"):
        pool.run(fail, 6)
    pool.run(lambda worker, task: None, 4)   # still usable
    pool.close()
    seen.clear()
    pool.run(lambda worker, task: seen.append(worker), 3)   # after close: the caller alone
    assert seen == [0, 0, 0]



def test_forward_train_runs_the_extra_calls_of_its_pass():
    """``also``: independent calls run in the same pass; F is unchanged by them."""
    model = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2))
    x = np.random.default_rng(0).uniform(-1, 1, (700, 3)).astype(np.float32)
    ran = []
    with FusedMLP(model, threads=2, chunk_points=128) as eng:
        plain = eng.forward_train(x).copy()
        with_calls = eng.forward_train(x, also=[lambda: ran.append(1), lambda: ran.append(2)]).copy()
        empty = eng.forward_train(x[:0], also=[lambda: ran.append(3)])
    assert sorted(ran) == [1, 2, 3]
    assert np.array_equal(plain, with_calls)
    assert empty.shape == (0,)
