"""Study ``level``: levels c ≠ 0 — does F behave like a distance?

The reviewer suggested stating the method for a general level c. Two questions:

1. **Extracting** S_c from a model fitted at level 0: how far does S_c lie from S_0, compared
   with |c|? For a signed distance function every point of S_c is at distance exactly |c|
   from S_0 (ratio 1). Each c-level mesh is sampled and every sample's distance to the
   0-level mesh (and to the ground truth) is computed; ‖∇ₓF‖ on S_0 is reported too (1 for
   a distance function).
2. **Fitting** at level c ≠ 0 (``FitConfig.level = c``): the surface is then S_c; is it as
   good as a level-0 fit, and where does that model's S_0 lie?

All distances here are in F's normalized units (the scan's largest half side is 0.8) so
they compare directly with c.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..field.levelset import value_and_grad
from . import common

log = logging.getLogger(__name__)


def point_mesh_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unsigned distance of each point to a triangle mesh (point-cloud-utils, float64), (N,)."""
    import point_cloud_utils as pcu

    dist, _, _ = pcu.closest_points_on_mesh(np.ascontiguousarray(points, dtype=np.float64),
                                            np.ascontiguousarray(vertices, dtype=np.float64),
                                            np.ascontiguousarray(faces, dtype=np.int64))
    return np.asarray(dist, dtype=np.float64)


def _unit_mesh(mesh, norm):
    return norm.to_unit(np.asarray(mesh.vertices)), np.asarray(mesh.faces)


def run_level_study(cases: Any = None, out: str | Path = "out/studies/level", quick: bool = False,
                    seed: int = 0, device: str = "cpu") -> Path:
    """Extract and fit levels c ≠ 0 and compare offsets with |c| (see module doc).

    Returns
    -------
    Path of ``report.md`` (beside it: ``level.csv``, ``fit_level.csv``, ``level.png``).
    """
    out = common.prepare_out(out)
    cases = common.load_cases(cases, quick, seed=seed)
    levels = (-0.03, 0.03) if quick else (-0.1, -0.05, -0.02, -0.01, 0.01, 0.02, 0.05, 0.1)
    fit_levels = (0.03,) if quick else (-0.03, 0.03)
    resolution = 48 if quick else 128
    n_samp = 2000 if quick else 20_000
    rows, fit_rows = [], []
    for case in cases:
        res = common.fit_case(case, quick, device, seed)
        rows += _offset_rows(res, case, levels, resolution, n_samp, seed, device)
        q0 = common.score(res, case, quick, device=device)
        fit_rows.append({"case": case.name, "fitted_c": 0.0, "extracted": "S_0", **q0})
        fit_rows += [_fitted_level_row(case, c, quick, resolution, n_samp, seed, device) for c in fit_levels]
    common.write_csv(rows, out / "level.csv")
    common.write_csv(fit_rows, out / "fit_level.csv")
    fig_path = _figure(rows, cases, out)
    return _report(rows, fit_rows, cases, fig_path, out, quick, device, seed, resolution, n_samp, levels)


def _samples(mesh, norm, n: int, seed: int):
    """(vertices, faces) of a mesh in normalized coordinates and ``n`` samples of its surface."""
    import trimesh

    v, f = _unit_mesh(mesh, norm)
    pts, _ = trimesh.sample.sample_surface(trimesh.Trimesh(v, f, process=False), n, seed=seed)
    return v, f, pts


def _offset_rows(res, case, levels, resolution: int, n_samp: int, seed: int, device: str) -> list[dict]:
    """Distances of the extracted S_c of a level-0 fit from S_0 (and the truth), per level c."""
    import trimesh

    from ..run import extract_mesh

    norm = res.normalization
    v0, f0, s0 = _samples(extract_mesh(res, resolution=resolution, level=0.0, device=device, refine=False, fill=0.0),
                          norm, n_samp, seed)
    gt = None
    if case.gt is not None:
        g = case.gt if isinstance(case.gt, trimesh.Trimesh) else trimesh.load(case.gt, force="mesh")
        gt = _unit_mesh(g, norm)
    with torch.no_grad():
        _, g0 = value_and_grad(res.model, torch.as_tensor(s0, dtype=torch.float32))
    gn = g0.norm(dim=1).numpy()
    rows = []
    for c in levels:
        try:
            mc = extract_mesh(res, resolution=resolution, level=c, device=device, refine=False, fill=0.0)
        except Exception as exc:  # noqa: BLE001 - an empty level set is a result here
            log.info("level %g: %s", c, exc)
            rows.append({"case": case.name, "c": c, "faces": 0})
            continue
        _, fc, sc = _samples(mc, norm, n_samp, seed)
        d = point_mesh_distance(sc, v0, f0)
        ratio = d / abs(c)
        row = {"case": case.name, "c": c, "faces": int(len(fc)),
               "dist_to_S0_median": float(np.median(d)), "ratio_median": float(np.median(ratio)),
               "ratio_p10": float(np.quantile(ratio, 0.1)), "ratio_p90": float(np.quantile(ratio, 0.9)),
               "grad_norm_S0_median": float(np.median(gn)),
               "grad_norm_S0_p10": float(np.quantile(gn, 0.1)),
               "grad_norm_S0_p90": float(np.quantile(gn, 0.9))}
        if gt is not None:
            dg = point_mesh_distance(sc, *gt)
            row["dist_to_gt_median"] = float(np.median(dg))
            row["ratio_gt_median"] = float(np.median(dg / abs(c)))
        rows.append(row)
    return rows


