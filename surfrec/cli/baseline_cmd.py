"""``surfrec baseline``: reconstruct with a classical method (screened Poisson, ball pivoting)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..validation import POISSON, RADIUS
from . import validate
from .common import check_output_path, describe_mesh, timed

METHODS = ("poisson", "ball-pivoting")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", choices=METHODS, help="reconstruction method")
    p.add_argument("scan", type=Path, help="point cloud: PLY, XYZ/PTS/TXT/CSV, NPY/NPZ, PCD")
    p.add_argument("-o", "--output", type=validate.out_path(), required=True,
                   help="output mesh (.ply .obj .stl .off .glb)")
    p.add_argument("--normals", choices=("estimate", "given"), default="estimate",
                   help="estimate normals (30 neighbours, oriented by consistent tangent planes "
                        "with k=15), or use the scan's own (default: estimate)")
    g = p.add_argument_group("poisson")
    g.add_argument("--depth", type=validate.number(POISSON["depth"]), default=None, metavar="D",
                   help="octree depth (default: 9)")
    g.add_argument("--density-quantile", type=validate.number(POISSON["density_quantile"]), default=None, metavar="Q",
                   help="remove vertices whose density is below this quantile (default: 0, none)")
    g = p.add_argument_group("ball pivoting")
    g.add_argument("--radii", type=validate.number_list(RADIUS), default=None, metavar="R1,R2,...",
                   help="ball radii in the scan's units (default: mean point spacing x 1,2,4)")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.baselines import ball_pivoting, poisson
    from ..io import load_points, save_mesh

    if args.method == "poisson" and args.radii is not None:
        raise InputError("--radii", "only applies to ball-pivoting")
    if args.method == "ball-pivoting":
        for flag, value in (("--depth", args.depth), ("--density-quantile", args.density_quantile)):
            if value is not None:
                raise InputError(flag, "only applies to poisson")
    check_output_path(args.output, inputs=(args.scan,))
    cloud = load_points(args.scan)
    if args.normals == "given" and cloud.normals is None:
        raise InputError(args.scan, "--normals given, but the scan has no (usable) normals")
    with timed() as t:
        if args.method == "poisson":
            mesh = poisson(
                cloud.points,
                cloud.normals,
                depth=9 if args.depth is None else args.depth,
                normals_mode=args.normals,
                density_quantile=args.density_quantile or 0.0,
            )
        else:
            mesh = ball_pivoting(
                cloud.points, cloud.normals, radii=args.radii, normals_mode=args.normals
            )
    if len(mesh.faces) == 0:
        raise InputError(args.scan, f"{args.method} produced an empty mesh")
    save_mesh(mesh, args.output, protect=(args.scan,))
    print(f"surfrec: wrote {args.output} ({describe_mesh(mesh)}) in {t[0]:.1f} s ({args.method})")
    return 0
