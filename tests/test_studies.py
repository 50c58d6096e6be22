"""Tests of the studies (surfrec/studies): quick runs write their outputs; unit tests of
the alternative projection methods, the alternative losses and the 2-D wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surfrec.field.model import ImplicitMLP
from surfrec.settings import ModelConfig
from surfrec.studies import STUDIES, common, get_study
from surfrec.studies.curves import PlanarField, curve_points, fit_curve
from surfrec.studies.losses import igr_loss, pull_loss
from surfrec.studies.projection import gd_projection, lbfgs_projection, newton_projection, tune_gd_step
from surfrec.studies.residuals import classify_failures


def sphere_sdf(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=1) - 0.5


def _seeds(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g) * 1.6 - 0.8 + 0.05


# ------------------------------------------------------------ projection methods
def test_gd_reaches_sphere_level_set():
    tr = gd_projection(sphere_sdf, _seeds(), level=0.1, steps=60, step_size=0.5)
    r = tr.final_residuals()
    assert (r < 1e-5).mean() == 1.0
    p = tr.points
    assert torch.allclose(p.norm(dim=1), torch.full((len(p),), 0.6), atol=1e-4)


def test_lbfgs_reaches_sphere_level_set():
    tr = lbfgs_projection(sphere_sdf, _seeds(), level=0.0, steps=30)
    assert np.median(tr.final_residuals()) < 1e-5
    assert (tr.final_residuals() < 1e-3).mean() == 1.0
    # every closure call evaluates all points
    assert tr.evaluations[-1] % 200 == 0


def test_newton_trace_counts_only_active_points():
    tr = newton_projection(sphere_sdf, _seeds(), level=0.0, steps=10)
    assert (tr.final_residuals() < 1e-5).all()
    # on an exact SDF one step lands on the sphere: 200 evaluations, then 200 to see it
    assert tr.evaluations[-1] == 400
    t, e = tr.first_reaching(1e-5, 0.9)
    assert e == 200 and t >= 0


def test_gd_step_tuning_prefers_newton_like_step_on_sdf():
    eta, rows = tune_gd_step(sphere_sdf, _seeds(seed=1), 0.0, steps=5, grid=(0.1, 1.0, 3.0))
    assert eta == 1.0  # ‖∇F‖ = 1: η = 1 is exactly the Newton step
    assert len(rows) == 3


def test_classify_failures_detects_oscillation_and_zero_gradient():
    steps, m = 12, 4
    r = np.full((steps + 1, m), 1e-8)
    r[:, 0] = 0.1 * (-1.0) ** np.arange(steps + 1)  # flips sign every step, does not shrink
    r[:, 1] = 0.2  # stuck, same sign
    r[:, 2] = 0.3
    g2 = np.ones((steps + 1, m))
    g2[3:, 2] = 0.0
    hist = {"r": r, "g2": g2, "left": np.array([False, False, False, True])}
    reason = classify_failures(hist, tol=1e-5)
    assert list(reason) == ["oscillation", "slow", "zero gradient", "left box"]


# ------------------------------------------------------------------ 2-D wrapper
def test_planar_field_gradient_is_restricted_gradient():
    torch.manual_seed(0)
    mlp = ImplicitMLP(ModelConfig(hidden_dim=32, n_hidden_layers=2))
    field = PlanarField(mlp)
    x = torch.rand(50, 2) * 2 - 1
    f, g = field.value_and_grad(x)
    assert f.shape == (50,) and g.shape == (50, 2)
    # reference: autograd of the restricted function (x, y) -> F(x, y, 0)
    xr = x.clone().requires_grad_(True)
    fr = mlp(torch.cat([xr, torch.zeros(50, 1)], dim=1))
    (gr,) = torch.autograd.grad(fr.sum(), xr)
    assert torch.allclose(f, fr.detach(), atol=1e-6)
    assert torch.allclose(g, gr, atol=1e-5)
    f2, g2 = field.gradient(x)
    assert torch.allclose(g2, gr, atol=1e-5)


def test_planar_field_with_analytic_function():
    class Analytic(torch.nn.Module):  # F(x, y, z) = x² + 2y² + 3z² + xz - 0.25
        def forward(self, p):
            return p[:, 0] ** 2 + 2 * p[:, 1] ** 2 + 3 * p[:, 2] ** 2 + p[:, 0] * p[:, 2] - 0.25

        def value_and_grad(self, p):
            f = self(p)
            g = torch.stack([2 * p[:, 0] + p[:, 2], 4 * p[:, 1], 6 * p[:, 2] + p[:, 0]], dim=1)
            return f, g

        def gradient(self, p, create_graph=False):
            return self.value_and_grad(p)

    x = torch.rand(20, 2)
    f, g = PlanarField(Analytic()).value_and_grad(x)
    # restricted to z = 0: F = x² + 2y² − 0.25, ∇ = (2x, 4y); the 3-D ∂/∂x has the extra z term = 0
    assert torch.allclose(f, x[:, 0] ** 2 + 2 * x[:, 1] ** 2 - 0.25)
    assert torch.allclose(g, torch.stack([2 * x[:, 0], 4 * x[:, 1]], 1))


def test_planar_field_rejects_3d_points():
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        PlanarField(ImplicitMLP(ModelConfig(hidden_dim=8, n_hidden_layers=1)))(torch.zeros(3, 3))


def test_projection_works_in_2d():
    from surfrec.field.levelset import project_to_level_set

    torch.manual_seed(0)
    field = PlanarField(ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2)))
    proj = project_to_level_set(field, torch.rand(100, 2) * 1.6 - 0.8, 0.0, max_steps=10, tol=1e-5)
    assert proj.points.shape == (100, 2)
    inside = ~proj.left_box
    assert float(inside.float().mean()) > 0.5
    assert bool(proj.converged[inside].all())


def test_fit_curve_runs_and_lowers_error():
    pts, truth = curve_points("two_circles", 120, seed=0)
    field, snaps = fit_curve(pts, steps=15, n_samples=256, quick=True, snapshots=(0, 15))
    assert [s for s, _ in snaps] == [0, 15]
    with torch.no_grad():
        after = field(torch.from_numpy(pts.astype(np.float32))).abs().mean()
        field.load_state_dict(snaps[0][1])
        before = field(torch.from_numpy(pts.astype(np.float32))).abs().mean()
    assert after < before


# ----------------------------------------------------------- alternative losses
def test_pull_and_igr_losses_vanish_on_exact_sdf():
    class Sphere(torch.nn.Module):
        def forward(self, x):
            return x.norm(dim=1) - 0.5

        def gradient(self, x, create_graph=False):
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                f = self(x)
                (g,) = torch.autograd.grad(f.sum(), x, create_graph=create_graph)
            return f, g

    m = Sphere()
    q = torch.randn(64, 3)
    q = q / q.norm(dim=1, keepdim=True) * torch.rand(64, 1).add(0.2)
    targets = q / q.norm(dim=1, keepdim=True) * 0.5  # nearest surface point
    assert pull_loss(m, q, targets).item() < 1e-10
    on = targets
    assert igr_loss(m, on, q).item() < 1e-6


def test_pull_loss_has_parameter_gradients():
    mlp = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2))
    q = torch.rand(32, 3) - 0.5
    pull_loss(mlp, q, torch.zeros(32, 3)).backward()
    assert all(p.grad is not None for p in mlp.parameters())


# --------------------------------------------------------------- study runs
def test_study_registry_matches_cli():
    from surfrec.cli.study_cmd import add_arguments
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["curves", "--quick", "--seed", "3"])
    assert args.name == "curves" and args.quick and args.seed == 3
    assert set(STUDIES) == {"projection", "residuals", "activation", "seeds", "level", "losses", "curves"}
    for name in STUDIES:
        assert callable(get_study(name))


@pytest.fixture(scope="module")
def tiny_cases():
    return [common.sphere_case(n_points=400)]


def _check_outputs(report, csv_names):
    assert report.is_file()
    text = report.read_text()
    assert text.startswith("# Study")
    for png in report.parent.glob("*.png"):
        assert f"({png.name})" in text
        assert png.stat().st_size < 400_000
    assert list(report.parent.glob("*.png"))
    for c in csv_names:
        lines = (report.parent / c).read_text().splitlines()
        assert len(lines) >= 2


@pytest.mark.parametrize("name,csvs", [
    ("projection", ["projection.csv", "gd_tuning.csv"]),
    ("residuals", ["residuals.csv", "failures.csv"]),
])
def test_quick_study_writes_report(tmp_path, tiny_cases, name, csvs):
    import csv

    report = get_study(name)(tiny_cases, tmp_path / name, quick=True, seed=0)
    _check_outputs(report, csvs)
    with open(report.parent / csvs[0], newline="") as fh:
        rows = list(csv.DictReader(fh))
    if name == "projection":  # docs/studies.md: Newton needs 3-4 evaluations per seed to 90% < 1e-5
        newton = next(r for r in rows if r["method"] == "newton")
        assert float(newton["evals_to_90%<1e-05"]) / float(newton["seeds"]) <= 5.0
        assert float(newton["never_1e-05"]) <= 0.01
    else:  # docs/studies.md: after 10 steps ≥ 99.7% of the samples are below 1e-5
        ten = next(r for r in rows if r["steps"] == "10")
        assert float(ten["share<1e-5"]) >= 0.99


def test_quick_curves_study_writes_report(tmp_path):
    report = get_study("curves")(["heart"], tmp_path / "curves", quick=True, seed=0)
    _check_outputs(report, ["curves.csv"])
    assert "heart" in (tmp_path / "curves" / "curves.csv").read_text()


@pytest.mark.parametrize("name,csvs", [
    ("seeds", ["seeds.csv"]),
    ("level", ["level.csv", "fit_level.csv"]),
    ("losses", ["losses.csv"]),
])
def test_quick_study_writes_report_more(tmp_path, tiny_cases, name, csvs):
    report = get_study(name)(tiny_cases, tmp_path / name, quick=True, seed=0)
    _check_outputs(report, csvs)


@pytest.mark.slow  # about 10 s on an idle machine (16 small fits)
def test_quick_activation_study_writes_report(tmp_path, tiny_cases):
    report = get_study("activation")(tiny_cases, tmp_path / "activation", quick=True, seed=0)
    _check_outputs(report, ["activation.csv", "stuck.csv"])


def test_cli_study_quick(tmp_path, tiny_cases, capsys):
    from surfrec.cli.main import main

    cases = tmp_path / "cases"
    cases.mkdir()
    np.savetxt(cases / "sphere.xyz", tiny_cases[0].points)
    tiny_cases[0].gt.export(cases / "sphere.gt.ply")
    code = main(["study", "residuals", "--quick", "--cases", str(cases), "--out", str(tmp_path / "r"),
                 "--device", "cpu"])
    assert code == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "sphere (400 pts)" in text
    assert "report.md" in capsys.readouterr().out


def test_cli_study_bad_cases_folder(tmp_path, capsys):
    from surfrec.cli.main import main

    code = main(["study", "residuals", "--quick", "--cases", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "cases folder not found" in capsys.readouterr().err
