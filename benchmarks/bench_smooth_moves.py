"""A lead, not in the library: smooth the refinement's moves over the mesh at the scan's
point spacing (benchmarks/EXPERIMENTS.md, session 12).

On scans whose points lie farther apart than the mesh's cells, neighbouring vertices get
their heights from neighbour sets that switch as they move, and the refined surface
roughens (normal consistency falls). Here each vertex's move along its normal is
averaged with its edge neighbours' in ``round(c · max(0, (spacing / cell)² − floor))``
half-steps of a uniform Laplacian (the diffusion reaches about the point spacing), after
the library's refinement (``surfrec.run._refine_onto_data`` is wrapped for the run).
``floor`` is 1 (no smoothing up to one cell between points) unless a SPEC sets ``"floor"``;
the first table of EXPERIMENTS.md, session 12, used ``"floor": 0``. ``"gate": "noise"``
takes ``round(c · (noise / cell)²)`` half-steps instead (the noise from the refinement's
plan).

Usage::

    python benchmarks/bench_smooth_moves.py MODEL.pt GT.ply '{"refine": {...}}' '{"refine": {...}, "c": 2}'

Each SPEC: ``extract_mesh`` keyword arguments, ``"refine"`` RefineConfig fields to replace,
``"c"`` the smoothing constant (0: none). Prints CD-L1 ×1000 and NC against GT.
"""
import sys, json, dataclasses, numpy as np, scipy.sparse as sp, trimesh, surfrec
import surfrec.pipeline as P
from surfrec.evaluation.metrics import evaluate
orig = P._refine_onto_data
STATE = {"c": 0.0}
def wrapped(mesh, result, dev, cell, cfg, normals_ready):
    refined, info = orig(mesh, result, dev, cell, cfg, normals_ready)
    c = STATE["c"]
    if not c or not info.get("applied"):
        return refined, info
    ratio = info["spacing"] / cell
    if STATE.get("gate") == "noise":  # the scale of the scan's noise instead of its spacing
        rn = info["noise"] / cell
        m = int(round(c * rn * rn))
    else:
        m = int(round(c * max(0.0, ratio * ratio - STATE.get("floor", 1.0))))
    v0 = np.asarray(mesh.vertices); v1 = np.asarray(refined.vertices)
    n = np.asarray(mesh.vertex_normals)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    d = ((v1 - v0) * n).sum(1)
    f = np.asarray(mesh.faces); e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v0),) * 2).tocsr()
    A = ((A + A.T) > 0).astype(np.float64); deg = np.asarray(A.sum(1)).ravel()
    for _ in range(m):
        d = 0.5 * d + 0.5 * (A @ d) / np.maximum(deg, 1)
    out = trimesh.Trimesh(v0 + d[:, None] * n, mesh.faces, process=False)
    if normals_ready:
        from surfrec.surface.extract import gradient_normals
        from surfrec.result import FIELD_BATCH
        out.vertex_normals = gradient_normals(out, result.gradient(dev), FIELD_BATCH)
    info = dict(info, smooth_iters=m)
    return out, info
P._refine_onto_data = wrapped
res = surfrec.load_model(sys.argv[1]); gt = sys.argv[2]
for spec in sys.argv[3:]:
    kw = json.loads(spec); STATE["c"] = kw.pop("c", 0.0); STATE["floor"] = kw.pop("floor", 1.0)
    STATE["gate"] = kw.pop("gate", "spacing")
    rc = kw.pop("refine", None)
    if rc is not None:
        kw["refine_config"] = dataclasses.replace(res.config.refine, **rc)
    r = {}; mesh = surfrec.extract_mesh(res, report=r, **kw)
    e = evaluate(mesh, gt)
    print(sys.argv[1].split('/')[-1], spec, 'w', (r['refine'] or {}).get('weight'), 'iters', (r['refine'] or {}).get('smooth_iters'),
          f"CD {e['chamfer_l1']*1000:.4f} NC {e['normal_consistency']:.4f}", flush=True)
