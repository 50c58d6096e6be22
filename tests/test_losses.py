import torch

from surfrec.levelset import project_to_level_set
from surfrec.losses import distance_sample_loss, sample_network, surface_sample_loss
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
