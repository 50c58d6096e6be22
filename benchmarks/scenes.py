"""Synthetic real-world scans: depth-camera and lidar views of scenes (confirmation cases).

The real open scans the open-scan targets name (a face, terrain, a stereo table scene, a
Kinect room view, an object on a base) are not here. These generated stand-ins have what
the bench's single views do not: perspective cameras whose point density falls with the
range (10–100× across a scan), noise that grows with depth², mixed ("flying") pixels at
depth edges, several surfaces at different depths, and an object standing on an open base.
Nothing here was used to choose a threshold: they are confirmation cases.

Each scene is a list of trimesh meshes (the ground truth) and one or more pinhole cameras;
:func:`render` casts one ray per pixel with Open3D's ``RaycastingScene``. Usage::

    python benchmarks/scenes.py OUT_DIR          # writes OUT_DIR/NAME.xyz for every scene
    python benchmarks/scenes.py OUT_DIR --truth  # and the true surfaces' cover of their scans

and :func:`scene_points` from ``real_scans.py --scenes`` and ``mesh_variants.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent / "shared" / "data" / "bench"


@dataclass
class Camera:
    """A pinhole depth camera."""

    eye: tuple[float, float, float]
    """Position (scene units)."""
    target: tuple[float, float, float]
    """Point the optical axis passes through."""
    width: int = 200
    """Pixels across."""
    height: int = 150
    """Pixels down."""
    fov_deg: float = 58.0
    """Horizontal field of view (Kinect v1: 58°)."""
    noise_a: float = 0.0
    """Depth noise σ(z) = noise_a + noise_b · z² (scene units)."""
    noise_b: float = 0.0
    """See ``noise_a``."""
    flying: float = 0.0
    """Share of depth-edge pixels whose depth is a random mix of the two sides (mixed pixels)."""
    speckle: float = 0.0
    """Share of pixels given a uniformly random depth along their ray within the scene's range."""
    max_range: float = np.inf
    """Hits farther than this are dropped."""


def _rays(cam: Camera) -> np.ndarray:
    """(H, W, 6) ray origins and unit directions."""
    eye, target = np.asarray(cam.eye, float), np.asarray(cam.target, float)
    fwd = (target - eye) / np.linalg.norm(target - eye)
    up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.95 else np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    f = 0.5 * cam.width / np.tan(np.radians(cam.fov_deg) / 2)
    u = (np.arange(cam.width) + 0.5 - cam.width / 2) / f
    v = (np.arange(cam.height) + 0.5 - cam.height / 2) / f
    d = fwd + u[None, :, None] * right + v[:, None, None] * down
    d /= np.linalg.norm(d, axis=2, keepdims=True)
    return np.concatenate([np.broadcast_to(eye, d.shape), d], axis=2), fwd


def render(meshes: list, cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """(M, 3) points one camera sees of ``meshes`` (trimesh), with its noise model."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    for m in meshes:
        scene.add_triangles(o3d.core.Tensor(np.asarray(m.vertices, np.float32)),
                            o3d.core.Tensor(np.asarray(m.faces, np.uint32)))
    rays, fwd = _rays(cam)
    t = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))["t_hit"].numpy().astype(float)
    d = rays[..., 3:]
    cos = d @ fwd
    z = t * cos  # depth along the optical axis
    hit = np.isfinite(t) & (t <= cam.max_range)
    zf = np.where(hit, z, np.nan)
    if cam.flying > 0:  # mixed pixels where the depth jumps between 4-neighbours
        pad = np.pad(zf, 1, constant_values=np.nan)
        nb = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]])
        far = np.nanmax(np.where(np.isfinite(nb), nb, -np.inf), axis=0)
        edge = hit & np.isfinite(far) & (far - zf > 0.05 * zf)
        mix = edge & (rng.random(zf.shape) < cam.flying)
        zf = np.where(mix, zf + rng.random(zf.shape) * (far - zf), zf)
    sigma = cam.noise_a + cam.noise_b * zf ** 2
    zf = zf + np.nan_to_num(sigma) * rng.standard_normal(zf.shape)
    if cam.speckle > 0:
        lo, hi = np.nanmin(zf), np.nanmax(zf)
        sp = hit & (rng.random(zf.shape) < cam.speckle)
        zf = np.where(sp, lo + rng.random(zf.shape) * (hi - lo), zf)
    pts = rays[..., :3] + d * (zf / cos)[..., None]
    return pts[hit]


def _box(lo, hi):
    import trimesh

    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return trimesh.creation.box(extents=hi - lo, transform=trimesh.transformations.translation_matrix((lo + hi) / 2))


def _bench_mesh(name: str, size: float, base_center) -> "object":
    """A bench ground-truth mesh scaled to ``size`` (largest side) standing on z = base_center[2]."""
    import trimesh

    m = trimesh.load(BENCH / f"{name}.gt.ply", process=False)
    m.apply_scale(size / float(np.ptp(m.vertices, axis=0).max()))
    lo, hi = m.vertices.min(0), m.vertices.max(0)
    c = np.asarray(base_center, float)
    m.apply_translation([c[0] - (lo[0] + hi[0]) / 2, c[1] - (lo[1] + hi[1]) / 2, c[2] - lo[2]])
    return m


def room_kinect() -> tuple[list, list[Camera]]:
    """A room corner (floor, two walls) with a box and a ball on it, one Kinect view from
    inside: concave, open, density falling ~10× from the near floor to the far corner, noise
    σ = 1.2 mm + 1.9 mm·z², mixed pixels at the box's silhouette (metres)."""
    import trimesh

    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.15)
    ball.apply_translation([1.2, 1.0, 0.6])
    meshes = [_box((0, 0, -0.05), (4, 4, 0)), _box((-0.05, 0, 0), (0, 4, 2.5)), _box((0, -0.05, 0), (4, 0, 2.5)),
              _box((0.9, 0.7, 0), (1.5, 1.3, 0.45)), ball]
    cam = Camera(eye=(3.3, 3.0, 1.5), target=(0.8, 0.8, 0.5), width=212, height=160, noise_a=0.0012,
                 noise_b=0.0019, flying=0.5, max_range=4.5)
    return meshes, [cam]


