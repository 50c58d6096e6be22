import numpy as np
import trimesh

from surfrec.checks import cloud_shape, summarize, unsupported_fraction


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


def test_unsupported_fraction_is_high_for_open_scans():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    full = np.asarray(trimesh.sample.sample_surface(sphere, 20_000, seed=0)[0])
    half = full[full[:, 2] > 0]
    spacing = summarize(full)["mean_spacing"]
    assert unsupported_fraction(sphere, full, 5 * spacing) < 0.01
    assert 0.4 < unsupported_fraction(sphere, half, 5 * spacing) < 0.6


def test_uncovered_fraction_counts_points_the_mesh_misses():
    import trimesh

    from surfrec.checks import uncovered_fraction

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    on = trimesh.sample.sample_surface(sphere, 3000, seed=0)[0]
    off = on * 1.5  # 0.5 away from the sphere
    assert uncovered_fraction(sphere, on, 0.05) == 0.0
    assert abs(uncovered_fraction(sphere, np.vstack([on, off]), 0.05) - 0.5) < 1e-9
    assert uncovered_fraction(trimesh.Trimesh(), on, 0.05) == 1.0
