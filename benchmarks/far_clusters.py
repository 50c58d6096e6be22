"""Where a reconstruction is wrong: clusters of extra and missing surface against the ground truth.

Usage::

    python benchmarks/far_clusters.py CASE MESH.ply [MESH.ply ...]

Samples 100k points on the mesh and on CASE.gt.ply, marks samples farther than 0.5% of the
ground truth's box side from the other surface (rec→gt: extra surface, gt→rec: missing
surface), groups them (1%-of-side neighbourhoods) and prints the largest groups with their
centre, extent and mean distance to the scan. Sample-to-sample distances overestimate
the point-to-mesh ones of ``surfrec.evaluate``: compare meshes with each other.
(Used in benchmarks/EXPERIMENTS.md, session 5, to find the web over abc00994122's hole.)
"""

import os
import sys

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as cg
import trimesh
from scipy.spatial import cKDTree

BENCH = os.environ.get("SURFREC_BENCH", "/work/shared/data/bench")


def main() -> None:
    case, meshes = sys.argv[1], sys.argv[2:]
    gt = trimesh.load(f"{BENCH}/{case}.gt.ply")
    side = float((gt.bounds[1] - gt.bounds[0]).max())
    gs = gt.sample(100000)
    scan = cKDTree(np.loadtxt(f"{BENCH}/{case}.xyz")[:, :3])
    for f in meshes:
        rs = trimesh.load(f).sample(100000)
        da, _ = cKDTree(gs).query(rs)
        dc, _ = cKDTree(rs).query(gs)
        thr = 0.005 * side
        print(f"{os.path.basename(f)}: extra {100 * (da > thr).mean():.2f}% of rec samples, "
              f"missing {100 * (dc > thr).mean():.2f}% of gt samples")
        for name, pts, mask in (("extra", rs, da > thr), ("missing", gs, dc > thr)):
            p = pts[mask]
            if len(p) == 0:
                continue
            pairs = cKDTree(p).query_pairs(0.01 * side, output_type="ndarray")
            adj = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(p), len(p)))
            _, lab = cg.connected_components(adj, directed=False)
            sizes = np.bincount(lab)
            for c in np.argsort(-sizes)[:4]:
                q = p[lab == c]
                print(f"   {name}: {sizes[c]} samples, centre {np.round(q.mean(0), 3)}, extent "
                      f"{np.round(np.ptp(q, 0), 3)}, mean distance to the scan {scan.query(q)[0].mean():.4f}")


if __name__ == "__main__":
    main()