def table_stereo() -> tuple[list, list[Camera]]:
    """A table with a cow, a can and a box on it above a floor, one stereo view from above
    at an angle: two surfaces at different depths, legs, noise σ = 3 mm·z², 0.3% speckle
    (metres)."""
    import trimesh

    top = _box((-0.6, -0.4, 0.70), (0.6, 0.4, 0.74))
    legs = [_box((x - 0.03, y - 0.03, 0), (x + 0.03, y + 0.03, 0.70)) for x in (-0.55, 0.55) for y in (-0.35, 0.35)]
    cow = _bench_mesh("spot_noisy", 0.28, (-0.2, 0.05, 0.74))
    can = trimesh.creation.cylinder(radius=0.05, height=0.16)
    can.apply_translation([0.2, -0.1, 0.82])
    box = _box((0.25, 0.1, 0.74), (0.43, 0.25, 0.84))
    floor = _box((-2, -2, -0.02), (2, 2, 0))
    cam = Camera(eye=(0.9, -1.3, 1.6), target=(0.0, 0.0, 0.7), width=240, height=180, fov_deg=60,
                 noise_b=0.003, speckle=0.003, flying=0.3, max_range=3.5)
    return [top, *legs, cow, can, box, floor], [cam]


def terrain_lidar() -> tuple[list, list[Camera]]:
    """Hilly terrain with a cliff seen from a 12 m mast at its edge: density falling ~100×
    with range, shadows behind the hills, noise 3 cm (metres)."""
    import trimesh

    n = 241
    x, y = np.meshgrid(np.linspace(0, 120, n), np.linspace(-60, 60, n), indexing="ij")
    z = 4 * np.sin(x / 17) * np.cos(y / 23) + 2.5 * np.sin(x / 7 + y / 11) + 9 * np.exp(-((x - 70) ** 2 + (y + 15) ** 2) / 300)
    z += 5 * (1 / (1 + np.exp(-(x - 0.3 * y - 90) / 1.5)))  # a cliff across the far part
    v = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel(), i[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    ground = trimesh.Trimesh(v, faces, process=False)
    cam = Camera(eye=(-5.0, 0.0, 12.0), target=(60.0, 0.0, 0.0), width=300, height=160, fov_deg=90,
                 noise_a=0.03, max_range=130)
    return [ground], [cam]


def object_on_base() -> tuple[list, list[Camera]]:
    """An armadillo on a square base, five views around it from above (a turntable scan):
    the object is closed but the base's underside is never seen (units of the object)."""
    arm = _bench_mesh("armadillo", 1.0, (0, 0, 0.1))
    base = _box((-0.7, -0.7, 0), (0.7, 0.7, 0.1))
    cams = []
    for k in range(5):
        a = 2 * np.pi * k / 5
        cams.append(Camera(eye=(2.4 * np.cos(a), 2.4 * np.sin(a), 1.8), target=(0, 0, 0.4), width=140,
                           height=120, fov_deg=50, noise_a=0.001))
    return [arm, base], cams


SCENES = {"room_kinect": room_kinect, "table_stereo": table_stereo, "terrain_lidar": terrain_lidar,
          "object_on_base": object_on_base}


def scene_points(name: str, seed: int = 0) -> np.ndarray:
    """(N, 3) float64 the scan of scene ``name`` (all its cameras merged)."""
    meshes, cams = SCENES[name]()
    rng = np.random.default_rng(seed)
    return np.concatenate([render(meshes, c, rng) for c in cams])


def scene_truth(name: str):
    """The true surface of scene ``name`` (one trimesh of all its meshes)."""
    import trimesh

    return trimesh.util.concatenate(SCENES[name]()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", nargs="*", default=list(SCENES))
    ap.add_argument("--truth", action="store_true",
                    help="also measure each true surface against its scan (cover, scan->mesh in spacings)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        pts = scene_points(name)
        np.savetxt(args.out / f"{name}.xyz", pts, fmt="%.6f")
        line = f"{name} {len(pts)} points {np.ptp(pts, axis=0).round(3)}"
        if args.truth:
            from surfrec.surface.support import measure_support
            from surfrec.input.inspect import scan_spacing

            truth = scene_truth(name)
            rep = measure_support(truth.vertices, truth.faces, pts, spacing=scan_spacing(pts))
            line += f"  truth: cover {rep.cover:.3f} scan->mesh {rep.scan_to_mesh_mean_s:.3f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
