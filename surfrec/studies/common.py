"""Pieces shared by the studies: cases, small fit settings, scoring, reports, figures.

The studies fit many models, so they use a small network and few steps (:func:`fit_settings`)
and pass every setting they depend on explicitly: the library's fitting defaults may change
without changing what a study measures.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

#: where the repository's example scan lives (absent in a non-editable install)
_EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "example.xyz"


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One scan of a study.

    Attributes
    ----------
    name : str
    points : (N, 3) float64
        The scan, in its own coordinates.
    gt : trimesh.Trimesh, path or None
        Ground-truth surface (for Chamfer distances), in the scan's coordinates.
    """

    name: str
    points: np.ndarray
    gt: Any = None

    @property
    def box_side(self) -> float:
        """Largest side of the scan's bounding box (the unit of reported distances)."""
        return float(np.ptp(self.points, axis=0).max())


def torus_case(n_points: int = 4000, noise: float = 0.002, seed: int = 0, name: str = "torus") -> Case:
    """A torus (radii 0.35 and 0.15, tilted) sampled uniformly with Gaussian noise."""
    import trimesh

    mesh = trimesh.creation.torus(major_radius=0.35, minor_radius=0.15,
                                  major_sections=96, minor_sections=48)
    rot = trimesh.transformations.rotation_matrix(np.radians(30.0), [1.0, 0.0, 0.0])
    mesh.apply_transform(rot)
    pts, _ = trimesh.sample.sample_surface(mesh, n_points, seed=seed)
    rng = np.random.default_rng(seed)
    pts = np.asarray(pts, dtype=np.float64) + rng.normal(0.0, noise, size=pts.shape)
    return Case(name, pts, mesh)


def sphere_case(n_points: int = 600, seed: int = 0, name: str = "sphere") -> Case:
    """A tiny sphere case (radius 0.4) for tests."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    pts, _ = trimesh.sample.sample_surface(mesh, n_points, seed=seed)
    return Case(name, np.asarray(pts, dtype=np.float64), mesh)


def default_cases(quick: bool = False) -> list[Case]:
    """The default case set: the repository's example mug (when present) and a torus.

    ``quick`` keeps only a small torus.
    """
    if quick:
        return [torus_case(n_points=1500)]
    cases = []
    if _EXAMPLE.is_file():
        from ..io import load_points

        gt = _EXAMPLE.with_name("example.gt.ply")
        cases.append(Case("mug", load_points(_EXAMPLE).points, gt if gt.is_file() else None))
    cases.append(torus_case())
    return cases


def load_cases(spec: Any = None, quick: bool = False, max_points: int | None = None,
               seed: int = 0) -> list[Case]:
    """Resolve a study's ``cases`` argument.

    Parameters
    ----------
    spec : None, folder path or list of Case
        None: :func:`default_cases`. A folder: every point file in it (``NAME.xyz``, ...;
        ``*.withnormals.*`` files are skipped) with ``NAME.gt.ply`` as ground truth when present.
    quick : bool
        Use the quick default set, and at most 2,000 points per case.
    max_points : int, optional
        Random subsample of larger scans (default 20,000; 2,000 when ``quick``).

    Returns
    -------
    list of Case
    """
    from ..errors import InputError

    cap = max_points if max_points is not None else (2000 if quick else 20_000)
    if spec is None:
        cases = default_cases(quick)
    elif isinstance(spec, (str, os.PathLike)):
        from ..io import load_points

        folder = Path(spec)
        if not folder.is_dir():
            raise InputError(folder, "cases folder not found" if not folder.exists() else "not a folder")
        exts = {".xyz", ".pts", ".txt", ".csv", ".npy", ".npz", ".pcd", ".ply"}
        cases = []
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in exts or ".withnormals" in f.name or ".gt." in f.name:
                continue
            gt = f.with_name(f.name.split(".")[0] + ".gt.ply")
            cases.append(Case(f.name.split(".")[0], load_points(f).points, gt if gt.is_file() else None))
        if not cases:
            raise InputError(folder, "no point files in the cases folder")
    else:
        cases = list(spec)
    rng = np.random.default_rng(seed)
    out = []
    for c in cases:
        pts = c.points
        if len(pts) > cap:
            pts = pts[np.sort(rng.choice(len(pts), cap, replace=False))]
        out.append(Case(c.name, pts, c.gt))
    return out


# ---------------------------------------------------------------------------- fitting
def model_config(quick: bool = False, **kw: Any):
    """The studies' network: 3×64 Softplus(β=100) (2×32 when ``quick``)."""
    from ..settings import ModelConfig

    base = dict(hidden_dim=32, n_hidden_layers=2) if quick else dict(hidden_dim=64, n_hidden_layers=3)
    base.update(activation="softplus", softplus_beta=100.0, init_radius=0.5)
    base.update(kw)
    return ModelConfig(**base)


