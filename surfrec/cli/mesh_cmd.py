"""``surfrec mesh``: a saved model in, a mesh out (any resolution or level), replaying the
stages after the fit with the model's settings and the options given."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from . import options, validate
from .common import add_device, add_quiet, check_output_path, describe_mesh, print_refinement, Progress, timed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model file written by `surfrec fit --save-model`")
    p.add_argument("-o", "--output", type=validate.out_path(), required=True, help="output mesh (.ply .obj .stl .off .glb)")
    add_device(p)
    add_quiet(p)
    options.add_setting_options(p, ("mesh",), note="Options not given take the values stored with the model "
                                                   "(what `surfrec fit` used).")


def run(args: argparse.Namespace) -> int:
    from ..io import save_mesh
    from ..result import load_model
    from ..run import mesh_config, mesh_stages, summary_line

    check_output_path(args.output, inputs=(args.model,))
    given = {k.split(".", 1)[1]: v for k, v in options.overrides(args, ("mesh",)).items()}
    mesh_config(None, **given)  # a bad combination: one line before the model is read
    result = load_model(args.model)
    bar = Progress(None, "mesh", args.quiet, unit="block")
    with timed() as t:
        try:
            mesh, report = mesh_stages(result, mesh_config(result, **given), device=args.device,
                                       progress=lambda done, total: bar.update_to(done, total))
        finally:
            bar.close()
    save_mesh(mesh, args.output, protect=(args.model,))
    logging.getLogger("surfrec.cli").debug("time: %s", ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items()))
    if not args.quiet:  # --quiet: errors only
        print_refinement(report.refine)
        print(f"surfrec: wrote {args.output} ({describe_mesh(mesh)}) in {t[0]:.1f} s")
        print(f"surfrec: {summary_line(report.surface, report.support, shape=result.shape, closed_side=result.closed_side, closed_side_share=result.closed_side_share)}")
    return 0
