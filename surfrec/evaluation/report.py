"""Self-contained HTML reports of a reconstruction, and of a benchmark.

One HTML file per report, fully offline: plotly's JavaScript is inlined once (from the
``plotly`` pip package, :func:`plotly.offline.get_plotlyjs`), the meshes and points are
embedded as float32/int32 arrays, gzip-compressed and base64-encoded (the page unpacks them
with the browser's ``DecompressionStream``), and nothing is fetched from anywhere. The page
is rendered from the jinja2 templates in ``surfrec/evaluation/templates``.

* :func:`write_fit_report` (:class:`FitReportData`): the mesh coloured by its support map
  (the same colours as ``surfrec render --color support``), the scan, the level-set samples
  coloured by their residual, the raw level set, a wireframe; the loss terms and residuals
  over the steps, the residual after k Newton steps, the stage times, the surface decision,
  cover / phantom and, when there is a ground truth, Chamfer / NC / F-score.
* :func:`write_bench_report` (:class:`BenchMesh`): a methods x cases table with a thumbnail
  per cell; a click opens that case with every method side by side, cameras linked.
* :func:`fit_report` / :func:`bench_report` return an :class:`HtmlReport`, which a Jupyter
  notebook shows inline (``_repr_html_``: an ``<iframe srcdoc=...>``).

Meshes larger than the display caps are decimated for display only (vertex clustering,
:func:`decimate_mesh`), and large scans are subsampled; the page says so.
"""

from __future__ import annotations

import base64
import gzip
import html
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..surface.support import SUPPORT_COLOR_MAX, support_colors

log = logging.getLogger(__name__)

__all__ = ["FitReportData", "BenchMesh", "HtmlReport", "fit_report", "write_fit_report",
           "bench_report", "write_bench_report", "bench_thumbnail", "support_colorscale",
           "decimate_mesh", "check_available"]

#: display caps of the fit page (larger inputs are decimated / subsampled for display)
FIT_MAX_FACES = 300_000
RAW_MAX_FACES = 150_000
MAX_SCAN_POINTS = 100_000
MAX_SAMPLES = 50_000
#: display cap of each mesh of the bench page
BENCH_MAX_FACES = 60_000
#: history keys that are not loss terms
_NOT_LOSS = {"step", "time", "lr", "residual_median", "residual_p90", "converged"}
_SOURCE = "report data"


# --------------------------------------------------------------------------------------
# inputs


@dataclass
class FitReportData:
    """Everything a fit report shows. Arrays are in scan coordinates.

    Only ``title``, ``mesh_vertices`` and ``mesh_faces`` are required; a missing part is
    left out of the page (its toggle disabled, its chart or table absent).
    """

    title: str
    """Heading of the page (e.g. the scan's file name)."""
    mesh_vertices: np.ndarray
    """(V, 3) float: the refined mesh."""
    mesh_faces: np.ndarray
    """(F, 3) int."""
    support: np.ndarray | None = None
    """(V,) float: each vertex's distance to the scan in point spacings s."""
    scan_points: np.ndarray | None = None
    """(N, 3) the scan (subsampled for display beyond ``MAX_SCAN_POINTS``)."""
    samples: np.ndarray | None = None
    """(M, 3) level-set samples (Newton-projected points on F = c)."""
    sample_residuals: np.ndarray | None = None
    """(M,) ``|F(p) - c|`` of each sample."""
    raw_vertices: np.ndarray | None = None
    """The raw level set of F before refinement (vertices)."""
    raw_faces: np.ndarray | None = None
    """Its faces."""
    history: dict[str, list[float]] = field(default_factory=dict)
    """Per recorded step: ``step``, ``loss``, loss terms, ``residual_median``,
    ``residual_p90``, ``converged`` (NaN where absent)."""
    residual_curve: list[dict] = field(default_factory=list)
    """Rows ``{"k" (or "steps"), "median", "p90", "converged"}``: residual after k Newton steps."""
    timings: dict[str, float] = field(default_factory=dict)
    """Stage -> seconds."""
    decision: list[tuple[str, str]] = field(default_factory=list)
    """The surface decision and its evidence, as (label, value) rows."""
    support_metrics: dict[str, float] | None = None
    """cover, phantom, missed, scan_to_mesh_mean(_s), mesh_to_scan_mean(_s), spacing."""
    gt_metrics: dict[str, float] | None = None
    """chamfer_l1, normal_consistency, fscore@t ...; None without a ground truth."""
    command: str = ""
    """The command line that made the result."""
    version: str = ""
    """surfrec's version."""
    notes: list[str] = field(default_factory=list)
    """Extra lines (warnings ...)."""


