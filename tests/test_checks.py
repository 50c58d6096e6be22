import numpy as np
import trimesh

from surfrec.input.inspect import cloud_shape
from surfrec.settings import SupportConfig
from surfrec.surface.support import measure_support


def test_cloud_shape_detects_lines_and_planes():
    rng = np.random.default_rng(0)
    t = rng.random(100)
    line = np.stack([t, 2 * t, -t], axis=1) + 5e6  # UTM-like offset must not matter
    plane = np.stack([rng.random(100), rng.random(100), np.zeros(100)], axis=1)
    blob = rng.normal(size=(100, 3))
    assert cloud_shape(line)["collinear"] and cloud_shape(line)["planar"]
    assert cloud_shape(plane)["planar"] and not cloud_shape(plane)["collinear"]
    assert not cloud_shape(blob)["planar"]
    assert cloud_shape(np.ones((20, 3)))["identical"]


def test_phantom_share_is_high_for_open_scans():
    # (formerly checks.unsupported_fraction, superseded by support.measure_support)
    sphere = trimesh.creation.icosphere(subdivisions=4)
    full = np.asarray(trimesh.sample.sample_surface(sphere, 20_000, seed=0)[0])
    half = full[full[:, 2] > 0]
    cfg = SupportConfig(phantom_radius=5.0)
    assert measure_support(sphere.vertices, sphere.faces, full, cfg).phantom < 0.01
    assert 0.4 < measure_support(sphere.vertices, sphere.faces, half, cfg).phantom < 0.6


def test_missed_share_counts_points_the_mesh_misses():
    # (formerly checks.uncovered_fraction)
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    on = trimesh.sample.sample_surface(sphere, 3000, seed=0)[0]
    off = on * 1.5  # 0.5 away from the sphere, far beyond miss_radius spacings
    assert measure_support(sphere.vertices, sphere.faces, on).missed == 0.0
    assert abs(measure_support(sphere.vertices, sphere.faces, np.vstack([on, off])).missed - 0.5) < 1e-9
