"""Open or closed: the surface decision, in one place.

A scan of a closed object gives a watertight mesh; a single view, a terrain or a room
scan gives an open surface, trimmed to the data. The decision is made twice, from two
kinds of evidence, with the thresholds of :class:`~surfrec.settings.SurfaceConfig`:

1. **before the fit** (:func:`fit_shape`): the closure of the scan's oriented normals
   (:func:`surfrec.input.orient.closure`: 0 for a closed surface, 0.5 for one view, 1
   for a plane). Above ``open_closure`` the field is fitted as an open surface (a side at
   the sheet, only the sheet pulled onto the data);
2. **after meshing** (:func:`surface_step`): how much of the closed mesh is phantom (far
   from every scan point) and how much of the scan it misses. A closed fit that is mostly
   phantom is opened: the level set, or a shell around the data, trimmed to it
   (:func:`extract_open`).

``--surface closed`` or ``open`` forces either answer. Both decisions return typed
records of their evidence (:class:`ShapeDecision`, :class:`SurfaceDecision`), kept with
the model and printed in the summary line.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..settings import MeshConfig, SurfaceConfig
from ..settings.mesh import SURFACES
from ..validation import check_choice
from .extract import extract_level_set
from .support import _check_points, point_mesh_distance, surface_to_scan, trim_unsupported

if TYPE_CHECKING:
    import trimesh

    from ..field.fitted import FittedField
    from ..input.inspect import ScanPoints
    from ..input.orient import Orientation

log = logging.getLogger(__name__)


class _Record:
    """Plain-dict round trip of a decision record (model files keep them)."""

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict | None):
        if d is None:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class ShapeDecision(_Record):
    """The surface decided before the fit, and its evidence."""

    fit_surface: str
    """``open`` or ``closed``: how the field is fitted."""
    mode: str = "auto"
    """What was asked: ``auto``, ``closed`` or ``open``."""
    closure: float | None = None
    """Closure of the scan's oriented normals (None: not measured, ``--surface closed``)."""
    open_closure: float | None = None
    """The threshold it was compared with."""
    pieces: int | None = None
    """Connected pieces of the scan's neighbour graph."""

    @property
    def open(self) -> bool:
        """Whether the field is fitted as an open surface."""
        return self.fit_surface == "open"


@dataclass
class SurfaceDecision(_Record):
    """The surface step's choice and its evidence (None: not measured or not applicable)."""

    mode: str
    """What was asked: ``auto``, ``closed`` or ``open``."""
    surface: str
    """What was written: ``closed`` or ``open``."""
    phantom_closed: float | None = None
    """Share of the closed mesh's area farther than ``phantom_radius`` spacings from the scan."""
    open_phantom: float | None = None
    """Its threshold."""
    missed_closed: float | None = None
    """Share of the scan farther than ``miss_radius`` spacings from the closed mesh."""
    open_missed: float | None = None
    """Its threshold."""
    cover_closed_untrimmed: float | None = None
    """Cover of the closed mesh, when the open surface was tried for the missed share."""
    open_cover_gain: float | None = None
    """The cover gain the open surface needed then."""
    source: str | None = None
    """The open surface's origin: ``shell``, ``closed`` (the level set trimmed) or ``none``."""
    shell_level: float | None = None
    """The shell's level q."""
    cover_shell: float | None = None
    """Cover of the trimmed shell."""
    cover_closed: float | None = None
    """Cover of the trimmed level set."""
    fill: float | None = None
    """The fill radius in spacings, when the fill ran."""
    filled: float | None = None
    """Share of the vertices the fill moved onto the membrane."""
    trim: float | None = None
    """The trim radius in spacings, when the closed surface was trimmed."""
    trimmed_area: float | None = None
    """Share of the closed surface's area the trim removed."""
    skipped: str | None = None
    """Why the surface step did not run (another level, no scan points)."""


