import numpy as np
import pytest
import torch

from surfrec.evaluation.residuals import plot_residuals, residual_report
from surfrec.settings import get_config
from surfrec.input.normalize import Normalization
from surfrec.result import FitResult


class SphereSDF(torch.nn.Module):
    """An analytic SDF with a parameter, so it can stand in for a fitted network."""

    def __init__(self, r: float = 0.5) -> None:
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=1) - self.r


@pytest.fixture
def sphere_result() -> FitResult:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(20000, 3))
    pts = 0.5 * pts / np.linalg.norm(pts, axis=1, keepdims=True)
    return FitResult(model=SphereSDF(0.5), normalization=Normalization.identity(),
                     config=get_config("fast"), history={}, seconds=0.0, steps=0,
                     data_points=pts.astype(np.float32))


@pytest.mark.parametrize("level", [0.0, 0.1])
def test_residual_report_on_analytic_sdf_converges(sphere_result, level, tmp_path):
    rep = residual_report(sphere_result, steps=(0, 3, 10), level=level, n_seeds=3000, tol=1e-6)
    rows = {r["steps"]: r for r in rep.rows}
    assert rows[0]["converged"] < 0.01  # seeds are not on the level set
    assert rows[3]["converged"] > 0.99 and rows[10]["median"] < 1e-6
    # samples of the c-level set of an exact SDF lie at distance |c| from the data
    assert rows[10]["dist_median"] == pytest.approx(abs(level), abs=0.01)
    png = plot_residuals(rep, tmp_path / "res.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Newton projection" in rep.format()


def test_residual_report_validates_steps(sphere_result):
    with pytest.raises(ValueError, match="steps"):
        residual_report(sphere_result, steps=())
