"""Headless pictures of meshes and point clouds (no display, no OpenGL needed).

A small z-buffered point-splat renderer in numpy: the surface is densely sampled, each
sample is projected orthographically, the nearest sample per pixel wins, and it is shaded
with a Lambert term of its normal. It works on any machine (CI included) and is fast
enough for previews (a 100k-face mesh at 400×400 px in well under a second per view).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..validation import RENDER, check_range

log = logging.getLogger(__name__)


#: world → render frame (x right, z up, y into the screen) for each "up" axis
_UP = {
    "z": np.eye(3),
    "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}


def _rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """World → camera rotation (camera looks along −z of its frame), (3, 3)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(el), -np.sin(el)], [0, np.sin(el), np.cos(el)]])
    # y-up scans look natural from the front: map world y to screen up, z toward the viewer
    return rx @ rz.T


def splat_image(
    points: np.ndarray,
    normals: np.ndarray | None,
    *,
    size: int = 400,
    azimuth: float = 30.0,
    elevation: float = 20.0,
    center: np.ndarray | None = None,
    extent: float | None = None,
    color: Sequence[float] = (0.75, 0.78, 0.85),
    up: str = "y",
    radius: int = 0,
    depth_cue: float = 0.0,
) -> np.ndarray:
    """Render oriented points to an RGB image.

    Parameters
    ----------
    points : (N, 3) float
    normals : (N, 3) float or None
        Without normals, points are shaded by depth.
    size : int
        Image side in pixels.
    azimuth, elevation : float
        Camera angles in degrees.
    center : (3,) float, optional
        Point at the image centre (default: the box centre of ``points``).
    extent : float, optional
        World size that fills the image (default: the box diagonal).
    up : {"y", "z"}
        World axis drawn upward (scans are usually y-up, CAD often z-up).
    radius : int
        Each point covers a square of (2 radius + 1)² pixels (sparse clouds need > 0).
    depth_cue : float
        With normals, darken the farthest points by this share (0: off).

    Returns
    -------
    (size, size, 3) float ndarray in [0, 1]
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    if up not in _UP:
        raise ValueError(f"up must be one of {sorted(_UP)}, got {up!r}")
    img = np.ones((size, size, 3))
    if len(pts) == 0:
        return img
    lo, hi = pts.min(0), pts.max(0)
    center = 0.5 * (lo + hi) if center is None else np.asarray(center, dtype=np.float64)
    if extent is None:
        extent = float(np.linalg.norm(hi - lo)) or 1.0
    rot = _rotation(azimuth, elevation) @ _UP[up]
    cam = (pts - center) @ rot.T
    px = ((cam[:, 0] / extent + 0.5) * (size - 1)).round().astype(np.int64)
    py = ((0.5 - cam[:, 2] / extent) * (size - 1)).round().astype(np.int64)
    depth = cam[:, 1]  # larger = farther (camera looks along +y of its frame)
    dz = (depth - depth.min()) / max(np.ptp(depth), 1e-12)
    if normals is not None:
        n = np.asarray(normals, dtype=np.float64) @ rot.T
        n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
        light = np.array([-0.4, -0.8, 0.45])
        light /= np.linalg.norm(light)
        shade = 0.25 + 0.75 * np.abs(n @ light)  # two-sided: open scans look right too
        if depth_cue:
            shade = shade * (1.0 - depth_cue * dz)
    else:
        shade = 1.0 - 0.7 * dz
    if radius > 0:
        d = np.arange(-int(radius), int(radius) + 1)
        ox, oy = (a.ravel() for a in np.meshgrid(d, d))
        px = (px[:, None] + ox[None, :]).ravel()
        py = (py[:, None] + oy[None, :]).ravel()
        depth = np.repeat(depth, len(ox))
        shade = np.repeat(shade, len(ox))
    cols = np.asarray(color, dtype=np.float64)
    per_point = cols.ndim == 2  # (N, 3) colours, one per point (e.g. the support map)
    if per_point and radius > 0:
        cols = np.repeat(cols, len(ox), axis=0)
    ok = (px >= 0) & (px < size) & (py >= 0) & (py < size)
    px, py, depth, shade = px[ok], py[ok], depth[ok], shade[ok]
    if per_point:
        cols = cols[ok]
    pix = py * size + px
    order = np.lexsort((depth, pix))  # per pixel, nearest first
    first = np.ones(len(order), dtype=bool)
    first[1:] = pix[order][1:] != pix[order][:-1]
    sel = order[first]
    flat = img.reshape(-1, 3)
    flat[pix[sel]] = shade[sel, None] * (cols[sel] if per_point else cols[None, :])
    return img


def mesh_samples(mesh, n: int = 400_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dense surface samples and their face normals, for splatting. (n,3), (n,3)."""
    import trimesh

    if len(mesh.faces) == 0:
        return np.asarray(mesh.vertices, dtype=np.float64), np.zeros_like(mesh.vertices)
    pts, fidx = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return pts, mesh.face_normals[fidx]


