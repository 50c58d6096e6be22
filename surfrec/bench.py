"""Side-by-side benchmark: every method on every case of a folder, timed and scored.

A case is a scan ``NAME.xyz`` (or ``.ply``, ``.pts``, ``.npy`` ...) with a ground truth
``NAME.gt.ply`` beside it. Each (case, method) runs in a fresh subprocess, so its time and
peak resident memory are its own; the mesh it writes is scored with
:func:`surfrec.evaluation.metrics.evaluate` in the parent. Results go to ``OUT/results.csv``,
``OUT/RESULTS.md`` and ``OUT/previews/NAME.png``; finished (case, method) pairs are
skipped on a re-run unless ``force``. One failing case is recorded and the rest go on.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import InputError
from .resources import peak_rss_mb
from .validation import SAMPLES, TIMEOUT, check_range

log = logging.getLogger(__name__)

#: Methods understood by the bench (``surfrec-<preset>`` selects a preset).
METHODS = ("surfrec", "surfrec-fast", "surfrec-quality", "surfrec-raw", "poisson", "ball-pivoting")
_SCAN_EXTENSIONS = (".xyz", ".ply", ".pts", ".txt", ".npy", ".npz", ".pcd")
#: Columns of results.csv, in order.
#: Stages of the time breakdown (``t_<stage>`` columns; ``seconds`` is read → written mesh).
STAGES = ("read", "inspect", "index", "orient", "sigma", "sides", "start", "fit", "extract", "filter", "pretrim", "refine",
          "surface", "fill", "trim", "support", "write")
#: Columns of results.csv, in order.
COLUMNS = ("case", "method", "status", "seconds", "peak_mem_mb", "chamfer_l1", "chamfer_l2",
           "hausdorff", "normal_consistency", "fscore_0.005", "fscore_0.01", "n_faces", "watertight",
           "n_components", "steps", "stopped_by", *(f"t_{s}" for s in STAGES), "error")


@dataclass
class Case:
    """One benchmark case: a scan and its ground-truth mesh."""

    name: str
    scan: Path
    gt: Path


def find_cases(folder: str | os.PathLike, names: Sequence[str] | None = None) -> list[Case]:
    """Cases ``NAME.<scan ext>`` + ``NAME.gt.ply`` in ``folder`` (sorted by name).

    ``NAME.withnormals.*`` files are not separate cases.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder" if folder.exists() else "folder not found")
    cases: dict[str, Case] = {}
    for gt in sorted(folder.glob("*.gt.ply")):
        name = gt.name[: -len(".gt.ply")]
        for ext in _SCAN_EXTENSIONS:
            scan = folder / f"{name}{ext}"
            if scan.is_file():
                cases[name] = Case(name, scan, gt)
                break
    if names:
        missing = [n for n in names if n not in cases]
        if missing:
            raise InputError(folder, f"no case named {', '.join(missing)} (found: {', '.join(cases) or 'none'})")
        cases = {n: cases[n] for n in names}
    if not cases:
        raise InputError(folder, "no cases: expected NAME.xyz (or .ply ...) beside NAME.gt.ply")
    return list(cases.values())


# ----------------------------------------------------------------- worker (subprocess)
def _worker(spec: dict) -> dict:
    """Run one method on one scan and write its mesh. Executed in a child process."""
    from .io import load_points, save_mesh

    method, scan, out = spec["method"], Path(spec["scan"]), Path(spec["out"])
    opts = spec.get("options", {})
    t0 = time.perf_counter()
    cloud = load_points(scan)
    stages: dict[str, float] = {"read": time.perf_counter() - t0}
    extra: dict = {}
    if method.startswith("surfrec"):
        from .run import reconstruct

        # surfrec-raw: the default preset without the refinement onto the data (ablation)
        raw = method == "surfrec-raw"
        preset = "default" if raw else method.split("-", 1)[1] if "-" in method else opts.get("preset", "default")
        overrides = dict(opts.get("settings", {}))
        if raw:
            overrides["mesh.refine"] = False
        rec = reconstruct(cloud, preset=preset, **overrides)
        mesh = rec.mesh
        stages.update({k: v for k, v in rec.report.timings.as_dict().items() if k not in ("read", "write")})
        info = rec.report.refine
        extra = {"fit_seconds": rec.result.seconds, "steps": rec.result.steps, "stopped_by": rec.result.stopped_by,
                 "refine_k": info.neighbors if info and info.applied else 0}
    elif method == "poisson":
        from .evaluation.baselines import poisson

        mesh = poisson(cloud.points, cloud.normals, depth=opts.get("poisson_depth", 9))
    elif method == "ball-pivoting":
        from .evaluation.baselines import ball_pivoting

        mesh = ball_pivoting(cloud.points, cloud.normals)
    else:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    t_write = time.perf_counter()
    save_mesh(mesh, out)
    stages["write"] = time.perf_counter() - t_write
    seconds = time.perf_counter() - t0  # from reading the scan to the written mesh
    extra.update({f"t_{k}": v for k, v in stages.items() if k in STAGES})
    return {"seconds": seconds, "peak_mem_mb": peak_rss_mb(), **extra}


