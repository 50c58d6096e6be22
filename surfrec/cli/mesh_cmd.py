"""``surfrec mesh``: a saved model in, a mesh out (any resolution or level)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    Progress,
    add_common_arguments,
    add_mesh_arguments,
    check_output_path,
    describe_mesh,
    timed,
)



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model file written by `surfrec fit --save-model`")
    p.add_argument("-o", "--output", type=Path, required=True, help="output mesh (.ply .obj .stl .off .glb)")
    add_common_arguments(p)
    add_mesh_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..io import save_mesh
    from ..result import extract_mesh, load_model

    check_output_path(args.output, inputs=(args.model,))
    result = load_model(args.model)
    bar = Progress(None, "mesh", args.quiet, unit="block")
    with timed() as t:
        try:
            mesh = extract_mesh(result, resolution=args.resolution, level=args.level, padding=args.padding,
                                method=args.method, components=args.components, device=args.device,
                                progress=lambda done, total: bar.update_to(done, total))
        finally:
            bar.close()
    save_mesh(mesh, args.output, protect=(args.model,))
    print(f"surfrec: wrote {args.output} ({describe_mesh(mesh)}) in {t[0]:.1f} s")
    return 0
