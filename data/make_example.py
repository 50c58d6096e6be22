"""Generate the repository's example scan: ``data/example.xyz`` and ``data/example.gt.ply``.

Run from anywhere: ``python data/make_example.py`` (add ``--help`` for options). The output
is deterministic for a given seed and library versions.

The shape is a mug built as a signed distance function: a rounded cylinder with a cavity
(smooth subtraction), blended with a torus handle (smooth union); so it is closed, of genus
one, with a concavity, thin-ish walls and smooth fillets. It is tilted and placed in its
own coordinates (box centre (12, -3, 40), largest side about 8 units), *not* normalized, so
that a reconstruction can be checked to come back in the scan's coordinates.

The ground truth is the zero level set extracted with marching cubes on a fine grid, then
simplified with quadric decimation to keep the file small. The scan is a uniform (by area)
random sample of that mesh with isotropic Gaussian noise of 0.2% of the box's largest side.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import trimesh

from surfrec.io import save_mesh, save_points

log = logging.getLogger("make_example")

#: Where the example's bounding box is centred, in scan units.
CENTER = np.array([12.0, -3.0, 40.0])
#: Noise standard deviation as a fraction of the largest side of the box.
NOISE_FRACTION = 0.002

# Mug dimensions in its local frame (z up), in scan units.
BODY_RADIUS = 2.6  # outer radius of the cup
BODY_HALF_HEIGHT = 3.0
BODY_ROUNDING = 0.5  # radius of the rounded rim and bottom edge
CAVITY_RADIUS = 1.9  # wall thickness: 0.7
CAVITY_BOTTOM = 0.2  # z of the cavity floor: a heavy mug, its base is 3.2 thick
CAVITY_ROUNDING = 0.4
HANDLE_CENTER = (BODY_RADIUS + 0.9, 0.0, 0.1)  # torus centre (x, y, z), in the xz plane
HANDLE_MAJOR = 1.3
HANDLE_MINOR = 0.38
BLEND = 0.25  # smoothing radius of the handle/body union and of the rim


def _rounded_cylinder(p: np.ndarray, radius: float, z0: float, z1: float, r: float) -> np.ndarray:
    """Signed distance (M,) to a z-axis cylinder from z0 to z1 with edges rounded by r."""
    half = 0.5 * (z1 - z0)
    dx = np.hypot(p[:, 0], p[:, 1]) - radius + r
    dz = np.abs(p[:, 2] - 0.5 * (z0 + z1)) - half + r
    outside = np.hypot(np.maximum(dx, 0.0), np.maximum(dz, 0.0))
    return np.minimum(np.maximum(dx, dz), 0.0) + outside - r


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (a fillet of radius about k)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def mug_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (approximate near blends) of the mug in its local frame.

    Parameters
    ----------
    p : (M, 3) float
        Query points in the local frame (cup axis along z, handle towards +x).

    Returns
    -------
    (M,) float
        Negative inside, positive outside.
    """
    body = _rounded_cylinder(p, BODY_RADIUS, -BODY_HALF_HEIGHT, BODY_HALF_HEIGHT, BODY_ROUNDING)
    cavity = _rounded_cylinder(
        p, CAVITY_RADIUS, CAVITY_BOTTOM, BODY_HALF_HEIGHT + 2.0, CAVITY_ROUNDING
    )
    cup = -_smooth_min(-body, cavity, BLEND)  # smooth subtraction: max(body, -cavity)
    cx, cy, cz = HANDLE_CENTER
    ring = np.hypot(p[:, 0] - cx, p[:, 2] - cz) - HANDLE_MAJOR
    handle = np.hypot(ring, p[:, 1] - cy) - HANDLE_MINOR
    return _smooth_min(cup, handle, BLEND)


def _pose() -> np.ndarray:
    """(3, 3) rotation of the mug: tilted 20 degrees about x, then turned 35 about z."""
    ax, az = np.radians(20.0), np.radians(35.0)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def build_mesh(spacing: float = 0.04, faces: int = 32_000) -> trimesh.Trimesh:
    """The ground-truth mesh in scan coordinates.

    Parameters
    ----------
    spacing : float
        Marching-cubes grid step in scan units (before decimation).
    faces : int
        Target number of triangles after quadric decimation.

    Returns
    -------
    trimesh.Trimesh
        Closed, outward-oriented, genus-one mesh whose bounding box is centred at CENTER.
    """
    import open3d as o3d
    from skimage.measure import marching_cubes

    lo = np.array([-BODY_RADIUS, -BODY_RADIUS, -BODY_HALF_HEIGHT]) - 0.3
    hi = np.array([HANDLE_CENTER[0] + HANDLE_MAJOR + HANDLE_MINOR, BODY_RADIUS,
                   BODY_HALF_HEIGHT]) + 0.3
    axes = [np.arange(a, b + spacing, spacing) for a, b in zip(lo, hi)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    values = mug_sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])
    verts, tris, _, _ = marching_cubes(values, level=0.0, spacing=(spacing,) * 3)
    verts += lo
    log.info("marching cubes: %d vertices, %d faces", len(verts), len(tris))

    fine = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(verts.astype(np.float64)),
        o3d.utility.Vector3iVector(tris.astype(np.int32)),
    )
    coarse = fine.simplify_quadric_decimation(target_number_of_triangles=faces)
    mesh = trimesh.Trimesh(np.asarray(coarse.vertices), np.asarray(coarse.triangles))
    if mesh.volume < 0:
        mesh.invert()
    mesh.apply_transform(np.block([[_pose(), np.zeros((3, 1))], [np.zeros((1, 3)), 1.0]]))
    mesh.apply_translation(CENTER - mesh.bounds.mean(axis=0))
    if not mesh.is_watertight or mesh.euler_number != 0:
        raise RuntimeError(
            f"the example mesh should be closed with genus 1 (watertight {mesh.is_watertight}, "
            f"Euler number {mesh.euler_number}); try another --spacing"
        )
    return mesh


def simulate_scan(mesh: trimesh.Trimesh, n_points: int, seed: int) -> np.ndarray:
    """Points (n_points, 3) sampled uniformly on ``mesh`` plus Gaussian noise.

    The noise is isotropic with sigma = NOISE_FRACTION x the largest side of the box.
    """
    rng = np.random.default_rng(seed)
    points, _ = trimesh.sample.sample_surface(mesh, n_points, seed=rng)
    sigma = NOISE_FRACTION * float(mesh.extents.max())
    return np.asarray(points) + rng.normal(scale=sigma, size=points.shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write example.xyz and example.gt.ply (default: data/)")
    parser.add_argument("--points", type=int, default=20_000, help="scan size (default: 20000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    mesh = build_mesh()
    points = simulate_scan(mesh, args.points, args.seed)
    gt_path = save_mesh(mesh, args.out_dir / "example.gt.ply")
    scan_path = save_points(args.out_dir / "example.xyz", points, precision=7)
    log.info("wrote %s: %d vertices, %d faces, box %s .. %s (size %s), area %.2f, volume %.2f",
             gt_path, len(mesh.vertices), len(mesh.faces), np.round(mesh.bounds[0], 3),
             np.round(mesh.bounds[1], 3), np.round(mesh.extents, 3), mesh.area, mesh.volume)
    log.info("wrote %s: %d points, noise sigma %.4g", scan_path, len(points),
             NOISE_FRACTION * mesh.extents.max())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
