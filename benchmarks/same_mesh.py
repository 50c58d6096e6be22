"""Behaviour check of a refactor: the same commands give the same mesh bytes.

Runs a fixed set of short reconstructions through every entry point (``surfrec fit``,
``mesh``, ``batch``, ``bench`` and the Python API) on the example scan and on scans of
../shared/data, and records the SHA-256 of every mesh written, of the fitted weights and of
the summary lines (times removed). Run it on two checkouts and compare::

    python benchmarks/same_mesh.py --repo /path/to/old/checkout --out /tmp/old
    python benchmarks/same_mesh.py --out /tmp/new --compare /tmp/old/hashes.json

``--repo`` selects the checkout whose ``surfrec`` package is imported (through PYTHONPATH);
default: this one. The fits are short (a few hundred steps) and the meshes coarse enough to
take a few minutes in all; every setting is fixed, so the bytes depend only on the code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SURFREC_SHARED_DATA", ROOT.parent / "shared" / "data"))

#: name -> surfrec command-line arguments ({out} is the output folder, {data} ../shared/data)
COMMANDS: dict[str, list[str]] = {
    "fit_demo": ["fit", "{root}/data/example.xyz", "-o", "{out}/fit_demo.ply", "--iters", "300",
                 "--save-model", "{out}/demo.pt"],
    "fit_fandisk": ["fit", "{data}/bench/fandisk.xyz", "-o", "{out}/fit_fandisk.ply", "--iters", "300",
                    "--resolution", "192"],
    "fit_bun000_open": ["fit", "{data}/scans/bunny_rangescan_bun000.xyz", "-o", "{out}/fit_bun000_open.ply",
                        "--iters", "300", "--save-model", "{out}/bun000.pt", "--resolution", "192"],
    "fit_milk_stray": ["fit", "{data}/scans/milk_carton.pcd", "-o", "{out}/fit_milk_stray.ply", "--iters", "300",
                       "--remove-stray", "--resolution", "160"],
    "fit_bunny_sparse_opts": ["fit", "{data}/bench/bunny_sparse.xyz", "-o", "{out}/fit_bunny_sparse_opts.ply",
                              "--iters", "300", "--trim", "2", "--fill", "0", "--neighbors", "14",
                              "--resolution", "128"],
    "fit_abc_fast": ["fit", "{data}/bench/abc00994122.xyz", "-o", "{out}/fit_abc_fast.ply", "--preset", "fast",
                     "--iters", "250", "--resolution", "160", "--seed", "3"],
    "mesh_raw": ["mesh", "{out}/demo.pt", "-o", "{out}/mesh_raw.ply", "--no-refine"],
    "mesh_level": ["mesh", "{out}/demo.pt", "-o", "{out}/mesh_level.ply", "--level", "0.01", "--resolution", "128"],
    "mesh_open": ["mesh", "{out}/demo.pt", "-o", "{out}/mesh_open.ply", "--surface", "open", "--resolution", "160"],
    "mesh_trim": ["mesh", "{out}/demo.pt", "-o", "{out}/mesh_trim.ply", "--trim", "1.5", "--resolution", "160"],
    "mesh_bun000_closed": ["mesh", "{out}/bun000.pt", "-o", "{out}/mesh_bun000_closed.ply", "--surface", "closed",
                           "--resolution", "128", "--components", "largest"],
    "batch": ["batch", "{root}/data/example.xyz", "{data}/bench/bunny_sparse.xyz", "-o", "{out}/batch",
              "--iters", "200", "--resolution", "128", "--fill", "1.5", "-q"],
    "bench": ["bench", "{out}/bench_case", "--methods", "surfrec", "--iters", "200", "--resolution", "128",
              "--out", "{out}/bench_out", "--samples", "20000", "-q"],
}

#: The Python API: fit, then mesh with an override (same settings as fit_demo, resolution 128).
API_SCRIPT = """
import sys, surfrec
result = surfrec.fit(sys.argv[1], iterations=300)
mesh = surfrec.extract_mesh(result, resolution=128)
surfrec.save_mesh(mesh, sys.argv[2])
"""

#: What a summary line may hold that is not behaviour (times, paths).
_NOISE = re.compile(r"\bin \d+(\.\d+)? s\b|\(fit [^)]*\)|\d+(\.\d+)? s\b|/\S+")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights_sha(path: Path, python: str, env: dict) -> str:
    """SHA-256 of a model file's weights and stored scan points (its history holds times)."""
    code = ("import sys, hashlib, torch\n"
            "p = torch.load(sys.argv[1], map_location='cpu', weights_only=True)\n"
            "h = hashlib.sha256()\n"
            "for k in sorted(p['state_dict']): h.update(k.encode()); h.update(p['state_dict'][k].numpy().tobytes())\n"
            "h.update(p['data_points'].numpy().tobytes())\n"
            "print(h.hexdigest())\n")
    return subprocess.run([python, "-c", code, str(path)], env=env, capture_output=True, text=True,
                          check=True, cwd=path.parent).stdout.strip()


def run(repo: Path, out: Path, only: list[str] | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONHASHSEED": "0"}
    case = out / "bench_case"
    case.mkdir(exist_ok=True)
    for name in ("example.xyz", "example.gt.ply"):
        if not (case / name).exists():
            shutil.copy(repo / "data" / name, case / name)
    fmt = {"root": str(repo), "out": str(out), "data": str(DATA)}
    hashes: dict[str, str] = {}
    for name, argv in COMMANDS.items():
        if only and name not in only:
            continue
        args = [a.format(**fmt) for a in argv]
        proc = subprocess.run([sys.executable, "-m", "surfrec", *args], env=env, capture_output=True, text=True,
                              cwd=out)  # not the caller's folder: a checkout there would shadow PYTHONPATH
        if proc.returncode != 0:
            hashes[f"{name}:exit"] = f"{proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
            print(f"{name}: exit {proc.returncode}", file=sys.stderr)
            continue
        lines = [_NOISE.sub("", ln) for ln in proc.stdout.splitlines() if ln.startswith("surfrec: ")]
        hashes[f"{name}:stdout"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        print(f"{name}: ok", file=sys.stderr)
    for mesh in sorted(out.rglob("*.ply")):
        if "bench_case" not in mesh.parts:
            hashes[str(mesh.relative_to(out))] = _sha(mesh)
    for model in sorted(out.glob("*.pt")):
        hashes[model.name] = _weights_sha(model, sys.executable, env)
    if not only or "api" in only:
        api = out / "api.ply"
        subprocess.run([sys.executable, "-c", API_SCRIPT, str(repo / "data" / "example.xyz"), str(api)],
                       env=env, check=True, capture_output=True, cwd=out)
        hashes["api.ply"] = _sha(api)
    return hashes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout whose surfrec is run (default: this one)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (meshes, models, hashes.json)")
    ap.add_argument("--compare", type=Path, default=None, help="hashes.json of another run to compare with")
    ap.add_argument("--only", default=None, help="comma-separated command names (default: all)")
    args = ap.parse_args()
    hashes = run(args.repo.resolve(), args.out.resolve(), args.only.split(",") if args.only else None)
    (args.out / "hashes.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))
    if args.compare is None:
        print(f"{len(hashes)} hashes written to {args.out / 'hashes.json'}")
        return 0
    other = json.loads(args.compare.read_text())
    keys = sorted(set(hashes) | set(other))
    diff = [k for k in keys if hashes.get(k) != other.get(k)]
    for k in keys:
        print(f"{'SAME' if k not in diff else 'DIFF'}  {k}")
    print(f"{len(keys) - len(diff)} of {len(keys)} identical")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