def _fitted_level_row(case, c: float, quick: bool, resolution: int, n_samp: int, seed: int, device: str) -> dict:
    """Fit at level c: scores, and how far the model's S_0 lies from its S_c."""
    from ..run import extract_mesh

    rc = common.fit_case(case, quick, device, seed, level=c)
    qc = common.score(rc, case, quick, level=c, device=device)
    row = {"case": case.name, "fitted_c": c, "extracted": "S_c", **qc}
    try:
        mc = extract_mesh(rc, resolution=resolution, level=c, device=device, refine=False, fill=0.0)
        mz = extract_mesh(rc, resolution=resolution, level=0.0, device=device, refine=False, fill=0.0)
        _, _, sz = _samples(mz, rc.normalization, n_samp, seed)
        vc, fc = _unit_mesh(mc, rc.normalization)
        d = point_mesh_distance(sz, vc, fc)
        row["S0_to_Sc_median"] = float(np.median(d))
        row["S0_to_Sc_ratio"] = float(np.median(d) / abs(c))
    except Exception as exc:  # noqa: BLE001
        log.info("fitted level %g: %s", c, exc)
    return row


def _figure(rows, cases, out):
    plt = common.plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for j, case in enumerate(cases):
        rs = [r for r in rows if r["case"] == case.name and "ratio_median" in r]
        cs = np.array([r["c"] for r in rs])
        ax.plot(cs, [r["ratio_median"] for r in rs], "o-", color=f"C{j}", label=f"{case.name}: to S_0")
        ax.fill_between(cs, [r["ratio_p10"] for r in rs], [r["ratio_p90"] for r in rs], color=f"C{j}", alpha=0.2)
        if rs and "ratio_gt_median" in rs[0]:
            ax.plot(cs, [r["ratio_gt_median"] for r in rs], "x--", color=f"C{j}", label=f"{case.name}: to ground truth")
    ax.axhline(1.0, color="k", linewidth=0.8, linestyle=":")
    ax.set_xlabel("level c (normalized units)")
    ax.set_ylabel("distance / |c|")
    ax.set_title("Distance of S_c from S_0 relative to |c| (1 = distance function)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return common.save_figure(fig, out / "level.png")


def _report(rows, fit_rows, cases, fig_path, out, quick, device, seed, resolution, n_samp, levels) -> Path:
    rep = common.Report("Study: levels c ≠ 0")
    rep.add(common.setup_note(quick, device, cases, seed,
                              f"Marching cubes at resolution {resolution}; {n_samp} samples per level set."))
    rep.add(__doc__.split("\n\n", 1)[1])
    rep.add("## 1. Extracting S_c from a level-0 fit\n")
    rep.add("`ratio_*`: distance of S_c's samples to S_0 divided by |c| (median, 10th and 90th "
            "percentiles); `ratio_gt_median`: the same to the ground truth; `grad_norm_S0_*`: ‖∇F‖ on S_0.")
    rep.table(rows, ["case", "c", "dist_to_S0_median", "ratio_median", "ratio_p10", "ratio_p90",
                     "ratio_gt_median", "grad_norm_S0_median", "grad_norm_S0_p10", "grad_norm_S0_p90"])
    rep.figure(fig_path, "Median (band: 10th–90th percentile) distance from S_c to S_0 over |c|.")
    rep.add("## 2. Fitting at level c\n")
    rep.add("`S0_to_Sc_*`: how far the model's 0-level set lies from its fitted c-level set.")
    rep.table(fit_rows, ["case", "fitted_c", "extracted", "cd", "nc", "fscore", "components",
                         "S0_to_Sc_median", "S0_to_Sc_ratio"])
    rep.add("## Answer\n")
    lines = []
    for case in cases:
        rs = [r for r in rows if r["case"] == case.name and "ratio_median" in r]
        if rs:
            lines.append(f"- **{case.name}**: S_c lies at {min(r['ratio_median'] for r in rs):.2f}–"
                         f"{max(r['ratio_median'] for r in rs):.2f} × |c| from S_0 (median over samples, "
                         f"c from {min(levels):g} to {max(levels):g}); ‖∇F‖ on S_0 median "
                         f"{rs[0]['grad_norm_S0_median']:.2f}.")
        fr = [r for r in fit_rows if r["case"] == case.name]
        lines.append("  Fitting at c: CD " + ", ".join(f"c={r['fitted_c']:g}: {r['cd']:.3g}" for r in fr) + ".")
    rep.add("\n".join(lines))
    return rep.write(out / "report.md")
