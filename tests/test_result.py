import numpy as np
import pytest
import torch

from helpers import Sphere
from surfrec.errors import EmptyLevelSetError, InputError
from surfrec.input.normalize import Normalization
from surfrec.result import FitResult, load_model, save_model
from surfrec.run import extract_mesh
from surfrec.settings import MeshConfig, RefineConfig, get_config


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


def _format_1(config: dict) -> dict:
    """A stage-layout config dict in the flat layout of model files of format 1."""
    mesh = dict(config["mesh"])
    refine = mesh.pop("refine_config")
    surface = dict(mesh.pop("surface_config"))
    inp = dict(config["input"])
    for k in ("normal_k", "orient_k", "closure_area_clip"):
        surface[k] = inp.pop(k)
    extract = {**mesh, "max_data_points": inp.pop("max_data_points"), "surface_config": surface}
    refine = {**refine, "noise_k": inp.pop("noise_k"), "noise_samples": inp.pop("noise_samples"), "seed": 0}
    for k in ("stray_k", "stray_ratio", "stray_reference", "merge_tolerance", "spacing_samples"):
        inp.pop(k)  # settings that format 1 did not have
    return {**config["fit"], **inp, "extract": extract, "refine": refine}


def test_model_file_round_trip_and_refusals(tmp_path):
    from surfrec.run import fit

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 3))
    res = fit(pts / np.linalg.norm(pts, axis=1, keepdims=True), preset="fast", iterations=3, n_samples=256,
              batch_points=256, device="cpu", threads=1)
    path = save_model(res, tmp_path / "m.pt")
    back = load_model(path)
    x = torch.rand(100, 3)
    assert torch.equal(back.model(x), res.model(x))
    assert back.config == res.config and np.allclose(back.normalization.center, res.normalization.center)
    assert back.config.mesh.refine_config.max_neighbors == 48  # the fast preset's refinement settings travel along
    assert back.input == res.input and back.shape == res.shape and back.data_spacing() == res.data_spacing()
    payload = torch.load(path, weights_only=True)
    flat = _format_1(payload["config"])
    v1 = dict(payload, format_version=1, config=flat, input=None)
    torch.save(v1, tmp_path / "v1.pt")  # the layout of format 1 reads as the same settings
    old = load_model(tmp_path / "v1.pt")
    assert old.config == res.config and old.input is None and old.data_spacing() == pytest.approx(res.data_spacing())
    torch.save(dict(v1, config={k: v for k, v in flat.items() if k != "refine"}), tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").config.mesh.refine_config == RefineConfig()  # before the refinement
    torch.save(dict(v1, config={k: v for k, v in flat.items() if k != "extract"}), tmp_path / "older.pt")
    older = load_model(tmp_path / "older.pt").config.mesh  # before the mesh settings were stored: the defaults
    assert older == MeshConfig(refine_config=older.refine_config) and older.refine_config.max_neighbors == 48
    before_taper = dict(v1, config=dict(flat))  # before taper_spacing and neighbors existed
    before_taper["config"]["refine"] = {k: v for k, v in flat["refine"].items() if k != "taper_spacing"}
    before_taper["config"]["refine"]["max_spacing"] = 1.5
    before_taper["config"]["extract"] = {k: v for k, v in flat["extract"].items() if k != "neighbors"}
    torch.save(before_taper, tmp_path / "taper.pt")
    cfg = load_model(tmp_path / "taper.pt").config.mesh
    assert (cfg.refine_config.max_spacing, cfg.refine_config.taper_spacing, cfg.neighbors) == (1.5, 3.0, 0)
    payload["format_version"] = 999
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(InputError, match="format 999"):
        load_model(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")


def test_extract_settings_come_from_the_model_config():
    res = _result(0.5)
    res.config.mesh = MeshConfig(resolution=24, method="dense")
    stored = extract_mesh(res, device="cpu")
    explicit = extract_mesh(_result(0.5), resolution=24, method="dense", device="cpu")
    assert np.array_equal(stored.vertices, explicit.vertices) and np.array_equal(stored.faces, explicit.faces)
    assert len(extract_mesh(res, resolution=32, device="cpu").vertices) > len(stored.vertices)  # override wins
    with pytest.raises(ValueError, match="resolution"):
        MeshConfig(resolution=2)


def test_model_file_keeps_the_surface_decision(tmp_path):
    """save_model stores the surface decision of the last meshing (mesh_stages' report);
    files without it (older, or saved before meshing) load with surface None."""
    from surfrec.run import fit, mesh_stages
    from surfrec.surface.decide import SurfaceDecision

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(2000, 3))
    res = fit(pts / np.linalg.norm(pts, axis=1, keepdims=True), preset="fast", iterations=3, n_samples=256,
              batch_points=256, device="cpu", threads=1)
    _, report = mesh_stages(res, MeshConfig(resolution=32, refine=False), device="cpu")
    assert isinstance(report.surface, SurfaceDecision)
    assert report.surface.mode == "auto" and report.surface.phantom_closed is not None
    res.surface = report.surface
    path = save_model(res, tmp_path / "m.pt")
    assert load_model(path).surface == report.surface
    payload = torch.load(path, weights_only=True)
    del payload["surface"]
    torch.save(payload, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").surface is None
