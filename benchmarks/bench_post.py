"""CPU seconds of the post-fit stages (extract, refine, surface + support map) of
``surfrec.extract_mesh`` at its defaults, for two source trees, interleaved.

Each measurement is a fresh subprocess (cwd = the tree, so ``python -m``-style imports take
that tree's ``surfrec``) that loads a model file, runs ``extract_mesh`` once with 1 torch
thread and prints the process time of each stage (``pipeline._extract``,
``_refine_onto_data``, ``_surface_and_support``, outermost calls only) and of the whole
call, the face count and the vertices' digest. The trees alternate within each repeat
(A B A B ...), and the medians are printed as a markdown table; the meshes of the two trees
are compared (face count, max vertex difference in normalized units: a bound on how far the
two surfaces, and so their Chamfer distances to any ground truth, can differ).

Usage::

    python benchmarks/bench_post.py --before /tmp/base --after . \\
        --scans /work/shared/data/bench/{armadillo,spot_noisy,fandisk}.xyz --repeats 3

Models are fitted once (``--steps`` iterations, seed 0, by the ``--before`` tree: a model
file of a newer surfrec may hold config fields an older one refuses) and cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

STAGES = ("extract", "refine", "surface", "total")

_MEASURE = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
import surfrec
from surfrec.run import run as pipeline
from surfrec.result import load_model

cpu = {"extract": 0.0, "refine": 0.0, "surface": 0.0}
depth = [0]

def timed(name, fn):
    def wrapper(*a, **k):
        depth[0] += 1
        c = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                cpu[name] += time.process_time() - c
    return wrapper

pipeline._extract = timed("extract", pipeline._extract)
pipeline._refine_onto_data = timed("refine", pipeline._refine_onto_data)
pipeline._surface_and_support = timed("surface", pipeline._surface_and_support)
res = load_model(sys.argv[1])
res.data_index()  # the fit's index exists after a fit: not part of the post-fit stages
c = time.process_time()
mesh = surfrec.extract_mesh(res)
cpu["total"] = time.process_time() - c
np.save(sys.argv[2], np.asarray(mesh.vertices, np.float64) / res.normalization.scale)
print(json.dumps({"cpu": cpu, "faces": int(len(mesh.faces))}))
"""

_FIT = r"""
import sys, torch, surfrec
from surfrec.result import save_model
res = surfrec.fit(sys.argv[1], iterations=int(sys.argv[3]), seed=0)
save_model(res, sys.argv[2])
"""


def _run(tree: Path, code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env, check=True,
                         capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="source tree A (e.g. git archive of the base)")
    ap.add_argument("--after", type=Path, default=Path("."), help="source tree B")
    ap.add_argument("--scans", nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/surfrec_bench_post"))
    ap.add_argument("--json", type=Path, help="write the raw measurements here")
    args = ap.parse_args()
    import numpy as np

    args.cache.mkdir(parents=True, exist_ok=True)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    raw: dict = {}
    print("| case | stage | before CPU s | after CPU s | ratio |\n|---|---|---|---|---|")
    for scan in args.scans:
        case = Path(scan).name.split(".")[0]
        model = args.cache / f"{case}_{args.steps}.pt"
        if not model.exists():
            # the older tree fits: newer code reads older model files, not always the reverse
            _run(trees["before"], _FIT, str(Path(scan).resolve()), str(model), str(args.steps))
        runs: dict[str, list] = {"before": [], "after": []}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                runs[name].append(json.loads(_run(tree, _MEASURE, str(model), str(args.cache / f"{case}_{name}.npy"))))
        med = {name: {st: statistics.median(r["cpu"][st] for r in rs) for st in STAGES} for name, rs in runs.items()}
        for st in STAGES:
            b, a = med["before"][st], med["after"][st]
            print(f"| {case} | {st} | {b:.2f} | {a:.2f} | {b / a:.2f}x |")
        vb = np.load(args.cache / f"{case}_before.npy")
        va = np.load(args.cache / f"{case}_after.npy")
        faces = {name: rs[0]["faces"] for name, rs in runs.items()}
        diff = float(np.abs(vb - va).max()) if vb.shape == va.shape else float("nan")
        raw[case] = {"runs": runs, "median": med, "faces": faces, "max_vertex_diff": diff}
        print(f"|  | faces {faces['before']} / {faces['after']}, max vertex diff {diff:.2e} (normalized) | | | |",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
