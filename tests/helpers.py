"""Small shared test helpers (importable from any test module: pytest puts tests/ on sys.path)."""

import numpy as np
import torch


class Sphere(torch.nn.Module):
    """F(x) = ‖x‖ − r: an exact signed distance, with r a parameter (a stand-in model)."""

    def __init__(self, r: float) -> None:
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=1) - self.r


def naive_point_triangle_distance(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Distance from one point ``p`` (3,) to each triangle of ``tri`` (M, 3, 3).

    A different construction from the library's: project onto the plane, keep it when
    the barycentric coordinates are all non-negative, else take the nearest of the three
    edge segments.
    """
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    h = np.einsum("ij,ij->i", p - a, n)
    q = p - h[:, None] * n  # projection onto the plane
    # barycentric coordinates of q by signed sub-areas
    area = np.einsum("ij,ij->i", np.cross(b - a, c - a), n)
    u = np.einsum("ij,ij->i", np.cross(c - b, q - b), n) / area
    v = np.einsum("ij,ij->i", np.cross(a - c, q - c), n) / area
    w = 1.0 - u - v
    inside = (u >= 0) & (v >= 0) & (w >= 0)

    def seg(s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
        d = s1 - s0
        t = np.clip(np.einsum("ij,ij->i", p - s0, d) / np.einsum("ij,ij->i", d, d), 0.0, 1.0)
        return np.linalg.norm(p - (s0 + t[:, None] * d), axis=1)

    edge = np.minimum(np.minimum(seg(a, b), seg(b, c)), seg(c, a))
    return np.where(inside, np.abs(h), edge)


def perturbed_mlp():
    """A small float64 surfrec MLP (2×16), its weights nudged off the geometric init (seed 0)."""
    from surfrec.field.model import ImplicitMLP
    from surfrec.settings import ModelConfig

    torch.manual_seed(0)
    m = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def fit_data(points, config=None):
    """The loop's view of a scan, as the runner builds it: inspect → decide → prepare_fit.

    Returns (FitData, ShapeDecision, Scan)."""
    from surfrec.field.data import prepare_fit
    from surfrec.io import PointCloud
    from surfrec.input.inspect import inspect_scan
    from surfrec.settings import ReconstructionConfig
    from surfrec.surface.decide import fit_shape

    cfg = config or ReconstructionConfig()
    scan = inspect_scan(PointCloud.from_arrays(points), cfg.input, box=cfg.fit.box, seed=cfg.fit.seed, orient=True)
    shape = fit_shape(scan.orientation, cfg.mesh.surface, cfg.mesh.surface_config)
    return prepare_fit(scan, shape.open, cfg.fit, torch.device("cpu")), shape, scan