def _run_in_subprocess(spec: dict, timeout: float | None) -> dict:
    cmd = [sys.executable, "-m", "surfrec.bench", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout:g} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SURFREC_BENCH ")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"status": "failed", "error": err[:300]}
    return {"status": "ok", **json.loads(lines[-1][len("SURFREC_BENCH "):])}


# ------------------------------------------------------------------------ the runner
def _bench_one(case, method: str, out: Path, label: str, force: bool, samples: int, options: dict | None,
               timeout: float | None) -> dict:
    """One (case, method): reuse a finished record, or run it in a subprocess and score it."""
    record = out / "runs" / f"{case.name}__{method}.json"
    mesh_path = out / "meshes" / f"{case.name}__{method}.ply"
    if record.is_file() and not force:
        row = json.loads(record.read_text())
        if row.get("status") == "ok":
            log.info("%s: done before, skipped (use --force to re-run)", label)
            return row
    spec = {"method": method, "scan": str(case.scan), "out": str(mesh_path), "options": options or {}}
    log.info("%s: running", label)
    row = {"case": case.name, "method": method, **_run_in_subprocess(spec, timeout)}
    if row["status"] == "ok":
        _score_into(row, mesh_path, case, samples)
    if row["status"] != "ok":
        log.warning("%s failed: %s", label, row.get("error"))
    from .io import atomic_path

    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps(row, indent=2, default=_json_default))
    return row


def _score_into(row: dict, mesh_path: Path, case, samples: int) -> None:
    """Scores and topology of a written mesh, into ``row`` (a broken mesh fails its case only)."""
    from .surface.components import mesh_report
    from .evaluation.metrics import evaluate

    try:
        import trimesh

        mesh = trimesh.load(mesh_path, process=False, force="mesh")
        scores = evaluate(mesh, case.gt, n_samples=samples)
        rep = mesh_report(mesh)
        row.update({
            "chamfer_l1": scores["chamfer_l1"], "chamfer_l2": scores["chamfer_l2"],
            "hausdorff": scores["hausdorff"], "normal_consistency": scores["normal_consistency"],
            "fscore_0.005": _fscore(scores, 0.005), "fscore_0.01": _fscore(scores, 0.01),
            "n_faces": rep.get("n_faces"), "watertight": rep.get("watertight"),
            "n_components": rep.get("n_components"),
        })
    except Exception as exc:  # noqa: BLE001 - a broken mesh fails its case only
        row.update({"status": "failed", "error": f"scoring: {exc}"})


