"""``surfrec report``: the report page of a saved model (no refit), as one offline HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import validate
from .common import add_device, add_quiet


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=validate.existing_file, help="model file written by `surfrec fit --save-model`")
    p.add_argument("mesh", type=validate.existing_file, nargs="?", default=None,
                   help="the model's mesh (default: meshed again from the model with its settings)")
    p.add_argument("-o", "--output", type=validate.out_path((".html", ".htm")), required=True, metavar="HTML",
                   help="the report page: one offline HTML file (the mesh coloured by its support, the scan, "
                        "the level-set samples and their residuals, the loss curves, the surface decision)")
    p.add_argument("--gt", type=validate.existing_file, default=None, metavar="MESH",
                   help="a ground-truth mesh: adds Chamfer, normal consistency and F-score")
    add_device(p)
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..evaluation.metrics import check_reference
    from ..evaluation.report import check_available
    from ..evaluation.story import check_mesh_belongs, report
    from ..io import check_output
    from ..result import load_model

    check_available()
    inputs = tuple(p for p in (args.model, args.mesh, args.gt) if p is not None)
    check_output(args.output, suffixes=(".html", ".htm"), protect=inputs)
    if args.gt is not None:
        check_reference(args.gt)
    result = load_model(args.model)
    mesh = None
    if args.mesh is not None:
        import trimesh

        try:
            mesh = trimesh.load(args.mesh, process=False, force="mesh")
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise InputError(args.mesh, f"not a readable mesh ({type(exc).__name__}: {exc})") from None
        if not len(getattr(mesh, "faces", ())):
            raise InputError(args.mesh, "not a triangle mesh (no faces)")
        _support_from_file(mesh, args.mesh)
        check_mesh_belongs(result, mesh, args.mesh)
    page = report(result, mesh, args.output, gt=args.gt, device=args.device)
    if not args.quiet:  # --quiet: errors only
        size = Path(args.output).stat().st_size / 1e6
        print(f"surfrec: wrote {args.output} ({size:.1f} MB){'' if mesh is not None else ' (mesh extracted again)'}")
    return 0 if page is not None else 1


def _support_from_file(mesh, path: Path) -> None:
    """The support map written with a PLY (vertex property ``quality``), onto ``mesh``."""
    from ..surface.support import SUPPORT_ATTRIBUTE, read_support

    q = read_support(path)
    if q is not None and len(q) == len(mesh.vertices):
        mesh.vertex_attributes[SUPPORT_ATTRIBUTE] = q
