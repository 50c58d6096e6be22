"""``surfrec render``: a PNG of a mesh or point cloud from several sides, without a display."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..validation import RENDER
from . import validate

def png_path(text: str) -> Path:
    """argparse type of PNG outputs (also ``surfrec fit --preview``): checked before any work."""
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"{text}: the picture must be a .png file")
    if path.parent != Path("") and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {str(path.parent)!r} does not exist")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, metavar="MESH_OR_SCAN",
                   help="a mesh (PLY/OBJ/OFF/STL/GLB with faces) or a point cloud (any format `fit` reads)")
    p.add_argument("-o", "--output", type=png_path, default=None, metavar="PNG",
                   help="output picture; default: ./<input name>.png")
    p.add_argument("--views", type=validate.number(RENDER["views"]), default=4, metavar="N",
                   help="views around the object, side by side, up to 4 per row (default: 4)")
    p.add_argument("--size", type=validate.number(RENDER["size"]), default=400, metavar="PX",
                   help="pixels per view (default: 400)")
    p.add_argument("--up", choices=("y", "z"), default="y", help="world axis drawn upward (default: y)")
    p.add_argument("--backend", choices=("numpy", "open3d"), default="numpy",
                   help="numpy: a z-buffered splat renderer that works anywhere (default); "
                        "open3d: Open3D's offscreen renderer (needs EGL or OSMesa)")
    p.add_argument("--color", choices=("default", "support"), default="default",
                   help="support: colour a mesh by its per-vertex support map (distance to the scan in point "
                        "spacings, PLY property 'quality' written by `surfrec fit`): green on the data, red 4 "
                        "spacings or more away (default: plain shading)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.render import render_file

    out = args.output or Path.cwd() / f"{args.input.name}.png"
    if out.exists() and args.input.exists() and out.resolve() == args.input.resolve():
        raise InputError(out, "output would overwrite the input file")
    render_file(args.input, out, views=args.views, size=args.size, up=args.up, backend=args.backend,
                color=args.color)
    if not args.quiet:
        print(f"surfrec: wrote {out} ({args.views} view{'s' if args.views != 1 else ''}, "
              f"{args.size} px each)")
    return 0
