"""Many scans: one fit per scan, spread over local worker processes or a Ray cluster.

Every scan is reconstructed by :func:`surfrec.run.reconstruct` with the same settings (a
:class:`~surfrec.settings.ReconstructionConfig`, stored with each model) and gets
``OUT_DIR/<name>.<ext>`` (and ``<name>.pt`` on request). A manifest,
``OUT_DIR/manifest.json``, holds one record per scan (input, output, status, seconds,
peak memory, error) and is rewritten atomically after every scan, so an interrupted batch
loses nothing; running the same command again skips finished scans and retries failed
ones. One failing scan never stops the others.

Executors:

* ``workers == 1``: sequential, in this process.
* ``workers > 1``: a process pool (one fresh process per scan, so memory and torch state do
  not leak between scans); each fit uses the settings' fixed thread count, so a scan's mesh
  is the same whatever the number of workers or cores; use ``workers`` up to the number of
  cores.
* ``ray``: one Ray task per scan with declared resources (``num_cpus`` = threads,
  ``num_gpus`` = 1 for CUDA), on an existing cluster (address) or a local one. Workers
  write their outputs directly to OUT_DIR: on a multi-node cluster it must be shared
  storage (NFS, a mounted bucket) visible at the same path on every node.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .errors import InputError
from .resources import peak_rss_mb
from .settings import ReconstructionConfig
from .validation import BATCH, check_range

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass
class BatchJob:
    """One scan of a batch and where its results go."""

    input: str
    output: str
    model: str | None = None


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files, folders (their point-cloud files, not recursive) and glob patterns → sorted unique paths.

    Ground-truth meshes (``*.gt.ply``) found in folders are skipped.
    """
    from .io import SUPPORTED_POINT_EXTENSIONS

    found: list[Path] = []
    for item in inputs:
        s = os.fspath(item)
        p = Path(s)
        if p.is_dir():
            found += [q for q in sorted(p.iterdir())
                      if q.is_file() and q.suffix.lower() in SUPPORTED_POINT_EXTENSIONS
                      and not q.name.endswith(".gt.ply")]
        elif p.exists():
            found.append(p)
        elif glob.has_magic(s):
            matches = sorted(Path(m) for m in glob.glob(s, recursive=True))
            if not matches:
                raise InputError(s, "the pattern matches no file")
            found += [m for m in matches if m.is_file()]
        else:
            raise InputError(s, "no such file, folder or pattern")
    unique = list(dict.fromkeys(q.resolve() for q in found))
    if not unique:
        raise InputError(", ".join(map(os.fspath, inputs)) or "<none>", "no point-cloud files found")
    return unique


def plan_jobs(inputs: Sequence[Path], out_dir: Path, *, ext: str = ".ply", save_models: bool = False) -> list[BatchJob]:
    """Output names from input names; clashes (same name in two folders) get the folder prefixed."""
    stems: dict[str, int] = {}
    for p in inputs:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    jobs = []
    used: set[str] = set()
    for p in inputs:
        name = p.stem if stems[p.stem] == 1 else f"{p.parent.name}__{p.stem}"
        base, k = name, 1
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        jobs.append(BatchJob(str(p), str(out_dir / f"{name}{ext}"),
                             str(out_dir / f"{name}.pt") if save_models else None))
    return jobs


def run_one(job: BatchJob, config: ReconstructionConfig | dict) -> dict:
    """Reconstruct one scan; never raises: failures become a record with status ``failed``."""
    from .errors import SurfrecError

    t0 = time.perf_counter()
    rec = {"input": job.input, "output": job.output, "model": job.model, "status": "failed",
           "seconds": None, "peak_mem_mb": None, "error": None, "steps": None}
    try:
        from .run import reconstruct

        cfg = config if isinstance(config, ReconstructionConfig) else ReconstructionConfig.from_dict(config)
        done = reconstruct(job.input, config=cfg, output=job.output, model_path=job.model)
        rec.update(status="ok", steps=done.result.steps)
    except SurfrecError as exc:
        rec["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad scan must not stop the batch
        rec["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    rec["seconds"] = time.perf_counter() - t0
    rec["peak_mem_mb"] = peak_rss_mb()
    return rec


class Manifest:
    """The batch's records, keyed by input path, persisted atomically after each update."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST
        self.records: dict[str, dict] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                self.records = {r["input"]: r for r in data.get("scans", [])}
            except (ValueError, KeyError, TypeError):
                raise InputError(self.path, "manifest is not valid JSON from surfrec batch; move it away") from None

    def done(self, job: BatchJob) -> bool:
        """Whether this scan finished in an earlier run (its mesh is there)."""
        r = self.records.get(job.input)
        return bool(r and r.get("status") == "ok" and Path(r.get("output", "")).is_file()
                    and r.get("output") == job.output)

    def update(self, record: dict) -> None:
        """Record a scan's outcome and rewrite the manifest atomically."""
        from .io import atomic_path

        self.records[record["input"]] = record
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"format": "surfrec-batch-manifest", "version": 1,
                                       "scans": list(self.records.values())}, indent=2))