def run_bench(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    methods: Sequence[str] = ("surfrec", "poisson"),
    *,
    cases: Sequence[str] | None = None,
    force: bool = False,
    samples: int = 100_000,
    options: dict | None = None,
    timeout: float | None = 3600.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[dict]:
    """Run, time and score every method on every case; write CSV, Markdown and previews.

    Parameters
    ----------
    folder : path
        Folder of cases (see :func:`find_cases`).
    out : path
        Output folder (created).
    methods : sequence of str
        Names from :data:`METHODS`.
    cases : sequence of str, optional
        Only these case names.
    force : bool
        Re-run (case, method) pairs that already have results.
    samples : int
        Surface samples per side for the metrics.
    options : dict, optional
        ``poisson_depth`` (Poisson's octree depth) and ``settings``: surfrec's settings by
        name (``{"fit.iterations": 300, "mesh.resolution": 192}``), checked before any run.
    timeout : float, optional
        Seconds allowed per (case, method).
    progress : callable, optional
        ``progress(done, total, label)``.

    Returns
    -------
    list of dict
        One row per (case, method) with the keys of :data:`COLUMNS`.
    """
    from .settings import get_config

    check_range("samples", samples, SAMPLES)
    check_range("timeout", timeout, TIMEOUT)
    get_config("default", **(options or {}).get("settings", {}))  # bad settings: one line before any run
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    found = find_cases(folder, cases)
    out = Path(out)
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    rows: list[dict] = []
    total = len(found) * len(methods)
    done = 0
    for case in found:
        for method in methods:
            label = f"{case.name} / {method}"
            if progress:
                progress(done, total, label)
            rows.append(_bench_one(case, method, out, label, force, samples, options, timeout))
            done += 1
    if progress:
        progress(done, total, "writing report")
    write_reports(rows, out, found, methods)
    return rows


def _fscore(scores: dict, frac: float) -> float | None:
    """F-score at a threshold given as a fraction of the ground truth's box side."""
    from .evaluation.metrics import threshold_key

    proto = scores.get("protocol", {})
    for t, fr in zip(proto.get("thresholds", []), proto.get("threshold_fractions") or []):
        if fr is not None and abs(fr - frac) < 1e-12:
            return float(scores[threshold_key("fscore", t)])
    return None


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(type(o).__name__)


def write_reports(rows: list[dict], out: Path, found: list[Case], methods: Sequence[str]) -> None:
    """results.csv, RESULTS.md (with ratios to Poisson when it ran) and previews."""
    from .io import atomic_path

    with atomic_path(out / "results.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k) for k in COLUMNS})
    with atomic_path(out / "RESULTS.md") as tmp:
        tmp.write_text(format_markdown(rows, methods))
    for case in found:
        try:
            render_case_preview(case, [m for m in methods], out)
        except Exception as exc:  # noqa: BLE001 - previews are a convenience
            log.warning("preview of %s failed: %s", case.name, exc)


def format_markdown(rows: list[dict], methods: Sequence[str]) -> str:
    """The results table: CD×1000, NC, F@0.5%, Hausdorff, seconds, memory, ratios to Poisson."""
    by = {(r["case"], r["method"]): r for r in rows}
    cases = list(dict.fromkeys(r["case"] for r in rows))
    lines = ["| case | method | CD-L1 ×1000 | NC | F@0.5% | Hausdorff | seconds | peak MB | CD / Poisson | s / Poisson |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, fmt):
        return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    for c in cases:
        p = by.get((c, "poisson"))
        for m in methods:
            r = by.get((c, m))
            if r is None:
                continue
            if r.get("status") != "ok":
                lines.append(f"| {c} | {m} | failed: {r.get('error', '')} | | | | | | | |")
                continue
            cd = r.get("chamfer_l1")
            ratio = ratio_s = None
            if p and p.get("status") == "ok" and m != "poisson":
                ratio = cd / p["chamfer_l1"] if cd is not None and p.get("chamfer_l1") else None
                ratio_s = r["seconds"] / p["seconds"] if p.get("seconds") else None
            lines.append(
                f"| {c} | {m} | {f(cd * 1000 if cd is not None else None, '.3f')} | "
                f"{f(r.get('normal_consistency'), '.3f')} | {f(r.get('fscore_0.005'), '.3f')} | "
                f"{f(r.get('hausdorff'), '.4f')} | {f(r.get('seconds'), '.1f')} | {f(r.get('peak_mem_mb'), '.0f')} | "
                f"{f(ratio, '.2f')} | {f(ratio_s, '.2f')} |")
    # means per method over cases where every method succeeded
    ok_cases = [c for c in cases if all(by.get((c, m), {}).get("status") == "ok" for m in methods)]
    if ok_cases:
        lines += ["", f"Means over the {len(ok_cases)} cases where every method succeeded:", "",
                  "| method | mean CD-L1 ×1000 | mean NC | mean seconds | mean CD / Poisson's mean |", "|---|---|---|---|---|"]
        pm = np.mean([by[(c, "poisson")]["chamfer_l1"] for c in ok_cases]) if "poisson" in methods else None
        for m in methods:
            cd = np.mean([by[(c, m)]["chamfer_l1"] for c in ok_cases])
            nc = np.mean([by[(c, m)]["normal_consistency"] for c in ok_cases])
            sec = np.mean([by[(c, m)]["seconds"] for c in ok_cases])
            lines.append(f"| {m} | {cd * 1000:.3f} | {nc:.3f} | {sec:.1f} | {f(cd / pm if pm else None, '.2f')} |")
    lines += ["", "CD-L1: mean of the two one-sided mean point-to-mesh distances (100k surface samples per side "
              "unless stated), in the ground truth's units; NC: absolute normal consistency; F@0.5%: F-score at "
              "0.5% of the ground truth's largest box side; seconds: wall clock from reading the scan to the written mesh (interpreter start excluded; the t_* columns of results.csv break it down); "
              "peak MB: the peak resident memory of the process that ran it."]
    return "\n".join(lines) + "\n"


def render_case_preview(case: Case, methods: Sequence[str], out: Path) -> Path:
    """A PNG with the ground truth and each method's mesh side by side."""
    import trimesh

    from .evaluation.render import render_meshes_png

    meshes = [("ground truth", trimesh.load(case.gt, process=False, force="mesh"))]
    for m in methods:
        p = out / "meshes" / f"{case.name}__{m}.ply"
        if p.is_file():
            meshes.append((m, trimesh.load(p, process=False, force="mesh")))
    (out / "previews").mkdir(exist_ok=True)
    return render_meshes_png(meshes, out / "previews" / f"{case.name}.png", title=case.name)


def _main(argv: list[str]) -> int:
    """Child-process entry: ``python -m surfrec.bench '<json spec>'``."""
    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(argv[0])
    res = _worker(spec)
    sys.stdout.write("SURFREC_BENCH " + json.dumps(res) + "\n")  # the parent parses this line
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
