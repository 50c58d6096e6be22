"""A per-vertex neighbour count for the refinement, chosen by intersecting confidence
intervals (ICI), tried in session 12 and rejected (benchmarks/EXPERIMENTS.md, session 12).

For each vertex the refinement's local quadric is fitted on the nearest 10, 14, 20, 28, 40,
57, 80 and 113 scan points. Each fit's height ``a_k`` has a standard error ``σ·√v_k``:
σ the scan's noise from :func:`surfrec.surface.refine.estimate_noise`, ``v_k`` the exact variance
factor of the weighted, ridge-regularized intercept. k grows while the intervals
``a_k ± γ·σ·√v_k`` of every k so far still intersect (the bias of a larger neighbourhood
is what makes them part). The library's refinement is patched for the run; nothing here is
used by surfrec itself.

Usage::

    python benchmarks/bench_ici.py MODEL.pt --gt GT.ply | --scan SCAN --gammas 0.25 0.5 1 2
    python benchmarks/bench_ici.py --noise-curve SCAN [SCAN ...]

Prints, per γ (and the default first), the mean and median k chosen and the scores:
CD-L1 ×1000 against ``--gt``, or the one-sided distances against ``--scan``.
``--noise-curve`` prints a scan's noise estimate against the neighbours of its local fits,
in spacings s: raw (``estimate_noise``'s leave-one-out height) and corrected (divided by
√(1 + v), v the fit's own variance factor, so pure noise gives the same σ at every k; a
σ growing with k is detail the quadric misses).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

LADDER = (10, 14, 20, 28, 40, 57, 80, 113)


def _intercept_fit(design, s, base_w, h, robust_iterations: int, ridge: float):
    """surfrec.refine's reweighted quadric fit: height (m,), its variance factor v (m,), scale (m,)."""
    import surfrec.refine as R

    coef, scale, v = R._robust_quadric(design, s, base_w, h, robust_iterations, ridge, intercept_variance=True)
    return coef[:, 0], v, scale[:, 0]


