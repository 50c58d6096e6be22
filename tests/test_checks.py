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