def fit_settings(quick: bool = False, device: str = "cpu", seed: int = 0, **overrides: Any) -> dict:
    """Explicit small fit settings: keyword arguments of :class:`surfrec.FitConfig`.

    Every field a study relies on is set here (no preset is used), so changes of the
    library's defaults or presets do not change what a study measures.
    """
    s = dict(
        model=model_config(quick), iterations=30 if quick else 250, time_budget=None,
        lr=2e-3, lr_final_factor=0.05, warmup_steps=10, n_samples=512 if quick else 2048,
        batch_points=512 if quick else 2048, n_distance_samples=256 if quick else 1024,
        refresh_fraction=0.1, newton_steps=1, init_newton_steps=10, seed_k=10,
        seed_sigma_scale=1.0, uniform_fraction=0.2, sample_tol=1e-2, surface_weight=1.0,
        data_weight=1.0, distance_weight=0.5, distance_near_fraction=0.5, eikonal_weight=0.0, slope_weight=0.0,
        keep_far_fraction=0.0, closed_side_weight=0.0,
        normal_weight=0.0, level=0.0, eps=1e-8, box=1.0, device=device, seed=seed, log_every=10,
    )
    s.update(overrides)
    return s


def fit_config(quick: bool = False, device: str = "cpu", seed: int = 0, **overrides: Any):
    """:class:`surfrec.FitConfig` of :func:`fit_settings`."""
    from ..settings import FitConfig

    return FitConfig(**fit_settings(quick, device, seed, **overrides))


_FIT_CACHE: dict[tuple, Any] = {}


def fit_case(case: Case, quick: bool = False, device: str = "cpu", seed: int = 0,
             callback: Callable | None = None, cache: bool = True, on_step: Callable | None = None,
             **overrides: Any):
    """Fit a case with :func:`fit_settings` through :func:`surfrec.fit` (cached per process
    when no callback or ``on_step`` hook is given; the hook sees the training network)."""
    from ..run import fit
    from ..settings import ReconstructionConfig

    cfg = ReconstructionConfig(fit=fit_config(quick, device, seed, **overrides))
    key = (case.name, len(case.points), repr(cfg))
    cache = cache and callback is None and on_step is None
    if cache and key in _FIT_CACHE:
        return _FIT_CACHE[key]
    res = fit(case.points, config=cfg, callback=callback, on_step=on_step)
    if cache:
        _FIT_CACHE[key] = res
    return res


def score(result, case: Case, quick: bool = False, level: float | None = None,
          device: str = "cpu") -> dict:
    """Mesh a fitted model and score it against the case's ground truth.

    Returns
    -------
    dict
        ``cd`` (Chamfer-L1 × 1000 in units of the scan's largest box side), ``nc``,
        ``fscore`` (at 1% of the box side), ``faces``, ``watertight``, ``components``; NaNs when
        extraction fails or there is no ground truth.
    """
    from ..errors import EmptyLevelSetError
    from ..evaluation.metrics import evaluate
    from ..run import extract_mesh

    out = {"cd": float("nan"), "nc": float("nan"), "fscore": float("nan"), "faces": 0, "watertight": False,
           "components": 0}
    try:
        # the level set itself: no refinement onto the data, no membrane fill
        mesh = extract_mesh(result, resolution=48 if quick else 96, level=level, device=device, refine=False,
                            fill=0.0)
    except EmptyLevelSetError:
        return out
    out["faces"] = int(len(mesh.faces))
    out["watertight"] = bool(mesh.is_watertight)
    out["components"] = int(mesh.body_count)
    if case.gt is None or len(mesh.faces) == 0:
        return out
    s = evaluate(mesh, case.gt, n_samples=5000 if quick else 30_000, threshold_fractions=[0.01])
    side = float(s["protocol"].get("box_side", case.box_side)) if isinstance(s.get("protocol"), dict) else case.box_side
    out["cd"] = 1000.0 * s["chamfer_l1"] / side
    out["nc"] = float(s["normal_consistency"]) if s["normal_consistency"] is not None else float("nan")
    fkey = [k for k in s if k.startswith("fscore@")]
    out["fscore"] = float(s[fkey[0]]) if fkey else float("nan")
    return out


