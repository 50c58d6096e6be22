"""``surfrec fit``: scan in, mesh out."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .common import (
    Progress,
    add_common_arguments,
    add_mesh_arguments,
    check_output_path,
    describe_mesh,
    extract_with_progress,
    mesh_overrides,
    timed,
)
from . import validate
from .render_cmd import png_path

log = logging.getLogger("surfrec.cli")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..validation import FIT

    p.add_argument("scan", type=Path, help="point cloud: PLY, XYZ/PTS/TXT/CSV, NPY/NPZ, PCD, or a mesh file")
    p.add_argument("-o", "--output", type=validate.out_path(), default=None,
                   help="output mesh (.ply .obj .stl .off .glb); default: ./<scan name>.surfrec.ply")
    p.add_argument("--preset", type=validate.preset, default="default",
                   help="hyperparameter preset: fast, default or quality (default: default, about a minute on 2 CPU "
                        "cores)")
    p.add_argument("--iters", type=validate.number(FIT["iterations"]), default=None, metavar="N", help="optimization steps (overrides the preset)")
    p.add_argument("--time-budget", type=validate.number(FIT["time_budget"]), default=None, metavar="S",
                   help="stop optimizing after S seconds (whichever comes first with --iters; 0: no limit; "
                        "default: the preset's)")
    p.add_argument("--lr", type=validate.number(FIT["lr"]), default=None, help="peak learning rate (overrides the preset)")
    p.add_argument("--data-weight", type=validate.number(FIT["data_weight"]), default=None, metavar="W",
                   help="weight of |F - c| on the input points (default: the preset's, 1); higher values pull the "
                        "surface onto the points harder (can help open, single-view scans; on closed scans 3 was "
                        "worse, benchmarks/EXPERIMENTS.md)")
    p.add_argument("--remove-stray", action="store_true", default=None,
                   help="drop stray points (flying pixels, isolated specks) before fitting; they are always "
                        "counted and reported")
    p.add_argument("--seed", type=validate.number(FIT["seed"]), default=None, help="random seed (default: 0)")
    p.add_argument("--threads", type=validate.number(FIT["threads"]), default=None, help="CPU threads for torch")
    p.add_argument("--checkpoint", type=validate.out_path(), default=None, metavar="PATH",
                   help="where Ctrl-C / SIGTERM saves the fit's state (default: <output>.ckpt.pt)")
    p.add_argument("--resume", type=validate.existing_file, default=None, metavar="CKPT",
                   help="continue an interrupted fit from its checkpoint (its settings are used)")
    p.add_argument("--save-model", type=validate.out_path(), default=None, metavar="PATH",
                   help="also save the fitted model (weights, config, transform) for `surfrec mesh`")
    p.add_argument("--preview", type=png_path, default=None, metavar="PNG",
                   help="also write a picture of the mesh from 4 sides (see `surfrec render`)")
    add_common_arguments(p)
    add_mesh_arguments(p)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event (the fit saves a checkpoint at the next step); a second
    Ctrl-C interrupts at once."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _passthrough(args: argparse.Namespace) -> list[str]:
    """Mesh options worth repeating in the resume command."""
    out = []
    if args.resolution is not None:
        out += ["--resolution", str(args.resolution)]
    if args.level is not None:
        out += ["--level", str(args.level)]
    if args.padding is not None:
        out += ["--padding", str(args.padding)]
    if args.method is not None:
        out += ["--method", args.method]
    if args.components is not None:
        out += ["--components", args.components]
    if args.refine is False:
        out += ["--no-refine"]
    if args.surface is not None:
        out += ["--surface", args.surface]
    if args.trim is not None:
        out += ["--trim", str(args.trim)]
    if args.fill is not None:
        out += ["--fill", str(args.fill)]
    if args.neighbors is not None:
        out += ["--neighbors", str(args.neighbors or "auto")]
    if args.save_model is not None:
        out += ["--save-model", str(args.save_model)]
    return out


def run(args: argparse.Namespace) -> int:
    from ..checks import cloud_shape
    from ..errors import FitInterrupted, InputError
    from ..fitting import fit, get_config
    from ..io import load_points, save_mesh
    from ..pipeline import mesh_settings
    from ..render import render_png
    from ..result import save_model
    from ..support import find_outliers, summary_line

    out = args.output or Path.cwd() / f"{args.scan.stem}.surfrec.ply"
    check_output_path(out, inputs=(args.scan,))
    if args.save_model is not None:
        check_output_path(args.save_model, inputs=(args.scan, out), kind="model")
    with timed() as t_read:
        cloud = load_points(args.scan)
    shape = cloud_shape(cloud.points)
    if shape["collinear"]:
        raise InputError(args.scan, "all points lie on one line (or coincide): no surface can be fitted")
    if shape["planar"]:
        log.warning("%s: all points lie in one plane; the result is a thin closed slab around it", args.scan)
    cfg = get_config(args.preset, iterations=args.iters, time_budget=args.time_budget, lr=args.lr,
                     data_weight=args.data_weight, remove_stray=args.remove_stray,
                     seed=args.seed, device=args.device, threads=args.threads)
    cfg.extract = dataclasses.replace(cfg.extract, **{k: v for k, v in mesh_overrides(args).items() if v is not None})
    if not args.quiet:
        log.info("%s: %d points%s; preset %s, %d steps%s", args.scan, len(cloud.points),
                 " with normals" if cloud.normals is not None else "", args.preset, cfg.iterations,
                 f", time budget {cfg.time_budget:g} s" if cfg.time_budget else "")
    bar = Progress(cfg.iterations, "fit", args.quiet, unit="step")

    def on_step(step: int, total: int, rec: dict) -> None:
        bar.update_to(step, total, loss=f"{rec['loss']:.4f}", residual=f"{rec['residual_median']:.1e}")

    ckpt = args.checkpoint or out.with_name(out.name + ".ckpt.pt")
    with timed() as t_fit, _stop_on_signals() as stop:
        try:
            result = fit(cloud, config=cfg, callback=on_step, stop=stop.is_set, checkpoint=ckpt, resume=args.resume)
        except FitInterrupted as exc:
            bar.close()
            print(f"surfrec fit: {exc}.\nResume with: surfrec fit {args.scan} -o {out} --resume {ckpt}"
                  + "".join(f" {a}" for a in _passthrough(args)), file=sys.stderr)
            return 130
        finally:
            bar.close()
    # the mesh options are part of the model's config (a resumed fit has the checkpoint's)
    result.config.extract = mesh_settings(result, **mesh_overrides(args))
    report: dict = {}
    mesh, t_mesh = extract_with_progress(result, args, report)
    if args.save_model is not None:  # after meshing: the surface decision goes in too
        save_model(result, args.save_model, surface=report["surface"])
    with timed() as t_write:
        save_mesh(mesh, out, protect=(args.scan,))
    stages = {"read": t_read[0], **result.timings, **report.get("timings", {}), "write": t_write[0]}
    log.debug("time: %s", ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    if args.preview is not None:
        render_png(mesh, args.preview)
    if not args.quiet:  # --quiet: errors only
        print(f"surfrec: wrote {out} ({describe_mesh(mesh)}) in {t_fit[0] + t_mesh:.1f} s "
              f"(fit {t_fit[0]:.1f} s, {result.steps} steps; mesh {t_mesh:.1f} s)"
              + (f"; model {args.save_model}" if args.save_model else ""))
        stray = result.removed if result.config.remove_stray else int(find_outliers(cloud.points).sum())
        print(f"surfrec: {summary_line(report['surface'], report['support'], stray, len(cloud.points), removed=result.config.remove_stray)}")
    return 0
