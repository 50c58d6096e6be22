"""Small shared test helpers (importable from any test module: pytest puts tests/ on sys.path)."""

import torch


class Sphere(torch.nn.Module):
    """F(x) = ‖x‖ − r: an exact signed distance, with r a parameter (a stand-in model)."""

    def __init__(self, r: float) -> None:
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=1) - self.r