def unit_points(result, case: Case) -> np.ndarray:
    """The case's points in the fitted model's normalized frame, float32."""
    return result.normalization.to_unit(case.points).astype(np.float32)


def fit_like_seeds(unit: np.ndarray, n: int, *, k: int = 10, uniform_fraction: float = 0.2,
                   sigma: float | None = None, seed: int = 0, box: float = 1.0) -> torch.Tensor:
    """Seeds drawn as ``fit`` draws them (kNN σ clipped to [0.1, 10] × median, or a fixed σ)."""
    from ..field.levelset import draw_seeds, seed_sigmas

    s = seed_sigmas(unit, k, fixed=sigma)
    gen = torch.Generator().manual_seed(seed)
    return draw_seeds(torch.from_numpy(np.asarray(unit, np.float32)), torch.from_numpy(s.astype(np.float32)),
                      n, uniform_fraction=uniform_fraction, bounds=(-box, box), generator=gen)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeats`` times; the median wall-clock, all times, and the last result."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


# ---------------------------------------------------------------------------- reports
def plt():
    """matplotlib.pyplot on the Agg backend."""
    from ..optional import require

    matplotlib = require("matplotlib", "the studies' figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_figure(fig, path: str | os.PathLike, dpi: int = 90) -> Path:
    """Write a figure as PNG (atomically) and close it."""
    from ..io import atomic_path

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt().close(fig)
    try:  # a 256-colour palette keeps the PNGs small (docs figures stay well under 200 KB)
        from PIL import Image

        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(256)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
    except ImportError:  # pragma: no cover - matplotlib depends on pillow
        pass
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.getvalue())
    return path


def write_csv(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write dict rows as CSV (columns: union of keys in first-seen order), atomically."""
    from ..io import atomic_path

    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(v, csv_mode=True) for k, v in r.items()})
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buf.getvalue())
    return path


def _fmt(v: Any, csv_mode: bool = False) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if np.isnan(v):
            return "nan" if csv_mode else "–"
        if csv_mode:
            return f"{v:.6g}"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.4g}"
    return str(v)


def md_table(rows: Sequence[dict], cols: Sequence[str] | None = None) -> str:
    """A Markdown table of dict rows."""
    if not rows:
        return "(no rows)\n"
    cols = list(cols or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class Report:
    """A Markdown report assembled section by section."""

    title: str
    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        """Append markdown text."""
        self.parts.append(text.rstrip() + "\n")

    def table(self, rows: Sequence[dict], cols: Sequence[str] | None = None) -> None:
        """Append a markdown table of ``rows`` (dicts with the same keys)."""
        self.parts.append(md_table(rows, cols))

    def figure(self, path: Path, caption: str) -> None:
        """Append a figure saved beside the report."""
        self.parts.append(f"![{caption}]({Path(path).name})\n\n*{caption}*\n")

    def write(self, path: str | os.PathLike) -> Path:
        """Write the report (markdown) and return its path."""
        from ..io import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(f"# {self.title}\n\n" + "\n".join(self.parts))
        return path


def setup_note(quick: bool, device: str, cases: Sequence[Case], seed: int, extra: str = "") -> str:
    """The 'how this was run' paragraph every report starts with."""
    import platform

    names = ", ".join(f"{c.name} ({len(c.points)} pts{'' if c.gt is not None else ', no ground truth'})"
                      for c in cases)
    return (f"Run: {'quick' if quick else 'full'} mode, device `{device}`, seed {seed}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {platform.node()}. "
            f"Cases: {names}. {extra}\n\nDistances (Chamfer CD, offsets) are reported ×1000 in units of "
            "each scan's largest box side unless noted; residuals |F − c| and levels c are in F's "
            "normalized units (the scan's largest half side is 0.8).\n")


def prepare_out(out: str | os.PathLike) -> Path:
    """Create the study's output folder and return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
