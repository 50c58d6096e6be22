"""``surfrec fit``: scan in, mesh out."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import options, validate
from .common import Progress, add_quiet, describe_mesh, print_refinement
from .render_cmd import png_path

log = logging.getLogger("surfrec.cli")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scan", type=Path, help="point cloud: PLY, XYZ/PTS/TXT/CSV, NPY/NPZ, PCD, or a mesh file")
    p.add_argument("-o", "--output", type=validate.out_path(), default=None,
                   help="output mesh (.ply .obj .stl .off .glb); default: ./<scan name>.surfrec.ply")
    p.add_argument("--preset", type=validate.preset, default="default",
                   help="settings preset: fast, default or quality (default: default); options given below "
                        "override it")
    p.add_argument("--checkpoint", type=validate.out_path(), default=None, metavar="PATH",
                   help="where Ctrl-C / SIGTERM saves the fit's state (default: <output>.ckpt.pt)")
    p.add_argument("--resume", type=validate.existing_file, default=None, metavar="CKPT",
                   help="continue an interrupted fit from its checkpoint (its settings are used; mesh options "
                        "given here still apply)")
    p.add_argument("--save-model", type=validate.out_path(), default=None, metavar="PATH",
                   help="also save the fitted model (weights, settings, reports) for `surfrec mesh`")
    p.add_argument("--preview", type=png_path, default=None, metavar="PNG",
                   help="also write a picture of the mesh from 4 sides (see `surfrec render`)")
    p.add_argument("--report", type=validate.out_path((".html", ".htm")), default=None, metavar="HTML",
                   help="also write the fit's report: one offline HTML page with the mesh coloured by its support, "
                        "the scan, the level-set samples and their residuals, the loss curves and the surface "
                        "decision (needs surfrec[viz])")
    p.add_argument("--gt", type=validate.existing_file, default=None, metavar="MESH",
                   help="a ground-truth mesh: the report adds Chamfer, normal consistency and F-score (with --report)")
    add_quiet(p)
    options.add_setting_options(p, ("input", "fit", "mesh"))


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


def resume_command(args: argparse.Namespace, out: Path, ckpt: Path) -> str:
    """The command that resumes an interrupted fit: its checkpoint, the mesh options given
    and the model path (the fit's settings come from the checkpoint)."""
    words = ["surfrec", "fit", str(args.scan), "-o", str(out), "--resume", str(ckpt),
             *options.as_arguments(args, ("mesh",))]
    for flag, value in (("--save-model", args.save_model), ("--report", args.report), ("--gt", args.gt)):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..errors import FitInterrupted, InputError

    if args.gt is not None and args.report is None:
        raise InputError("--gt", "the ground truth is scored in the report: give --report HTML too")
    from ..run import reconstruct

    out = args.output or Path.cwd() / f"{args.scan.stem}.surfrec.ply"
    given = options.overrides(args)
    if args.report is not None:  # before any work: the packages and the path
        from ..evaluation.report import check_available
        from ..io import check_output

        check_available()
        check_output(args.report, suffixes=(".html", ".htm"), protect=(args.scan, out))
        if args.gt is not None:
            from ..evaluation.metrics import check_reference

            check_reference(args.gt)
    bar = Progress(None, "fit", args.quiet, unit="step")
    mesh_bar = Progress(None, "mesh", args.quiet, unit="block")

    def on_step(step: int, total: int, rec: dict) -> None:
        bar.update_to(step, total, loss=f"{rec['loss']:.4f}", residual=f"{rec['residual_median']:.1e}")

    def on_mesh(done: int, total: int) -> None:
        bar.close()
        mesh_bar.update_to(done, total)

    ckpt = args.checkpoint or out.with_name(out.name + ".ckpt.pt")
    with _stop_on_signals() as stop:
        try:
            rec = reconstruct(args.scan, preset=args.preset, output=out, model_path=args.save_model,
                              callback=on_step, progress=on_mesh, stop=stop.is_set, checkpoint=ckpt,
                              resume=args.resume, keep_raw=args.report is not None,
                              command=getattr(args, "command_line", ""), **given)
        except FitInterrupted as exc:
            bar.close()
            print(f"surfrec fit: {exc}.\nResume with: {resume_command(args, out, ckpt)}", file=sys.stderr)
            return 130
        finally:
            bar.close()
            mesh_bar.close()
    if args.preview is not None:
        from ..evaluation.render import render_png

        render_png(rec.mesh, args.preview)
    if args.report is not None:
        from ..evaluation.story import report

        report(rec, path=args.report, gt=args.gt, device=rec.result.config.fit.device)
    if not args.quiet:  # --quiet: errors only
        print_refinement(rec.report.refine)
        t = rec.report.timings
        t_mesh = sum(v for k, v in t.as_dict().items() if k in ("extract", "filter", "pretrim", "refine", "surface",
                                                                  "fill", "trim", "support"))
        print(f"surfrec: wrote {out} ({describe_mesh(rec.mesh)}) in {rec.result.seconds + t_mesh:.1f} s "
              f"(fit {rec.result.seconds:.1f} s, {rec.result.steps} steps; mesh {t_mesh:.1f} s)"
              + (f"; model {args.save_model}" if args.save_model else "")
              + (f"; report {args.report}" if args.report else ""))
        print(f"surfrec: {rec.report.summary()}")
    return 0