def default_threads(workers: int) -> int:
    """torch threads per worker so that workers × threads does not exceed the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def run_batch(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: ReconstructionConfig | None = None,
    *,
    workers: int = 1,
    ray: str | None = None,
    ext: str = ".ply",
    save_models: bool = False,
    progress: Callable[[int, int, dict | None], None] | None = None,
) -> list[dict]:
    """Reconstruct every scan; returns the records of this batch's scans (skipped ones included).

    Parameters
    ----------
    inputs : files, folders or glob patterns
    out_dir : output folder (created)
    config : ReconstructionConfig, optional
        The settings of every scan (default: the default preset).
    workers : int
        Local worker processes (ignored with ``ray``).
    ray : str or None
        ``"auto"`` (connect to a running cluster or start a local one), ``"local"`` (always
        start a local one) or a cluster address; None: no Ray.
    ext : str
        Mesh extension of the outputs.
    save_models : bool
        Also write ``<name>.pt`` model files.
    progress : callable
        ``progress(done, total, record_or_None)`` after each scan.
    """
    from .io import SUPPORTED_MESH_EXTENSIONS

    if ext.lower() not in SUPPORTED_MESH_EXTENSIONS:
        raise InputError(ext, f"unsupported mesh extension; use one of {', '.join(sorted(SUPPORTED_MESH_EXTENSIONS))}")
    check_range("workers", workers, BATCH["workers"])
    config = config or ReconstructionConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(expand_inputs(inputs), out.resolve(), ext=ext, save_models=save_models)
    manifest = Manifest(out)
    todo = [j for j in jobs if not manifest.done(j)]
    skipped = len(jobs) - len(todo)
    if skipped:
        log.info("%d of %d scans already done (skipped); %d to run", skipped, len(jobs), len(todo))
    done = skipped
    if progress:
        progress(done, len(jobs), None)

    def finished(rec: dict) -> None:
        nonlocal done
        manifest.update(rec)
        done += 1
        if rec["status"] != "ok":
            log.warning("%s failed: %s", rec["input"], rec["error"])
        if progress:
            progress(done, len(jobs), rec)

    if ray is not None:
        _run_ray(todo, config, ray, finished)
    elif workers == 1 or len(todo) <= 1:
        for job in todo:
            finished(run_one(job, config))
    else:
        _run_pool(todo, config, workers, finished)
    return [manifest.records[j.input] for j in jobs]


def _run_pool(jobs: list[BatchJob], config: ReconstructionConfig, workers: int,
              finished: Callable[[dict], None]) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_one, j, config): j for j in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker (e.g. killed for memory)
                rec = {"input": job.input, "output": job.output, "model": job.model, "status": "failed",
                       "seconds": None, "peak_mem_mb": None, "steps": None,
                       "error": f"worker crashed: {type(exc).__name__}: {exc}".splitlines()[0]}
            finished(rec)


def _run_ray(jobs: list[BatchJob], config: ReconstructionConfig, address: str,
             finished: Callable[[dict], None]) -> None:
    from .optional import require

    ray = require("ray", "surfrec batch --ray")

    started_here = False
    if not ray.is_initialized():
        kwargs = {"ignore_reinit_error": True, "include_dashboard": False, "logging_level": logging.WARNING,
                  "log_to_driver": False}
        if address == "local":
            ray.init(**kwargs)
        elif address == "auto":
            try:
                ray.init(address="auto", **kwargs)
            except (ConnectionError, RuntimeError):
                log.info("no running Ray cluster found: starting a local one")
                ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
        started_here = True
    try:
        use_gpu = config.fit.device.startswith("cuda")
        task = ray.remote(num_cpus=max(1, config.fit.threads or 1), num_gpus=1 if use_gpu else 0)(run_one)
        payload = config.to_dict()
        pending = {task.remote(j, payload): j for j in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    rec = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker or node
                    rec = {"input": job.input, "output": job.output, "model": job.model, "status": "failed",
                           "seconds": None, "peak_mem_mb": None, "steps": None,
                           "error": f"Ray task failed: {type(exc).__name__}".splitlines()[0]}
                finished(rec)
    finally:
        if started_here:
            ray.shutdown()


def summary_table(records: Iterable[dict]) -> str:
    """A plain-text table: one line per scan, then totals."""
    rows = list(records)
    lines = [f"{'status':<7} {'seconds':>8} {'peak MB':>8}  input -> output / error"]
    for r in rows:
        sec = f"{r['seconds']:.1f}" if r.get("seconds") is not None else "-"
        mem = f"{r['peak_mem_mb']:.0f}" if r.get("peak_mem_mb") is not None else "-"
        tail = Path(r["output"]).name if r["status"] == "ok" else r.get("error", "")
        lines.append(f"{r['status']:<7} {sec:>8} {mem:>8}  {Path(r['input']).name} -> {tail}")
    ok = sum(r["status"] == "ok" for r in rows)
    lines.append(f"{ok} of {len(rows)} scans ok, {len(rows) - ok} failed")
    return "\n".join(lines)


__all__ = ["BatchJob", "expand_inputs", "plan_jobs", "run_one", "run_batch", "summary_table",
           "default_threads", "Manifest"]