def fit_shape(orientation: "Orientation | None", mode: str, config: SurfaceConfig | None = None) -> ShapeDecision:
    """Before the fit: open or closed from the closure of the scan's oriented normals.

    ``mode`` ``open`` or ``closed`` forces the answer (the closure is still reported when
    measured); ``auto`` opens when the closure exceeds ``config.open_closure``.
    ``orientation`` None (not measured) means closed unless ``open`` is forced.
    """
    check_choice("surface", mode, SURFACES)
    cfg = config or SurfaceConfig()
    if orientation is None:
        return ShapeDecision(fit_surface="open" if mode == "open" else "closed", mode=mode)
    fit_surface = "open" if mode == "open" or (mode == "auto" and orientation.closure > cfg.open_closure) else "closed"
    log.info("scan closure %.3f (open above %g, %d piece%s): fitting a%s %s surface", orientation.closure,
             cfg.open_closure, orientation.pieces, "" if orientation.pieces == 1 else "s",
             "n" if fit_surface == "open" else "", fit_surface)
    return ShapeDecision(fit_surface=fit_surface, mode=mode, closure=round(orientation.closure, 4),
                         open_closure=cfg.open_closure, pieces=orientation.pieces)


def decide_surface(phantom: float, config: SurfaceConfig | None = None, missed: float = 0.0) -> str:
    """``"open"`` or ``"closed"`` from the phantom share of a closed reconstruction (share
    of its area far from the scan) and its missed share (share of the scan far from it)."""
    cfg = config or SurfaceConfig()
    for name, v in (("phantom", phantom), ("missed", missed)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a share in [0, 1], got {v!r}")
    return "open" if phantom > cfg.open_phantom or missed > cfg.open_missed else "closed"


def shell_level(values, points: Any, quantile: float, max_points: int = 20_000, seed: int = 0) -> float:
    """The ``quantile`` of F (``values``: (M, 3) float32 -> (M,)) at up to ``max_points`` of
    ``points`` (in the field's coordinates)."""
    pts = _check_points(points)
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(seed).choice(len(pts), max_points, replace=False)]
    return float(np.quantile(values(pts.astype(np.float32)), quantile))


def extract_open(field: "FittedField | None", mesh_config: MeshConfig | None, data: "ScanPoints", *,
                 shell: bool = True, closed_mesh=None) -> tuple["trimesh.Trimesh", dict]:
    """The open surface of a fitted field.

    Candidates: the shell F = q around the data (:func:`shell_level`, extracted with
    ``mesh_config`` and every piece kept; only when ``shell``: a field fitted as an open
    surface crosses its level at the sheet) and, when given, ``closed_mesh`` (the level set
    meshed as usual); each is trimmed to the faces with a vertex within ``trim_radius``
    spacings of the scan, and the one that covers more scan points is returned (the choice
    is measured, not a threshold). Meshes, points and F share one coordinate frame.

    Returns
    -------
    (trimesh.Trimesh, dict)
        The trimmed mesh and what was chosen: ``source`` ("shell", "closed" or "none":
        nothing survived trimming, the untrimmed candidate is returned), ``shell_level`` q
        and the cover of each candidate (``cover_shell``, ``cover_closed``).
    """
    cfg = (mesh_config or MeshConfig()).surface_config
    pts, s = data.points, data.spacing
    candidates, info = {}, {}
    if closed_mesh is not None:
        candidates["closed"] = closed_mesh
    if shell:
        info["shell_level"] = q = shell_level(field.values, pts, cfg.shell_quantile, cfg.shell_points, cfg.seed)
        candidates["shell"] = extract_level_set(field, dataclasses.replace(mesh_config, components="all"), q, None)[0]
    if not candidates:
        raise ValueError("extract_open needs a closed mesh or the shell")
    best = None
    for name, mesh in candidates.items():
        if len(mesh.faces) == 0:
            continue
        trimmed, _ = trim_unsupported(mesh, pts, cfg.trim_radius, s, tree=data.index)
        if len(trimmed.faces) == 0:
            continue
        d = point_mesh_distance(pts, trimmed.vertices, trimmed.faces)
        cover = float(np.mean(d <= cfg.support.cover_radius * s))
        info[f"cover_{name}"] = cover
        if best is None or cover > best[1]:
            best = (trimmed, cover, name)
    if best is None:  # nothing survived trimming: the untrimmed candidate (shell first)
        return candidates.get("shell", closed_mesh), {**info, "source": "none"}
    info["source"] = best[2]
    return best[0], info


