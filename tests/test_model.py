import math

import pytest
import torch

from surfrec.field.model import ImplicitMLP, build_model, count_parameters
from surfrec.settings import ModelConfig


def _perturbed(cfg: ModelConfig) -> ImplicitMLP:
    torch.manual_seed(0)
    m = ImplicitMLP(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("cfg", [
    ModelConfig(),
    ModelConfig(hidden_dim=32, n_hidden_layers=5, skip_layers=(2,)),
    ModelConfig(hidden_dim=16, n_hidden_layers=3, skip_layers=(1, 2)),
    ModelConfig(hidden_dim=32, activation="relu"),
])
def test_closed_form_gradient_matches_autograd(cfg):
    m = _perturbed(cfg)
    x = torch.rand(500, 3) * 2 - 1
    f, g = m.value_and_grad(x)
    f_ref, g_ref = m.gradient(x)
    assert torch.allclose(f, f_ref.detach(), atol=1e-6)
    assert torch.allclose(g, g_ref, atol=1e-5)
    assert not f.requires_grad and not g.requires_grad


def test_geometric_init_is_a_sphere_like_sdf():
    torch.manual_seed(0)
    m = ImplicitMLP(ModelConfig(hidden_dim=256, init_radius=0.5))
    with torch.no_grad():
        assert m(torch.zeros(1, 3)).item() < 0  # inside is negative
        far = torch.nn.functional.normalize(torch.randn(200, 3), dim=1) * 0.95
        assert (m(far) > 0).all()
        x = torch.nn.functional.normalize(torch.randn(2000, 3), dim=1) * 0.5
        assert m(x).abs().mean().item() < 0.15


def test_config_validation_and_dict_roundtrip():
    with pytest.raises(ValueError, match="activation"):
        ModelConfig(activation="tanh")
    with pytest.raises(ValueError, match="skip_layers"):
        ModelConfig(n_hidden_layers=3, skip_layers=(3,))
    cfg = ModelConfig(hidden_dim=8, n_hidden_layers=2, skip_layers=(1,))
    m = build_model(cfg.to_dict())
    assert m.config == cfg
    assert count_parameters(m) == (3 * 8 + 8) + ((8 + 3) * 8 + 8) + (8 + 1)


def test_softplus_beta_controls_smoothness():
    z = torch.linspace(-1, 1, 11)
    m = ImplicitMLP(ModelConfig(softplus_beta=100.0))
    assert torch.allclose(m._act(z), torch.relu(z), atol=math.log(2) / 100 + 1e-6)


GRID = dict(encoding="grid", grid_levels=3, grid_min_res=4, grid_max_res=16, grid_init_std=0.1)


@pytest.mark.parametrize("cfg", [
    ModelConfig(hidden_dim=32, n_hidden_layers=2, **GRID),
    ModelConfig(hidden_dim=16, n_hidden_layers=3, skip_layers=(1,), grid_channels=2, **GRID),
])
def test_grid_value_and_grad_matches_autograd_and_finite_differences(cfg):
    torch.manual_seed(0)
    m = ImplicitMLP(cfg).double()
    m.set_level_weights([1.0, 0.5, 0.25])
    x = (torch.rand(400, 3, dtype=torch.float64) * 2.4 - 1.2)          # some points outside the grid
    f, g = m.value_and_grad(x)
    f_ref, g_ref = m.gradient(x)
    assert torch.allclose(f, f_ref.detach(), atol=1e-12)
    assert torch.allclose(g, g_ref, atol=1e-9)
    inside = (torch.rand(400, 3, dtype=torch.float64) * 1.96 - 0.98)
    f, g = m.value_and_grad(inside)
    h = 1e-6
    fd = torch.stack([(m(inside + h * e) - m(inside - h * e)) / (2 * h) for e in torch.eye(3, dtype=torch.float64)], 1)
    assert torch.allclose(g, fd.detach(), atol=1e-6)


def test_grid_init_keeps_the_sphere_and_sparse_gradients():
    torch.manual_seed(0)
    m = ImplicitMLP(ModelConfig(hidden_dim=64, n_hidden_layers=2, encoding="grid"))
    assert m.config.grid_resolutions() == [16, 32, 64, 128]
    with torch.no_grad():
        x = torch.nn.functional.normalize(torch.randn(2000, 3), dim=1) * 0.5
        assert m(x).abs().mean().item() < 0.15
        assert m(torch.zeros(1, 3)).item() < 0
    m.sparse_grid_grad = True
    m(torch.rand(10, 3)).sum().backward()
    assert all(p.grad.is_sparse for p in m.grid_parameters())
    assert not any(p.grad.is_sparse for p in m.mlp_parameters())
    with pytest.raises(ValueError, match="encoding"):
        ModelConfig(encoding="hash")
    with pytest.raises(ValueError, match="grid_min_res"):
        ModelConfig(encoding="grid", grid_min_res=64, grid_max_res=32)


def test_float32_inference_softplus_matches_torch():
    # inference in float32 clamps βz at -SOFTPLUS_FLOOR (faster exp); it must equal torch's softplus
    from surfrec.field.model import ImplicitMLP
    from surfrec.settings import ModelConfig

    m = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2))
    z = torch.linspace(-2.0, 2.0, 20001)
    with torch.no_grad():
        fast = m._act(z)
    ref = torch.nn.functional.softplus(z, beta=m.config.softplus_beta, threshold=20.0)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-7)
    x = torch.rand(500, 3) * 2 - 1
    with torch.no_grad():
        f_fast, _ = m.value_and_grad(x)
    f_ref, _ = m.gradient(x)  # autograd path: torch's softplus
    torch.testing.assert_close(f_fast, f_ref.detach(), rtol=1e-5, atol=1e-6)