def render_meshes_png(
    items: Sequence[tuple[str, object]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    views: Sequence[tuple[float, float]] = ((30.0, 20.0),),
    size: int = 360,
    up: str = "y",
) -> Path:
    """Meshes (or point clouds given as (N,3) arrays) side by side, one row per view.

    Parameters
    ----------
    items : sequence of (label, trimesh.Trimesh | (N,3) ndarray)
    path : output PNG (written atomically)
    views : sequence of (azimuth, elevation) in degrees
    size : pixels per panel side

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    from ..io import atomic_path

    if not items:
        raise ValueError("nothing to render")
    data = []
    for label, obj in items:
        if isinstance(obj, np.ndarray):
            data.append((label, obj, None))
        else:
            p, nrm = mesh_samples(obj)
            data.append((label, p, nrm))
    allp = np.concatenate([d[1] for d in data])
    lo, hi = allp.min(0), allp.max(0)
    center, extent = 0.5 * (lo + hi), float(np.linalg.norm(hi - lo)) * 0.85
    fig = Figure(figsize=(2.6 * len(data), 2.7 * len(views)), dpi=120)
    axes = fig.subplots(len(views), len(data), squeeze=False)
    for r, (az, el) in enumerate(views):
        for c, (label, p, nrm) in enumerate(data):
            ax = axes[r][c]
            ax.imshow(splat_image(p, nrm, size=size, azimuth=az, elevation=el, center=center, extent=extent,
                                  up=up))
            ax.set_axis_off()
            if r == 0:
                ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


# ------------------------------------------------------------------ multi-view pictures
#: colours of meshes and of point clouds
MESH_COLOR = (0.75, 0.78, 0.85)
CLOUD_COLOR = (0.90, 0.72, 0.50)

#: backends of :func:`render_file`
BACKENDS = ("numpy", "open3d")

#: at most this many cloud points are splatted (a random subset of larger clouds)
MAX_RENDER_POINTS = 2_000_000


def view_angles(views: int, elevation: float = 20.0, start: float = 30.0) -> list[tuple[float, float]]:
    """``views`` (azimuth, elevation) pairs evenly spaced around the object, in degrees."""
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    return [((start + 360.0 * i / views) % 360.0, elevation) for i in range(views)]


def estimate_normals(points: np.ndarray, k: int = 12) -> np.ndarray:
    """Unoriented normals by PCA of the ``k`` nearest neighbours (for shading clouds).

    Parameters
    ----------
    points : (N, 3) float
    k : int
        Neighbours per point (clamped to N).

    Returns
    -------
    (N, 3) float64 unit vectors (sign arbitrary: the renderer shades both sides)
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        return np.tile([0.0, 0.0, 1.0], (len(pts), 1))
    k = int(min(max(k, 3), len(pts)))
    _, idx = cKDTree(pts).query(pts, k=k)
    nb = pts[idx] - pts[idx].mean(axis=1, keepdims=True)  # (N, k, 3)
    cov = np.einsum("nki,nkj->nij", nb, nb)
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues: the first vector is the normal
    return vecs[:, :, 0]


def _cloud_radius(points: np.ndarray, extent: float, size: int) -> int:
    """Splat radius (pixels) that closes the gaps between neighbouring points."""
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return 2
    sub = pts[np.random.default_rng(0).choice(len(pts), size=min(len(pts), 5000), replace=False)]
    d, _ = cKDTree(pts).query(sub, k=2)
    spacing_px = float(np.median(d[:, 1])) / extent * (size - 1)
    return int(np.clip(np.ceil(0.75 * spacing_px), 0, 6))


def _renderable(obj, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(points, normals, is_mesh) to splat for a mesh, a PointCloud or an (N, 3) array."""
    pts = getattr(obj, "points", None) if not isinstance(obj, np.ndarray) else None
    if hasattr(obj, "faces") and hasattr(obj, "vertices"):  # a trimesh.Trimesh
        if len(obj.faces):
            # enough samples for about two per pixel of the picture (more for small ones)
            p, n = mesh_samples(obj, n=int(np.clip(2.5 * size * size, 60_000, 2_000_000)), seed=seed)
            return p, n, True
        pts = np.asarray(obj.vertices)
    normals = getattr(obj, "normals", None) if pts is not None else None
    pts = np.asarray(obj if pts is None else pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    if len(pts) > MAX_RENDER_POINTS:
        keep = np.random.default_rng(seed).choice(len(pts), size=MAX_RENDER_POINTS, replace=False)
        pts = pts[keep]
        normals = None if normals is None else np.asarray(normals)[keep]
    if normals is None:
        normals = estimate_normals(pts)
    return pts, np.asarray(normals, dtype=np.float64), False


def render(
    obj,
    *,
    views: int = 4,
    size: int = 400,
    up: str = "y",
    elevation: float = 20.0,
    columns: int | None = None,
    color: Sequence[float] | str | None = None,
) -> np.ndarray:
    """Pictures of a mesh or point cloud from ``views`` directions around it, tiled.

    Meshes are shaded with their face normals; point clouds with their normals, or normals
    estimated from neighbours when they have none, each point drawn as a small square.
    All views share one scale, so sizes compare across panels.

    Parameters
    ----------
    obj : trimesh.Trimesh, PointCloud or (N, 3) array
    views : int
        Number of views, at azimuths spaced evenly around the vertical axis.
    size : int
        Pixels per panel side.
    up : {"y", "z"}
        World axis drawn upward.
    elevation : float
        Camera elevation in degrees (positive: looking down on the object).
    columns : int, optional
        Panels per row (default: up to 4).
    color : (3,) float or "support", optional
        Base colour (default: bluish grey for meshes, sand for clouds); ``"support"``
        colours a mesh by its ``vertex_attributes["quality"]`` support map (green on the
        data, red 4 spacings or more away: :func:`surfrec.surface.support.support_colors`).

    Returns
    -------
    (rows * size, columns * size, 3) float ndarray in [0, 1]
    """
    check_range("views", views, RENDER["views"])
    check_range("size", size, RENDER["size"])
    angles = view_angles(views, elevation=elevation)
    support = getattr(obj, "vertex_attributes", {}).get("quality") if color == "support" else None
    if color == "support" and support is None:
        raise ValueError("color='support' needs a mesh with a per-vertex 'quality' support map")
    if support is not None:  # colour by distance to the scan (surfrec.surface.support)
        from ..surface.support import support_samples

        pts, nrm, color = support_samples(obj, support, n=int(np.clip(2.5 * size * size, 60_000, 2_000_000)))
        is_mesh = True
    else:
        pts, nrm, is_mesh = _renderable(obj, size)
    if len(pts) == 0:
        raise ValueError("nothing to render: no points")
    lo, hi = pts.min(0), pts.max(0)
    center = 0.5 * (lo + hi)
    extent = 1.05 * (float(np.linalg.norm(hi - lo)) or 1.0)  # fits every rotation
    radius = 1 if is_mesh and size >= 200 else (0 if is_mesh else _cloud_radius(pts, extent, size))
    col = color if color is not None else (MESH_COLOR if is_mesh else CLOUD_COLOR)
    cols = columns or min(views, 4)
    rows = -(-views // cols)
    out = np.ones((rows * size, cols * size, 3))
    for i, (az, el) in enumerate(angles):
        r, c = divmod(i, cols)
        out[r * size:(r + 1) * size, c * size:(c + 1) * size] = splat_image(
            pts, nrm, size=size, azimuth=az, elevation=el, center=center, extent=extent, color=col,
            up=up, radius=radius, depth_cue=0.0 if is_mesh else 0.3)
    log.debug("rendered %d %s in %d views of %d px", len(pts), "mesh samples" if is_mesh else "points",
              views, size)
    return out


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (H, W, 3) float [0, 1] or uint8 image as PNG, atomically (Pillow, which the
    core install has through scikit-image)."""
    from PIL import Image

    from ..io import atomic_path

    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
    return path


def render_png(obj, path: str | os.PathLike, **kwargs) -> Path:
    """:func:`render` ``obj`` and write the picture to ``path`` (PNG, atomically)."""
    return save_png(render(obj, **kwargs), path)


def load_renderable(path: str | os.PathLike):
    """A mesh file as a ``trimesh.Trimesh``, anything else as a :class:`~surfrec.io.PointCloud`.

    Files are validated by :func:`surfrec.io.load_points` (one-line ``InputError`` for a
    missing, unreadable or garbled file); files that hold faces are then read as meshes.
    """
    from ..io import SUPPORTED_MESH_EXTENSIONS, load_points

    cloud = load_points(path)
    if Path(path).suffix.lower() in SUPPORTED_MESH_EXTENSIONS:
        import trimesh

        try:
            mesh = trimesh.load(os.fspath(path), force="mesh", process=False)
        except Exception:  # load_points read it: render its points then
            log.debug("%s: trimesh cannot read it as a mesh; rendering its points", path, exc_info=True)
            mesh = None
        if isinstance(mesh, trimesh.Trimesh) and len(mesh.faces):
            return mesh
    return cloud


def render_file(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    views: int = 4,
    size: int = 400,
    up: str = "y",
    backend: str = "numpy",
    color: str = "default",
) -> Path:
    """Render a mesh or point-cloud file to a PNG of ``views`` panels.

    Parameters
    ----------
    path : mesh (PLY/OBJ/OFF/STL/GLB with faces) or point cloud (any format of
        :func:`surfrec.io.load_points`)
    out : PNG path (written atomically)
    views, size, up : see :func:`render`
    color : {"default", "support"}
        ``support``: colour a PLY mesh by its per-vertex ``quality`` (numpy backend).
    backend : {"numpy", "open3d"}
        ``numpy`` (the default) works anywhere; ``open3d`` uses Open3D's offscreen
        renderer, which needs EGL or OSMesa and raises :class:`SurfrecError` without them.

    Returns
    -------
    Path
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    obj = load_renderable(path)
    if color == "support":
        from ..surface.support import read_support

        q = read_support(path) if hasattr(obj, "faces") else None
        if q is None:
            from ..errors import InputError

            raise InputError(path, "no per-vertex 'quality' support map to colour by (meshes written by "
                             "surfrec fit carry one)")
        obj.vertex_attributes["quality"] = q
        return save_png(render(obj, views=views, size=size, up=up, color="support"), out)
    if backend == "open3d":
        image = _render_open3d(obj, views=views, size=size, up=up)
    else:
        image = render(obj, views=views, size=size, up=up)
    return save_png(image, out)


# ------------------------------------------------------------------ optional: open3d
_OPEN3D_PROBE = "import open3d.visualization.rendering as r; r.OffscreenRenderer(16, 16)"


def open3d_offscreen_problem() -> str | None:
    """None when Open3D's offscreen renderer works here, else why not (one line).

    Probed in a subprocess: without EGL/OSMesa, Open3D may abort the whole process.
    """
    import subprocess
    import sys

    try:
        r = subprocess.run([sys.executable, "-c", _OPEN3D_PROBE], capture_output=True, text=True,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return "the Open3D offscreen renderer did not start within 120 s"
    if r.returncode == 0:
        return None
    lines = [ln.strip() for ln in (r.stderr or "").splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {r.returncode}"


def _render_open3d(obj, *, views: int, size: int, up: str) -> np.ndarray:
    """Open3D offscreen rendering (EGL/OSMesa), tiled like :func:`render`."""
    from ..optional import import_open3d
    from ..errors import SurfrecError

    import_open3d("the open3d render backend")  # one line naming the fix when it is missing
    problem = open3d_offscreen_problem()
    if problem is not None:
        raise SurfrecError(f"the open3d backend is not available on this machine ({problem}); "
                           "use the default backend (--backend numpy), which needs no display or GPU")
    import open3d as o3d
    import open3d.visualization.rendering as o3r

    ren = o3r.OffscreenRenderer(size, size)
    ren.scene.set_background([1.0, 1.0, 1.0, 1.0])
    mat = o3r.MaterialRecord()
    if hasattr(obj, "faces"):
        geom = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(obj.vertices, dtype=np.float64)),
                                         o3d.utility.Vector3iVector(np.asarray(obj.faces, dtype=np.int32)))
        geom.compute_vertex_normals()
        geom.paint_uniform_color(MESH_COLOR)
        mat.shader = "defaultLit"
        pts = np.asarray(obj.vertices, dtype=np.float64)
    else:
        pts = np.asarray(obj.points, dtype=np.float64)
        geom = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        geom.paint_uniform_color(CLOUD_COLOR)
        mat.shader = "defaultUnlit"
        mat.point_size = 3.0
    ren.scene.add_geometry("object", geom, mat)
    lo, hi = pts.min(0), pts.max(0)
    center, diag = 0.5 * (lo + hi), float(np.linalg.norm(hi - lo)) or 1.0
    up_vec = np.array([0.0, 1.0, 0.0]) if up == "y" else np.array([0.0, 0.0, 1.0])
    cols = min(views, 4)
    rows = -(-views // cols)
    out = np.ones((rows * size, cols * size, 3))
    for i, (az, el) in enumerate(view_angles(views)):
        # camera direction in the render frame (x right, z up, −y toward the viewer), to world
        a, e = np.radians(az), np.radians(el)
        d_render = np.array([np.sin(a) * np.cos(e), -np.cos(a) * np.cos(e), np.sin(e)])
        eye = center + 1.6 * diag * (_UP[up].T @ d_render)
        ren.setup_camera(35.0, center, eye, up_vec)
        img = np.asarray(ren.render_to_image(), dtype=np.float64)[..., :3] / 255.0
        r, c = divmod(i, cols)
        out[r * size:(r + 1) * size, c * size:(c + 1) * size] = img
    return out