@dataclass
class BenchMesh:
    """One method's mesh of one bench case."""

    vertices: np.ndarray
    """(V, 3) float."""
    faces: np.ndarray
    """(F, 3) int."""
    support: np.ndarray | None = None
    """(V,) float support map in spacings, or None."""
    thumbnail: bytes | None = None
    """PNG bytes; None: rendered with :func:`bench_thumbnail`."""


def _fail(problem: str) -> InputError:
    return InputError(_SOURCE, problem)


def _points(a: Any, name: str, *, min_rows: int = 0) -> np.ndarray:
    """(N, 3) finite float64 array, or InputError."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _fail(f"{name} is not a numeric array ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise _fail(f"{name} must have shape (N, 3), got {arr.shape}")
    if len(arr) < min_rows:
        raise _fail(f"{name} needs at least {min_rows} rows, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise _fail(f"{name} contains NaN/inf coordinates")
    return arr


def _faces(f: Any, n_vertices: int, name: str) -> np.ndarray:
    """(F, 3) int64 faces indexing ``n_vertices`` vertices, or InputError."""
    arr = np.asarray(f)
    if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0:
        raise _fail(f"{name} must have shape (F, 3) with F >= 1, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise _fail(f"{name} must be integers, got {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_vertices:
        raise _fail(f"{name} index vertices out of range [0, {n_vertices})")
    return arr.astype(np.int64)


def _values(a: Any, n: int, name: str) -> np.ndarray:
    """(n,) float64 array, or InputError."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (n,):
        raise _fail(f"{name} must have shape ({n},), got {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------
# display preparation: decimation, subsampling, packing


def _cluster(v: np.ndarray, f: np.ndarray, lo: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Cluster id of each vertex on a grid of ``cell`` and the non-degenerate clustered faces."""
    key = np.floor((v - lo) / cell).astype(np.int64)
    dims = key.max(0) + 1
    flat = key[:, 0] + dims[0] * (key[:, 1] + dims[1] * key[:, 2])
    _, inv = np.unique(flat, return_inverse=True)
    ff = inv.reshape(-1)[f]
    keep = (ff[:, 0] != ff[:, 1]) & (ff[:, 1] != ff[:, 2]) & (ff[:, 0] != ff[:, 2])
    return inv.reshape(-1), ff[keep]


def _cell_for(v: np.ndarray, f: np.ndarray, max_faces: int) -> float:
    """Smallest grid cell (bisection, log scale) whose clustered mesh has <= max_faces faces."""
    lo = v.min(0)
    diag = float(np.linalg.norm(v.max(0) - lo)) or 1.0
    small, big = diag * 1e-5, diag * 0.5
    for _ in range(24):
        mid = math.sqrt(small * big)
        if len(_cluster(v, f, lo, mid)[1]) > max_faces:
            small = mid
        else:
            big = mid
    return big


def decimate_mesh(vertices: np.ndarray, faces: np.ndarray, values: np.ndarray | None,
                  max_faces: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A mesh with at most ``max_faces`` faces, for display (vertex clustering on a grid).

    Vertices in one grid cell merge into their mean (and their ``values`` into the mean
    value); collapsed and duplicate faces are dropped. Meshes already small enough are
    returned as they are.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int
    values : (V,) float or None
        A per-vertex quantity to carry along (the support map).
    max_faces : int

    Returns
    -------
    vertices, faces, values
    """
    if len(faces) <= max_faces:
        return vertices, faces, values
    lo = vertices.min(0)
    inv, ff = _cluster(vertices, faces, lo, _cell_for(vertices, faces, max_faces))
    counts = np.bincount(inv).astype(np.float64)
    new_v = np.stack([np.bincount(inv, vertices[:, i]) for i in range(3)], axis=1) / counts[:, None]
    new_q = None if values is None else np.bincount(inv, values) / counts
    _, first = np.unique(np.sort(ff, axis=1), axis=0, return_index=True)
    ff = ff[np.sort(first)]
    used = np.unique(ff)  # drop clusters no face uses any more
    remap = np.full(len(new_v), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    log.info("mesh decimated for display: %d -> %d faces", len(faces), len(ff))
    return new_v[used], remap[ff], None if new_q is None else new_q[used]


def _subsample(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``cap`` of ``n`` items (all of them when n <= cap)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def _pack(arr: np.ndarray, dtype: str) -> dict[str, Any]:
    """A flat little-endian array as {dtype, enc, n, b64}, gzip-compressed where that helps."""
    raw = np.ascontiguousarray(arr, dtype={"f32": "<f4", "i32": "<i4"}[dtype]).reshape(-1)
    data = raw.tobytes()
    packed = gzip.compress(data, compresslevel=6, mtime=0)
    enc = "gzip" if len(packed) < 0.95 * len(data) else "raw"
    payload = packed if enc == "gzip" else data
    return {"dtype": dtype, "enc": enc, "n": int(raw.size), "b64": base64.b64encode(payload).decode("ascii")}


def _mesh_payload(v: np.ndarray, f: np.ndarray, support: np.ndarray | None) -> dict[str, Any]:
    """A mesh for the page: columns x|y|z and i|j|k (each block of V or F entries)."""
    return {
        "n_vertices": int(len(v)), "n_faces": int(len(f)),
        "xyz": _pack(v.T, "f32"), "ijk": _pack(f.T, "i32"),
        "support": None if support is None else _pack(np.minimum(support, 1e9), "f32"),
    }


def _display_mesh(v: np.ndarray, f: np.ndarray, q: np.ndarray | None, cap: int, what: str,
                  notes: list[str]) -> dict[str, Any]:
    """Decimate a mesh for display when it has more than ``cap`` faces (noted) and pack it."""
    dv, df, dq = decimate_mesh(v, f, q, cap)
    if len(df) != len(f):
        notes.append(f"{what} shown decimated from {len(f):,} to {len(df):,} faces (display only).")
    return _mesh_payload(dv, df, dq)


def _display_points(p: np.ndarray, cap: int, what: str, notes: list[str]) -> np.ndarray:
    """Indices of the points shown: all, or ``cap`` of them at random (noted)."""
    keep = _subsample(len(p), cap)
    if len(keep) != len(p):
        notes.append(f"{what} shown subsampled: {len(keep):,} of {len(p):,} points (display only).")
    return keep


# --------------------------------------------------------------------------------------
# colour scales and number formats


def support_colorscale(vmax: float = SUPPORT_COLOR_MAX) -> list[list[Any]]:
    """The support colours of :func:`surfrec.surface.support.support_colors` as a plotly colorscale.

    ``support_colors`` is piecewise linear in ``t = value / vmax`` with knots at 0, 0.5 and
    1, so three stops reproduce it exactly (up to 8-bit rounding) over ``cmin=0, cmax=vmax``.
    """
    rgb = support_colors(np.array([0.0, 0.5, 1.0]) * vmax, vmax)
    return [[t, "rgb({},{},{})".format(*(int(round(255 * c)) for c in row))]
            for t, row in zip((0.0, 0.5, 1.0), rgb)]


def _support_scale() -> dict[str, Any]:
    ticks = list(range(int(SUPPORT_COLOR_MAX) + 1))
    text = [str(t) for t in ticks[:-1]] + [f"\u2265{ticks[-1]} s"]
    return {"colorscale": support_colorscale(), "cmax": SUPPORT_COLOR_MAX, "tickvals": ticks, "ticktext": text}


def _log_ticks(lo: float, hi: float) -> dict[str, Any]:
    """Colour range and decade ticks for log10 values in [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    decades = list(range(math.ceil(lo), math.floor(hi) + 1)) or [round(lo)]
    return {"cmin": lo, "cmax": hi, "tickvals": decades, "ticktext": [f"1e{d}" for d in decades]}


def _num(x: Any) -> float | None:
    """A JSON-safe float (None for NaN / inf / None)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt(x: Any, spec: str = ".4g") -> str:
    v = _num(x)
    return "n/a" if v is None else format(v, spec)


_SUPPORT_ROWS = [  # key, label, format, hint
    ("cover", "cover", "pct", "share of scan points near the mesh"),
    ("phantom", "phantom", "pct", "share of mesh area far from every scan point"),
    ("missed", "missed", "pct", "share of scan points far from the mesh"),
    ("scan_to_mesh_mean_s", "scan \u2192 mesh (mean)", "s", "in point spacings"),
    ("mesh_to_scan_mean_s", "mesh \u2192 scan (mean)", "s", "in point spacings"),
    ("scan_to_mesh_mean", "scan \u2192 mesh (mean)", "g", "scan units"),
    ("mesh_to_scan_mean", "mesh \u2192 scan (mean)", "g", "scan units"),
    ("spacing", "spacing s", "g", "median distance to the nearest other scan point"),
]

_GT_LABELS = {"chamfer_l1": "Chamfer L1", "chamfer_l2": "Chamfer L2", "normal_consistency": "normal consistency",
              "hausdorff": "Hausdorff"}


def _format_value(v: Any, kind: str) -> str:
    if kind == "pct":
        n = _num(v)
        return "n/a" if n is None else f"{100 * n:.2f} %"
    if kind == "s":
        return f"{_fmt(v, '.3g')} s"
    return _fmt(v)


def _support_rows(metrics: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(label, value, hint) rows of the support metrics, known keys first."""
    if not metrics:
        return []
    rows = [(label, _format_value(metrics[k], kind), hint)
            for k, label, kind, hint in _SUPPORT_ROWS if k in metrics]
    known = {k for k, *_ in _SUPPORT_ROWS}
    return rows + [(k, _fmt(v) if _num(v) is not None else str(v), "") for k, v in metrics.items() if k not in known]


def _gt_rows(metrics: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) rows of the ground-truth metrics."""
    if not metrics:
        return []
    rows = []
    for k, v in metrics.items():
        label = _GT_LABELS.get(k) or k.replace("fscore@", "F-score @ ").replace("_", " ")
        rows.append((label, _fmt(v, ".5g") if _num(v) is not None or v is None else str(v)))
    return rows


# --------------------------------------------------------------------------------------
# fit page: the parts


def _history_payload(history: Mapping[str, Sequence[float]]) -> dict[str, Any] | None:
    """Series of the loss and residual charts (x: step), or None without a history."""
    if not history:
        return None
    lengths = {k: len(v) for k, v in history.items()}
    if len(set(lengths.values())) > 1:
        raise _fail(f"history lists differ in length: {lengths}")
    n = next(iter(lengths.values()))
    steps = [_num(s) for s in history.get("step", range(n))]
    loss = {k: [_num(x) for x in v] for k, v in history.items() if k not in _NOT_LOSS}
    res = {k: [_num(x) for x in history[k]] for k in ("residual_median", "residual_p90") if k in history}
    conv = [_num(x) for x in history["converged"]] if "converged" in history else None
    return {"step": steps, "loss": loss, "residual": res, "converged": conv}


def _newton_payload(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The residual-after-k-Newton-steps curve (rows keyed ``k`` or ``steps``)."""
    if not rows:
        return None
    try:
        k = [int(r["k"] if "k" in r else r["steps"]) for r in rows]
    except (KeyError, TypeError, ValueError):
        raise _fail("residual_curve rows need a 'k' (or 'steps') entry") from None
    col = {name: [_num(r.get(name)) for r in rows] for name in ("median", "p90", "converged")}
    return {"k": k, **col}


def _timings_payload(timings: Mapping[str, float]) -> dict[str, Any] | None:
    if not timings:
        return None
    secs = [_num(v) for v in timings.values()]
    return {"stage": [str(k) for k in timings], "seconds": secs, "total": sum(s for s in secs if s)}


def _samples_payload(data: FitReportData, notes: list[str]) -> dict[str, Any] | None:
    """Samples coloured by log10 residual (non-finite ones dropped, noted)."""
    if data.samples is None:
        return None
    pts = _points(data.samples, "samples")
    if data.sample_residuals is None:
        raise _fail("samples given without sample_residuals")
    res = np.abs(_values(data.sample_residuals, len(pts), "sample_residuals"))
    ok = np.isfinite(res)
    if not ok.all():
        notes.append(f"{int((~ok).sum()):,} level-set samples with a non-finite residual are not shown.")
    pts, res = pts[ok], res[ok]
    keep = _display_points(pts, MAX_SAMPLES, "Level-set samples", notes)
    logres = np.log10(np.maximum(res[keep], 1e-12))
    lo, hi = (np.percentile(logres, [1, 99]) if len(logres) else (-6.0, -1.0))
    return {"n": int(len(keep)), "xyz": _pack(pts[keep].T, "f32"), "logres": _pack(logres, "f32"),
            **_log_ticks(float(lo), float(hi))}


def _mesh_parts(data: FitReportData, notes: list[str]) -> tuple[dict, dict | None]:
    """Payloads of the refined mesh and the raw level set (or None)."""
    v = _points(data.mesh_vertices, "mesh_vertices", min_rows=3)
    f = _faces(data.mesh_faces, len(v), "mesh_faces")
    q = None if data.support is None else _values(data.support, len(v), "support")
    if q is not None and np.isnan(q).any():
        raise _fail(f"support contains {int(np.isnan(q).sum())} NaN values")
    mesh = _display_mesh(v, f, q, FIT_MAX_FACES, "Mesh", notes)
    if (data.raw_vertices is None) != (data.raw_faces is None):
        raise _fail("give both raw_vertices and raw_faces, or neither")
    if data.raw_vertices is None:
        return mesh, None
    rv = _points(data.raw_vertices, "raw_vertices", min_rows=3)
    rf = _faces(data.raw_faces, len(rv), "raw_faces")
    return mesh, _display_mesh(rv, rf, None, RAW_MAX_FACES, "Raw level set", notes)


def _scan_payload(data: FitReportData, notes: list[str]) -> dict[str, Any] | None:
    if data.scan_points is None:
        return None
    p = _points(data.scan_points, "scan_points")
    keep = _display_points(p, MAX_SCAN_POINTS, "Scan", notes)
    return {"n": int(len(keep)), "n_total": int(len(p)), "xyz": _pack(p[keep].T, "f32")}


def _fit_context(data: FitReportData, up: str) -> dict[str, Any]:
    """Everything the fit template needs."""
    if not isinstance(data, FitReportData):
        raise _fail(f"expected a FitReportData, got {type(data).__name__}")
    display_notes: list[str] = []
    mesh, raw = _mesh_parts(data, display_notes)
    payload = {
        "up": up, "mesh": mesh, "raw": raw, "support_scale": _support_scale(),
        "scan": _scan_payload(data, display_notes), "samples": _samples_payload(data, display_notes),
        "history": _history_payload(data.history), "newton": _newton_payload(data.residual_curve),
        "timings": _timings_payload(data.timings),
    }
    return {
        "title": str(data.title), "version": str(data.version), "command": str(data.command),
        "payload": payload, "decision": [(str(a), str(b)) for a, b in data.decision],
        "support_rows": _support_rows(data.support_metrics), "gt_rows": _gt_rows(data.gt_metrics),
        "notes": [str(n) for n in data.notes], "display_notes": display_notes,
        "n_vertices": len(data.mesh_vertices), "n_faces": len(data.mesh_faces),
    }


# --------------------------------------------------------------------------------------
# bench page: the parts

_BENCH_COLUMNS = ("case", "method", "chamfer_l1", "normal_consistency", "seconds", "peak_mem_mb", "status")


def bench_thumbnail(vertices: np.ndarray, faces: np.ndarray, support: np.ndarray | None = None, *,
                    size: int = 160, up: str = "y") -> bytes:
    """A PNG picture of a mesh from surfrec's numpy renderer (:func:`surfrec.render.render`).

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int
    support : (V,) float, optional
        Colour by the support map (as ``surfrec render --color support``).
    size : int
        Side in pixels.
    up : {"y", "z"}

    Returns
    -------
    bytes
        The PNG file's contents.
    """
    import trimesh

    from .render import render, save_png

    mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces), process=False)
    if support is not None:
        mesh.vertex_attributes["quality"] = np.asarray(support, dtype=np.float64)
    img = render(mesh, views=1, size=size, up=up, color="support" if support is not None else None)
    with tempfile.TemporaryDirectory() as tmp:
        return save_png(img, Path(tmp) / "thumb.png").read_bytes()


def _bench_mesh(m: BenchMesh | Mapping[str, Any], where: str) -> BenchMesh:
    if isinstance(m, Mapping):
        unknown = set(m) - {"vertices", "faces", "support", "thumbnail"}
        if unknown or not {"vertices", "faces"} <= set(m):
            raise _fail(f"{where}: a mesh needs 'vertices' and 'faces' (optional 'support', 'thumbnail'),"
                        f" got keys {sorted(m)}")
        m = BenchMesh(**m)
    if not isinstance(m, BenchMesh):
        raise _fail(f"{where}: expected a BenchMesh or a dict, got {type(m).__name__}")
    return m


def _bench_cell(m: BenchMesh, where: str, up: str) -> tuple[dict[str, Any], str, np.ndarray]:
    """(packed display mesh, thumbnail as data: URL, bounds (2, 3)) of one method's mesh."""
    v = _points(m.vertices, f"{where} vertices", min_rows=3)
    f = _faces(m.faces, len(v), f"{where} faces")
    q = None if m.support is None else _values(m.support, len(v), f"{where} support")
    if q is not None and np.isnan(q).any():
        raise _fail(f"{where}: support contains NaN values")
    png = m.thumbnail if m.thumbnail is not None else bench_thumbnail(v, f, q, up=up)
    if not isinstance(png, (bytes, bytearray)) or not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
        raise _fail(f"{where}: thumbnail is not PNG bytes")
    notes: list[str] = []
    payload = _display_mesh(v, f, q, BENCH_MAX_FACES, "mesh", notes)
    payload["note"] = notes[0] if notes else ""
    url = "data:image/png;base64," + base64.b64encode(bytes(png)).decode("ascii")
    return payload, url, np.stack([v.min(0), v.max(0)])


def _check_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping) or "case" not in r or "method" not in r:
            raise _fail(f"bench row {i} needs at least 'case' and 'method'")
        out.append({**{k: r.get(k) for k in _BENCH_COLUMNS}, "case": str(r["case"]), "method": str(r["method"])})
    return out


def _order(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _best(rows: list[dict[str, Any]], case: str, key: str, lower: bool) -> float | None:
    vals = [_num(r[key]) for r in rows if r["case"] == case and _num(r[key]) is not None]
    return (min(vals) if lower else max(vals)) if vals else None


def _table_cell(r: dict[str, Any] | None, best: dict[str, float | None], thumb: str | None) -> dict[str, Any]:
    """What one table cell shows (strings), from one bench row."""
    if r is None:
        return {"empty": True, "thumb": thumb}
    status = str(r["status"] or "ok")
    return {
        "empty": False, "thumb": thumb, "status": status, "failed": status.lower() not in ("ok", "done", ""),
        "chamfer": _fmt(r["chamfer_l1"]), "nc": _fmt(r["normal_consistency"], ".3f"),
        "seconds": _fmt(r["seconds"], ".3g"), "mem": _fmt(r["peak_mem_mb"], ".0f"),
        "best_chamfer": best["chamfer"] is not None and _num(r["chamfer_l1"]) == best["chamfer"],
        "best_nc": best["nc"] is not None and _num(r["normal_consistency"]) == best["nc"],
    }


def _bench_meshes(cases: Mapping[str, Mapping[str, Any]], up: str) -> tuple[dict, dict, dict]:
    """Packed display meshes {case: {method: ...}}, thumbnails {(case, method): data URL} and
    each case's common bounds {case: [lo, hi]} (one box for all its methods: linked views)."""
    meshes: dict[str, dict[str, Any]] = {}
    thumbs: dict[tuple[str, str], str] = {}
    bounds: dict[str, list] = {}
    for case, per_method in cases.items():
        meshes[case], boxes = {}, []
        for method, m in per_method.items():
            where = f"case {case!r}, method {method!r}"
            meshes[case][method], thumbs[(case, method)], box = _bench_cell(_bench_mesh(m, where), where, up)
            boxes.append(box)
        if boxes:
            allb = np.concatenate(boxes)
            bounds[case] = [allb.min(0).tolist(), allb.max(0).tolist()]
    return meshes, thumbs, bounds


def _bench_context(rows: Sequence[Mapping[str, Any]], cases: Mapping[str, Mapping[str, Any]],
                   up: str) -> dict[str, Any]:
    """Everything the bench template needs."""
    rows_ = _check_rows(rows)
    if not isinstance(cases, Mapping):
        raise _fail(f"cases must map case -> method -> mesh, got {type(cases).__name__}")
    cases = {str(c): {str(m): mesh for m, mesh in per.items()} for c, per in cases.items()}
    case_names = _order([r["case"] for r in rows_] + list(cases))
    methods = _order([r["method"] for r in rows_] + [m for c in cases.values() for m in c])
    meshes, thumbs, bounds = _bench_meshes(cases, up)
    by_key = {(r["case"], r["method"]): r for r in rows_}
    best = {c: {"chamfer": _best(rows_, c, "chamfer_l1", True), "nc": _best(rows_, c, "normal_consistency", False)}
            for c in case_names}
    table = [(m, [_table_cell(by_key.get((c, m)), best[c], thumbs.get((c, m))) for c in case_names])
             for m in methods]
    payload = {"up": up, "cases": case_names, "methods": methods, "meshes": meshes, "bounds": bounds,
               "support_scale": _support_scale()}
    return {"case_names": case_names, "table": table, "payload": payload,
            "viewable": [c for c in case_names if meshes.get(c)]}


# --------------------------------------------------------------------------------------
# rendering and writing


def _environment():
    from ..optional import require

    jinja2 = require("jinja2", "the HTML report")

    return jinja2.Environment(loader=jinja2.PackageLoader("surfrec.evaluation", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _script(name: str) -> str:
    """A JavaScript file of surfrec/evaluation/templates (our own code), checked for a closing tag."""
    return _inline_safe(resources.files("surfrec.evaluation").joinpath("templates", name).read_text(encoding="utf-8"),
                        name)


def _inline_safe(js: str, name: str) -> str:
    if "</script" in js.lower():
        raise RuntimeError(f"{name} contains '</script' and cannot be inlined")
    return js


def _plotly_js() -> str:
    """plotly.js, minified, from the plotly pip package (inlined once in each page)."""
    from ..optional import require

    return _inline_safe(require("plotly.offline", "the HTML report").get_plotlyjs(), "plotly.js")


def check_available() -> None:
    """Raise :class:`~surfrec.optional.MissingDependencyError` (one line) when the packages
    the HTML report needs (plotly, jinja2) cannot be imported: before any work."""
    from ..optional import require

    require("jinja2", "the HTML report")
    require("plotly.offline", "the HTML report")


def _render(template: str, context: dict[str, Any], script: str) -> str:
    from markupsafe import Markup

    scripts = {"plotly": Markup(_plotly_js()), "common": Markup(_script("report_common.js")),
               "page": Markup(_script(script))}
    return _environment().get_template(template).render(**context, scripts=scripts)


@dataclass(frozen=True)
class HtmlReport:
    """A rendered report page: ``write`` it, or show it in a notebook (``_repr_html_``)."""

    html: str
    """The whole page (one self-contained HTML document)."""
    title: str = "surfrec report"
    height: int = 900
    """Height of the notebook frame in pixels."""

    def write(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` atomically (no partial file on error).

        Raises
        ------
        InputError
            ``path`` is a folder, its folder does not exist, or it cannot be written.
        """
        from ..io import atomic_path

        dest = Path(path)
        try:
            with atomic_path(dest) as tmp:
                tmp.write_text(self.html, encoding="utf-8")
        except OSError as exc:
            raise InputError(dest, f"cannot write the report ({exc.strerror or exc})") from None
        log.info("wrote %s (%.1f MB)", dest, len(self.html.encode("utf-8")) / 1e6)
        return dest

    def _repr_html_(self) -> str:
        """The page in an ``<iframe srcdoc=...>`` (a full document cannot be inlined as is)."""
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="{html.escape(self.title)}" '
                f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd" '
                'sandbox="allow-scripts allow-downloads"></iframe>')


def fit_report(data: FitReportData, *, up: str = "y") -> HtmlReport:
    """The report page of one reconstruction.

    Parameters
    ----------
    data : FitReportData
    up : {"y", "z"}
        World axis drawn upward in the initial 3D view.

    Returns
    -------
    HtmlReport

    Raises
    ------
    InputError
        Arrays of the wrong shape, non-finite coordinates, faces out of range ...
    """
    _check_up(up)
    page = _render("fit_report.html.j2", _fit_context(data, up), "fit_report.js")
    return HtmlReport(page, title=str(data.title), height=1100)


def write_fit_report(data: FitReportData, path: str | os.PathLike, *, up: str = "y") -> Path:
    """Write the report page of one reconstruction to ``path`` (one offline HTML file).

    See :func:`fit_report`; the file is written atomically (a temporary file in the same
    folder, then ``os.replace``), so an error leaves no partial file.

    Returns
    -------
    pathlib.Path
    """
    return fit_report(data, up=up).write(path)


def bench_report(rows: Sequence[Mapping[str, Any]], cases: Mapping[str, Mapping[str, Any]], *,
                 title: str = "surfrec bench", up: str = "y") -> HtmlReport:
    """The bench page: methods x cases, and each case's meshes side by side.

    Parameters
    ----------
    rows : sequence of dict
        One per (case, method): ``case``, ``method``, ``chamfer_l1``, ``normal_consistency``,
        ``seconds``, ``peak_mem_mb``, ``status`` (missing keys show as n/a).
    cases : dict
        ``{case: {method: BenchMesh or {"vertices", "faces", "support", "thumbnail"}}}``;
        a missing thumbnail is rendered with :func:`bench_thumbnail`.
    title : str
    up : {"y", "z"}

    Returns
    -------
    HtmlReport
    """
    _check_up(up)
    context = _bench_context(rows, cases, up)
    page = _render("bench_report.html.j2", {**context, "title": title}, "bench_report.js")
    return HtmlReport(page, title=title, height=1000)


def write_bench_report(rows: Sequence[Mapping[str, Any]], cases: Mapping[str, Mapping[str, Any]],
                       path: str | os.PathLike, *, title: str = "surfrec bench", up: str = "y") -> Path:
    """Write the bench page (:func:`bench_report`) to ``path``, atomically."""
    return bench_report(rows, cases, title=title, up=up).write(path)


def _check_up(up: str) -> None:
    if up not in ("y", "z"):
        raise _fail(f"up must be 'y' or 'z', got {up!r}")
