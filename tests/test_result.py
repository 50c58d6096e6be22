import numpy as np
import pytest
import torch

from surfrec.config import ExtractConfig
from surfrec.errors import EmptyLevelSetError, InputError
from helpers import Sphere
from surfrec.fitting import get_config
from surfrec.normalize import Normalization
from surfrec.refine import RefineConfig
from surfrec.pipeline import extract_mesh
from surfrec.result import FitResult, load_model, save_model


def _result(r: float) -> FitResult:
    return FitResult(model=Sphere(r), normalization=Normalization(center=np.array([10.0, 0.0, -5.0]), scale=2.0),
                     config=get_config("fast"), history={}, seconds=0.0, steps=0, data_points=None)


def test_mesh_is_in_input_coordinates_and_closed():
    mesh = extract_mesh(_result(0.5), resolution=48, device="cpu")
    assert mesh.is_watertight and mesh.volume > 0
    radii = np.linalg.norm(mesh.vertices - np.array([10.0, 0.0, -5.0]), axis=1)
    assert np.allclose(radii, 1.0, atol=0.02)  # 0.5 normalized units × scale 2


def test_surface_reaching_the_box_is_capped():
    mesh = extract_mesh(_result(1.0), resolution=32, device="cpu")  # the sphere pokes out of the box
    assert mesh.is_watertight and len(mesh.faces) > 0
    assert not extract_mesh(_result(1.0), resolution=32, device="cpu", close_at_box=False).is_watertight


@pytest.mark.parametrize("level", [-5.0, 5.0])
def test_empty_level_set_is_an_error(level):
    with pytest.raises(EmptyLevelSetError, match="never crosses"):
        extract_mesh(_result(0.5), resolution=32, level=level, device="cpu")


def test_model_file_round_trip_and_refusals(tmp_path):
    from surfrec.fitting import fit

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 3))
    res = fit(pts / np.linalg.norm(pts, axis=1, keepdims=True), preset="fast", iterations=3, n_samples=256,
              batch_points=256, device="cpu", threads=1)
    path = save_model(res, tmp_path / "m.pt")
    back = load_model(path)
    x = torch.rand(100, 3)
    assert torch.equal(back.model(x), res.model(x))
    assert back.config == res.config and np.allclose(back.normalization.center, res.normalization.center)
    assert back.config.refine.max_neighbors == 48  # the fast preset's refinement settings travel along
    payload = torch.load(path, weights_only=True)
    old = dict(payload, config={k: v for k, v in payload["config"].items() if k != "refine"})
    torch.save(old, tmp_path / "old.pt")  # a file from before the refinement existed
    assert load_model(tmp_path / "old.pt").config.refine == RefineConfig()
    older = dict(payload, config={k: v for k, v in payload["config"].items() if k != "extract"})
    torch.save(older, tmp_path / "older.pt")  # a file from before the mesh settings were stored
    assert load_model(tmp_path / "older.pt").config.extract == ExtractConfig()
    session11 = dict(payload, config=dict(payload["config"]))  # before taper_spacing and neighbors existed
    session11["config"]["refine"] = {k: v for k, v in payload["config"]["refine"].items() if k != "taper_spacing"}
    session11["config"]["refine"]["max_spacing"] = 1.5
    session11["config"]["extract"] = {k: v for k, v in payload["config"]["extract"].items() if k != "neighbors"}
    torch.save(session11, tmp_path / "s11.pt")
    cfg = load_model(tmp_path / "s11.pt").config
    assert (cfg.refine.max_spacing, cfg.refine.taper_spacing, cfg.extract.neighbors) == (1.5, 3.0, 0)
    payload["format_version"] = 999
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(InputError, match="format 999"):
        load_model(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")


def test_extract_settings_come_from_the_model_config():
    res = _result(0.5)
    res.config.extract = ExtractConfig(resolution=24, method="dense")
    stored = extract_mesh(res, device="cpu")
    explicit = extract_mesh(_result(0.5), resolution=24, method="dense", device="cpu")
    assert np.array_equal(stored.vertices, explicit.vertices) and np.array_equal(stored.faces, explicit.faces)
    assert len(extract_mesh(res, resolution=32, device="cpu").vertices) > len(stored.vertices)  # override wins
    with pytest.raises(ValueError, match="resolution"):
        ExtractConfig(resolution=2)


def test_model_file_keeps_the_surface_decision(tmp_path):
    """save_model stores the surface decision (report["surface"] of extract_mesh); files
    without it (older, or saved before meshing) load with surface None."""
    from surfrec.fitting import fit

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(2000, 3))
    res = fit(pts / np.linalg.norm(pts, axis=1, keepdims=True), preset="fast", iterations=3, n_samples=256,
              batch_points=256, device="cpu", threads=1)
    report: dict = {}
    extract_mesh(res, resolution=32, device="cpu", refine=False, report=report)
    assert report["surface"]["mode"] == "auto" and "phantom_closed" in report["surface"]
    path = save_model(res, tmp_path / "m.pt", surface=report["surface"])
    assert load_model(path).surface == report["surface"]
    payload = torch.load(path, weights_only=True)
    del payload["surface"]
    torch.save(payload, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").surface is None
    with pytest.raises(ValueError, match="surface"):
        save_model(res, tmp_path / "bad.pt", surface={"phantom": np.float32(0.5)})
    assert not (tmp_path / "bad.pt").exists()
