"""The same fits meshed several ways: extraction and refinement settings compared without
the fit's seed noise.

Every case is fitted once with the default preset (seed ``--seed``; the model is cached in
``--cache``), then meshed by the stages after the fit (:func:`surfrec.run.mesh_stages`) once
per variant. A variant is a JSON object of :class:`~surfrec.settings.MeshConfig` fields to
replace (``fill``, ``trim``, ``neighbors``, ``resolution`` ...), where ``"refine"`` may also
be an object of :class:`~surfrec.settings.RefineConfig` fields to replace. Bench cases
(``../shared/data/bench``) are scored against their ground truth (CD-L1 ×1000, NC,
:func:`surfrec.evaluation.metrics.evaluate`); real scans with one-sided distances against
the whole scan (:func:`surfrec.surface.support.measure_support`, in scan units and in
spacings s), as the gargoyle's bound compares them with screened Poisson. Poisson rows
(``--poisson``) come from :func:`surfrec.evaluation.baselines.poisson` in the same run,
watertight (no density trim) and with the tutorial's 5% density trim. The generated scenes
of ``benchmarks/scenes.py`` are cases too (``--cases room_kinect``): their rows add
``m2gt_s``, the mesh's mean distance to the true surface in spacings. ``--truth`` adds a row
for the ground-truth mesh itself measured against the scan: on a noisy scan it shows how
close to the scan's points the true surface lies, which a reconstruction closer than that
follows the noise to reach.

Usage::

    python benchmarks/mesh_variants.py OUT.csv --cases armadillo gargoyle_srb \\
        --variants '{"fill": 0, "refine": {"neighbors": 20, "k_rule": "sum"}}' '{}' [--poisson]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
#: the bench folder (``SURFREC_BENCH`` selects another, e.g. noisy copies from make_noisy.py)
BENCH = Path(os.environ.get("SURFREC_BENCH", DATA / "bench"))
SCANS = {"gargoyle_srb": "gargoyle_srb.ply", "abc00994122_simscan": "abc00994122_simscan.xyz",
         "milk_carton": "milk_carton.pcd", "bunny_rangescan_bun000": "bunny_rangescan_bun000.xyz"}
TRUTH = {"abc00994122_simscan": "abc00994122_gt.ply"}
#: the demo scan (``example``) lives in the repository's data folder
EXAMPLE = HERE.parent / "data" / "example.xyz", HERE.parent / "data" / "example.gt.ply"
FIELDS = ("case", "variant", "seed", "cd_x1000", "nc", "cover", "phantom", "s2m", "m2s", "s2m_s", "m2s_s",
          "m2gt_s", "watertight", "faces", "refine_k", "refine_weight", "filled", "seconds")


def _paths(case: str) -> tuple[Path, Path | None]:
    if case == "example":
        return EXAMPLE
    if case in SCANS:
        gt = TRUTH.get(case)
        return DATA / "scans" / SCANS[case], (DATA / "scans" / gt if gt else None)
    return BENCH / f"{case}.xyz", BENCH / f"{case}.gt.ply"


def _score(mesh, scan_pts, gt, spacing, scene_truth=None) -> dict:
    from surfrec.evaluation.metrics import evaluate
    from surfrec.surface.support import measure_support

    row: dict = {"watertight": bool(mesh.is_watertight), "faces": len(mesh.faces)}
    if scene_truth is not None:  # an open scene: mean distance from the mesh to its true surface, in s
        from real_scans import mesh_to_truth

        row["m2gt_s"] = round(mesh_to_truth(mesh, scene_truth) / spacing, 4)
    if gt is not None:
        e = evaluate(mesh, gt)
        row.update(cd_x1000=round(e["chamfer_l1"] * 1000, 4), nc=round(e["normal_consistency"], 4))
    rep = measure_support(mesh.vertices, mesh.faces, scan_pts, spacing=spacing)
    row.update(cover=round(rep.cover, 4), phantom=round(rep.phantom, 4), s2m=rep.scan_to_mesh_mean,
               m2s=rep.mesh_to_scan_mean, s2m_s=round(rep.scan_to_mesh_mean_s, 4),
               m2s_s=round(rep.mesh_to_scan_mean_s, 4))
    return row


def variant_config(result, spec: dict):
    """The model's mesh settings with a variant's fields replaced (``"refine"`` as an object:
    RefineConfig fields)."""
    from surfrec.run import mesh_config

    spec = dict(spec)
    if isinstance(spec.get("refine"), dict):
        spec["refine_config"] = dataclasses.replace(result.config.mesh.refine_config, **spec.pop("refine"))
    return mesh_config(result, **spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--cases", nargs="+", required=True)
    ap.add_argument("--variants", nargs="+", default=["{}"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("out/models"))
    ap.add_argument("--poisson", action="store_true", help="also screened Poisson, watertight and trimmed")
    ap.add_argument("--truth", action="store_true", help="also the ground-truth mesh against the scan")
    args = ap.parse_args()

    import surfrec
    from scenes import SCENES, scene_points, scene_truth
    from surfrec.evaluation.baselines import poisson
    from surfrec.input.inspect import scan_spacing
    from surfrec.run import mesh_stages

    args.cache.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with open(args.out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for case in args.cases:
            truth_mesh = None
            if case in SCENES:  # generated scenes (benchmarks/scenes.py): points and truth from the generator
                pts, gt, truth_mesh = scene_points(case), None, scene_truth(case)
            else:
                scan, gt = _paths(case)
                pts = surfrec.load_points(scan).points
            s = scan_spacing(pts)
            model = args.cache / f"{case}_seed{args.seed}.pt"
            if model.exists():
                result = surfrec.load_model(model)
            else:
                result = surfrec.fit(pts, seed=args.seed, time_budget=0)
                surfrec.save_model(result, model)
            for spec in args.variants:
                t0 = time.perf_counter()
                mesh, report = mesh_stages(result, variant_config(result, json.loads(spec)))
                row = dict(case=case, variant=spec, seed=args.seed, seconds=round(time.perf_counter() - t0, 1),
                           refine_k=report.refine.neighbors if report.refine else None,
                           refine_weight=report.refine.weight if report.refine else None,
                           filled=report.surface.filled, **_score(mesh, pts, gt, s, truth_mesh))
                writer.writerow(row)
                fh.flush()
                print(json.dumps(row), flush=True)
            if args.truth and (gt is not None or truth_mesh is not None):
                import trimesh

                truth = truth_mesh if truth_mesh is not None else trimesh.load(gt)
                row = dict(case=case, variant="truth", seed="", seconds=0.0, **_score(truth, pts, gt, s, truth_mesh))
                writer.writerow(row)
                fh.flush()
                print(json.dumps(row), flush=True)
            if args.poisson:
                for name, q in (("poisson", 0.0), ("poisson-trim", 0.05)):
                    t0 = time.perf_counter()
                    mesh = poisson(pts, None, depth=9, density_quantile=q, crop_factor=0.0)
                    row = dict(case=case, variant=name, seed="", seconds=round(time.perf_counter() - t0, 1),
                               **_score(mesh, pts, gt, s, truth_mesh))
                    writer.writerow(row)
                    fh.flush()
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