def surface_step(mesh, field: "FittedField", data: "ScanPoints", mesh_config: MeshConfig, fitted_open: bool
                 ) -> tuple[Any, SurfaceDecision, dict | None]:
    """After meshing: keep the closed ``mesh``, or replace it by :func:`extract_open`'s
    open surface.

    ``mesh_config.surface`` ``auto`` decides with :func:`decide_surface` on the closed
    mesh's phantom and missed shares; a field fitted as an open surface (``fitted_open``)
    is open in auto mode, and its level set already is the sheet (no shell candidate).
    ``mesh`` None (F never crosses its level: no closed surface) means open.

    Returns
    -------
    (trimesh.Trimesh, SurfaceDecision, dict or None)
        The mesh, the decision, and the closed mesh's measurements when it is kept in
        auto mode (``surface_distances`` and ``scan_distances``: keyword arguments of
        :func:`~surfrec.surface.support.measure_support`, which then measures nothing
        again), else None.
    """
    asked = mesh_config.surface
    mode = "open" if asked == "auto" and fitted_open else asked
    shell = not (fitted_open and mesh is not None and len(mesh.faces))
    cfg = mesh_config.surface_config
    decision = SurfaceDecision(mode=asked, surface="closed")
    if mesh is None:  # F never crosses its level: no closed surface at all (a sheet)
        if mode == "closed":
            raise ValueError("no closed surface to keep (F never crosses its level)")
        out, extra = extract_open(field, mesh_config, data, shell=shell)
        return out, dataclasses.replace(decision, surface="open", phantom_closed=1.0, **extra), None
    if mode == "closed" or len(mesh.faces) == 0:
        return mesh, decision, None
    pts, s = data.points, data.spacing
    if mode == "auto":
        m2s = surface_to_scan(mesh.vertices, mesh.faces, data.index, s, cfg.support, cfg.seed)
        phantom = float(np.mean(m2s[0] > cfg.support.phantom_radius * s))
        d = point_mesh_distance(pts, mesh.vertices, mesh.faces)
        measured = {"surface_distances": m2s, "scan_distances": d}  # reused by the support report
        missed = float(np.mean(d > cfg.support.miss_radius * s))
        decision = dataclasses.replace(decision, phantom_closed=phantom, open_phantom=cfg.open_phantom,
                                       missed_closed=missed, open_missed=cfg.open_missed,
                                       surface=decide_surface(phantom, cfg, missed))
        if decision.surface == "closed":
            return mesh, decision, measured
        if phantom <= cfg.open_phantom:  # opened only for the missed share: keep what covers more
            out, extra = extract_open(field, mesh_config, data, shell=shell, closed_mesh=mesh)
            cover_closed = float(np.mean(d <= cfg.support.cover_radius * s))
            gain = max(extra.get("cover_shell", 0.0), extra.get("cover_closed", 0.0)) - cover_closed
            decision = dataclasses.replace(decision, cover_closed_untrimmed=cover_closed,
                                           open_cover_gain=cfg.open_cover_gain, **extra)
            if gain < cfg.open_cover_gain:
                decision.surface = "closed"
                return mesh, decision, measured
            return out, decision, None
    out, extra = extract_open(field, mesh_config, data, shell=shell, closed_mesh=mesh)
    return out, dataclasses.replace(decision, surface="open", **extra), None


__all__ = ["ShapeDecision", "SurfaceDecision", "fit_shape", "decide_surface", "shell_level", "extract_open",
           "surface_step"]
