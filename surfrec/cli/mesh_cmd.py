"""``surfrec mesh``: a saved model in, a mesh out (any resolution or level)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import validate
from .common import (
    add_common_arguments,
    add_mesh_arguments,
    check_output_path,
    describe_mesh,
    extract_with_progress,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model file written by `surfrec fit --save-model`")
    p.add_argument("-o", "--output", type=validate.out_path(), required=True, help="output mesh (.ply .obj .stl .off .glb)")
    add_common_arguments(p)
    add_mesh_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..io import save_mesh
    from ..result import load_model
    from ..support import summary_line

    check_output_path(args.output, inputs=(args.model,))
    result = load_model(args.model)
    report: dict = {}
    mesh, seconds = extract_with_progress(result, args, report)
    save_mesh(mesh, args.output, protect=(args.model,))
    if not args.quiet:  # --quiet: errors only
        print(f"surfrec: wrote {args.output} ({describe_mesh(mesh)}) in {seconds:.1f} s")
        print(f"surfrec: {summary_line(report['surface'], report['support'])}")
    return 0