def ici_heights(centers, normals, points, sigma: float, gamma: float, tree, point_normals=None,
                robust_iterations: int = 1, ridge: float = 1e-3, normal_agreement: float = 0.5,
                min_support: int = 6):
    """Heights (M,), residual scales (M,) and the k chosen (M,) for vertices ``centers`` (M, 3)."""
    import surfrec.refine as R

    centers, unit, points, pn_t = R._check_local_inputs(centers, normals, points, 6, False, point_normals)
    ladder = [q for q in LADDER if q <= len(points)]
    pts_t = torch.from_numpy(points)
    heights, scales, chosen = np.empty(len(centers)), np.empty(len(centers)), np.empty(len(centers), int)
    step = max(1, 65536 // ladder[-1])
    for start in range(0, len(centers), step):
        sl = slice(start, start + step)
        idx = np.atleast_2d(tree.query(centers[sl], k=ladder[-1])[1])
        offsets = (R._gather(pts_t, idx) - torch.from_numpy(centers[sl])[:, None, :]).float()
        n = torch.from_numpy(unit[sl]).float()
        agree_all = None if pn_t is None else (R._gather(pn_t, idx) * n[:, None]).sum(-1) >= normal_agreement
        m = len(offsets)
        lo, hi = torch.full((m,), -np.inf), torch.full((m,), np.inf)
        alive = torch.ones(m, dtype=torch.bool)
        best, best_scale, best_k = torch.zeros(m), torch.zeros(m), torch.zeros(m, dtype=torch.long)
        for q in ladder:
            s, design, base_w, h = R._local_design(offsets[:, :q], n)
            if agree_all is not None:
                base_w = base_w * torch.where(agree_all[:, :q], 1.0, R.DISAGREE_WEIGHT)
            a, v, sc = _intercept_fit(design, s, base_w, h, robust_iterations, ridge)
            if agree_all is not None:
                a = torch.where(agree_all[:, :q].sum(1) >= min_support, a, torch.zeros_like(a))
            sd = sigma * v.sqrt()
            lo, hi = torch.maximum(lo, a - gamma * sd), torch.minimum(hi, a + gamma * sd)
            take = (alive & (lo <= hi)) | (best_k == 0)
            best, best_scale = torch.where(take, a, best), torch.where(take, sc, best_scale)
            best_k = torch.where(take, torch.full_like(best_k, q), best_k)
            alive = alive & (lo <= hi)
        heights[sl], scales[sl], chosen[sl] = best.double().numpy(), best_scale.double().numpy(), best_k.numpy()
    return heights, scales, chosen


def noise_curve(points: np.ndarray, ks=(8, 10, 14, 20, 28, 40, 57, 80), n: int = 2000, seed: int = 0):
    """Spacing s and, per k, the raw and corrected noise estimates in units of s."""
    import surfrec.refine as R
    from surfrec.input.index import SpatialIndex

    sub = points[np.random.default_rng(seed).choice(len(points), size=min(n, len(points)), replace=False)]
    d, idx = SpatialIndex(points).query(sub, k=max(ks) + 1)
    s = float(np.median(d[:, 1]))
    rows = []
    for k in ks:
        nb = points[idx[:, 1:k + 1]]
        centred = nb - nb.mean(axis=1, keepdims=True)
        normals = np.linalg.eigh(np.einsum("mki,mkj->mij", centred, centred))[1][:, :, 0]
        heights, design, w, h = R._local_design(torch.from_numpy(nb - sub[:, None, :]).float(),
                                                torch.from_numpy(normals).float())
        a, v, _ = _intercept_fit(design, heights, w, h, 2, 1e-3)
        a, v = a.numpy(), v.numpy()
        rows.append((k, R.MAD_TO_SIGMA * np.median(np.abs(a)) / s,
                     R.MAD_TO_SIGMA * np.median(np.abs(a) / np.sqrt(1 + v)) / s))
    return s, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--noise-curve", nargs="+", metavar="SCAN")
    ap.add_argument("--gt")
    ap.add_argument("--scan")
    ap.add_argument("--gammas", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    args = ap.parse_args()

    import surfrec
    import surfrec.refine as R
    from surfrec.evaluation.metrics import evaluate
    from surfrec.surface.support import measure_support
    from surfrec.input.inspect import scan_spacing

    if args.noise_curve:
        for path in args.noise_curve:
            s, rows = noise_curve(surfrec.load_points(path).points)
            print(path, f"s {s:.4g}", " ".join(f"k{k}: {raw:.3f}/{cor:.3f}" for k, raw, cor in rows), flush=True)
        return

    original_heights, original_plan = R.local_heights, R.plan
    state: dict = {}

    def plan(points, cell, config=None, tree=None):
        decision = original_plan(points, cell, config, tree=tree)
        state["sigma"] = decision.noise
        return decision

    def local_heights(centers, normals, points, k, *, tree=None, exclude_self=False, point_normals=None, **kw):
        if exclude_self or "gamma" not in state:  # the noise estimate, or the default rule
            return original_heights(centers, normals, points, k, tree=tree, exclude_self=exclude_self,
                                    point_normals=point_normals, **kw)
        h, sc, chosen = ici_heights(centers, normals, points, state["sigma"], state["gamma"], tree, point_normals,
                                    robust_iterations=kw.get("robust_iterations", 1), ridge=kw.get("ridge", 1e-3),
                                    normal_agreement=kw.get("normal_agreement", 0.5),
                                    min_support=kw.get("min_support", 6))
        state["chosen"] = chosen
        return h, sc

    R.local_heights, R.plan = local_heights, plan
    result = surfrec.load_model(args.model)
    pts = surfrec.load_points(args.scan).points if args.scan else None
    for gamma in [None, *args.gammas]:
        state.pop("gamma", None)
        state.pop("chosen", None)
        if gamma is not None:
            state["gamma"] = gamma
        report: dict = {}
        mesh = surfrec.extract_mesh(result, report=report)
        ks = state.get("chosen")
        line = (f"gamma {gamma}: k " + (f"mean {ks.mean():.1f} median {np.median(ks):.0f}" if ks is not None
                                        else f"{report['refine']['neighbors']} (default rule)"))
        if args.gt:
            e = evaluate(mesh, args.gt)
            line += f"  CD-L1 x1000 {e['chamfer_l1'] * 1000:.4f}  NC {e['normal_consistency']:.4f}"
        if pts is not None:
            rep = measure_support(mesh.vertices, mesh.faces, pts, spacing=scan_spacing(pts))
            line += f"  scan->mesh {rep.scan_to_mesh_mean:.4f}  mesh->scan {rep.mesh_to_scan_mean:.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
