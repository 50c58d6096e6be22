import torch

from surfrec.field.levelset import project_to_level_set
from surfrec.field.losses import distance_sample_loss, sample_network, surface_sample_loss
from helpers import perturbed_mlp


def _model():
    return perturbed_mlp()


def test_sample_network_value_is_p_star():
    m = _model()
    p = torch.rand(50, 3, dtype=torch.float64) - 0.5
    assert torch.allclose(sample_network(m, p), p)


# the θ-gradient against a re-solved level-set point: tests/test_references.py


def test_sample_network_gradient_is_level_set_velocity():
    """Compare with re-projection: after a small θ step the true level set point along g moves
    by the same first-order amount."""
    m = _model()
    seeds = torch.rand(10, 3, dtype=torch.float64) - 0.5
    p_star = project_to_level_set(m, seeds, 0.0, max_steps=40, tol=1e-13, box=None).points
    _, g = m.gradient(p_star)
    n = g / g.norm(dim=1, keepdim=True)
    m.zero_grad()
    (sample_network(m, p_star) * n).sum().backward()
    params = list(m.parameters())
    h = 1e-5
    with torch.no_grad():
        for p in params:
            p.sub_(h * p.grad)  # move along -grad: sum of normal displacements must increase
    after = project_to_level_set(m, p_star, 0.0, max_steps=40, tol=1e-13, box=None).points
    displacement = ((after - p_star) * n).sum().item()
    grad_sq = sum((p.grad ** 2).sum() for p in params).item()
    # first-order prediction: Δ(sum n·p) = -h ‖∇θ L‖²  → the level set moves by that much
    assert abs(displacement + h * grad_sq) < 0.05 * h * grad_sq


def test_surface_and_distance_losses():
    p = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    t = torch.zeros(2, 3)
    assert surface_sample_loss(p, t).item() == 1.5
    assert distance_sample_loss(p, t, torch.tensor([-1.0, 1.0])).item() == 0.5


def test_slope_loss_matches_the_eikonal_loss_and_its_theta_gradient():
    """The slope term's central difference along the unit gradient equals the eikonal term
    (‖∇F‖ − 1)² to O(h²), in value and in θ-gradient (float64, h = 1e-4)."""
    from surfrec.field.losses import eikonal_loss, slope_loss

    m = _model()
    x = torch.rand(64, 3, dtype=torch.float64) - 0.5
    _, g = m.gradient(x)
    h = 1e-4
    hn = h * g / g.norm(dim=1, keepdim=True)
    m.zero_grad()
    s = slope_loss(m(x + hn), m(x - hn), h)
    s.backward()
    gs = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    e = eikonal_loss(m, x)
    e.backward()
    assert abs(float(s.detach()) - float(e.detach())) < 1e-6 * max(1.0, float(e.detach()))
    for a, p in zip(gs, m.parameters()):  # (the output bias has no gradient in either)
        b = p.grad if p.grad is not None else torch.zeros_like(p)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-8)
    # F = 2(‖x‖ − 0.3), slope 2 everywhere: (2 − 1)² = 1
    hn = h * x / x.norm(dim=1, keepdim=True)
    value = slope_loss(2 * ((x + hn).norm(dim=1) - 0.3), 2 * ((x - hn).norm(dim=1) - 0.3), h)
    assert abs(float(value) - 1.0) < 1e-6
