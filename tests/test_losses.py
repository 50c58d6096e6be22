import torch

from surfrec.levelset import project_to_level_set
from surfrec.losses import distance_sample_loss, sample_network, surface_sample_loss
from surfrec.model import ImplicitMLP, ModelConfig


def _model() -> ImplicitMLP:
    torch.manual_seed(0)
    m = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def test_sample_network_value_is_p_star():
    m = _model()
    p = torch.rand(50, 3, dtype=torch.float64) - 0.5
    assert torch.allclose(sample_network(m, p), p)


def test_sample_network_theta_gradient_matches_finite_differences():
    """d p(θ)/dθ must equal the motion of the level set: the projection of a fixed p* onto
    the perturbed network's level set moves by −g/‖g‖² ∂F/∂θ δθ to first order."""
    m = _model()
    seeds = torch.rand(20, 3, dtype=torch.float64) * 1.2 - 0.6
    proj = project_to_level_set(m, seeds, 0.0, max_steps=30, tol=1e-12, box=None)
    p_star = proj.points[proj.converged]
    target = torch.randn_like(p_star)
    loss = lambda pts: (pts * target).sum()  # any smooth function of the samples

    m.zero_grad()
    loss(sample_network(m, p_star)).backward()
    params = list(m.parameters())
    direction = [torch.randn_like(p) for p in params]
    analytic = sum((p.grad * d).sum() for p, d in zip(params, direction)).item()

    # finite differences of the sample network's value along the same direction: the
    # sample point follows the level set along the (fixed) normal g of p*
    h = 1e-6
    with torch.no_grad():
        f0 = m(p_star)
        for p, d in zip(params, direction):
            p.add_(h * d)
        f_plus = m(p_star)
        for p, d in zip(params, direction):
            p.sub_(h * d)
    _, g = m.gradient(p_star)
    moved = p_star - ((f_plus - f0) / (g * g).sum(dim=1)).unsqueeze(1) * g
    numeric = (loss(moved) - loss(p_star)).item() / h
    assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(numeric))


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