def test_fused_activation_and_slope_match_float64_reference():
    # the closed-form pass gets softplus and its slope from one sigmoid and one log (float32)
    m = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2))
    b = m.config.softplus_beta
    z = torch.cat([torch.linspace(-2.0, 2.0, 40001), torch.tensor([-1e3, -0.15, 0.15, 0.2, 0.5, 1e3])])
    with torch.no_grad():
        h, s = m._act_and_slope(z.clone())
    z64 = z.double()
    torch.testing.assert_close(h.double(), torch.nn.functional.softplus(z64, beta=b), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(s.double(), torch.sigmoid(b * z64), rtol=0, atol=4e-7)
    r, rs = ImplicitMLP(ModelConfig(hidden_dim=4, n_hidden_layers=1, activation="relu"))._act_and_slope(z.clone())
    assert torch.equal(r, torch.relu(z)) and torch.equal(rs, (z > 0).float())


@pytest.mark.parametrize("cfg", [
    ModelConfig(hidden_dim=64, n_hidden_layers=3),
    ModelConfig(hidden_dim=32, n_hidden_layers=5, skip_layers=(2,)),
    ModelConfig(hidden_dim=16, n_hidden_layers=4, skip_layers=(1, 3)),
    ModelConfig(hidden_dim=24, n_hidden_layers=3, softplus_beta=10.0),
])
def test_closed_form_value_and_grad_against_float64_autograd(cfg):
    # float64: closed form = autograd to rounding; float32 (the fit's path) within float32 error
    m = _perturbed(cfg).double()
    torch.manual_seed(1)
    x = (torch.rand(2000, 3, dtype=torch.float64) * 2 - 1) * 1.2
    f_ref, g_ref = m.gradient(x)
    f64, g64 = m.value_and_grad(x)
    torch.testing.assert_close(f64, f_ref.detach(), rtol=0, atol=1e-12)
    # (torch's softplus takes slope 1 above βz = 20 where σ(20) = 1 − 2e-9: not rounding-exact)
    torch.testing.assert_close(g64, g_ref, rtol=0, atol=1e-8)
    m32 = m.float()
    f32, g32 = m32.value_and_grad(x.float())
    scale = float(g_ref.abs().max())
    torch.testing.assert_close(f32.double(), f_ref.detach(), rtol=0, atol=2e-5)
    torch.testing.assert_close(g32.double(), g_ref, rtol=0, atol=2e-5 * max(1.0, scale))


@pytest.mark.parametrize("cfg", [
    ModelConfig(hidden_dim=64, n_hidden_layers=3),
    ModelConfig(hidden_dim=32, n_hidden_layers=5, skip_layers=(2,)),
    ModelConfig(hidden_dim=32, activation="relu"),
    ModelConfig(hidden_dim=16, n_hidden_layers=2, **GRID),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inplace_value_equals_forward_bit_for_bit(cfg, dtype):
    # value() is forward() under no_grad with the activation in place: the same numbers exactly
    m = _perturbed(cfg).to(dtype)
    x = (torch.rand(3000, 3) * 2.4 - 1.2).to(dtype)
    with torch.no_grad():
        ref = m(x)
    got = m.value(x)
    assert torch.equal(got, ref) and not got.requires_grad
    with torch.inference_mode():
        assert torch.equal(m.value(x), ref)
    z = torch.linspace(-1.0, 1.0, 5001, dtype=dtype)
    with torch.no_grad():
        assert torch.equal(m._act_(z.clone()), m._act(z))


def test_field_is_the_same_at_any_batch_size(monkeypatch):
    # FIELD_BATCH is a speed setting only: each point's value does not depend on its batch
    import numpy as np

    from surfrec import result as result_mod
    from surfrec.input.normalize import Normalization

    m = _perturbed(ModelConfig(hidden_dim=64, n_hidden_layers=3))
    res = result_mod.FitResult(model=m, normalization=Normalization.identity(), config=None, history={},
                               seconds=0.0, steps=0)
    x = np.random.default_rng(0).uniform(-1, 1, (20_000, 3)).astype(np.float32)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    for batch in (1000, 4096, 16_384):
        monkeypatch.setattr(result_mod, "FIELD_BATCH", batch)
        np.testing.assert_array_equal(res.field()(x), ref)
