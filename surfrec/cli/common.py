"""Argument groups and helpers shared by several commands (CLI only)."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..validation import EXTRACT, SURFACES
from . import validate


def add_mesh_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of mesh extraction (``fit`` and ``mesh``)."""
    g = parser.add_argument_group("mesh extraction")
    g.add_argument("--resolution", type=validate.number(EXTRACT["resolution"]), default=None, metavar="R",
                   help="marching-cubes samples along the largest side of the box (default: the model's "
                        "setting, 256)")
    g.add_argument("--level", type=validate.number(EXTRACT["level"]), default=None, metavar="C",
                   help="extract the level set F = C (offset surfaces; F is in normalized units "
                        "where the scan's largest half side is 0.8; default: the fitted level)")
    g.add_argument("--padding", type=validate.number(EXTRACT["padding"]), default=None, metavar="P",
                   help="margin around the scan's box, as a fraction of its largest side (default: 0.05)")
    g.add_argument("--components", choices=("all", "largest", "near-data"), default=None,
                   help="keep all pieces, the largest, or those lying on the input points (default: near-data, "
                        "which drops stray pieces of level set off the scan)")
    g.add_argument("--no-refine", dest="refine", action="store_false", default=None,
                   help="do not move the mesh vertices onto the input points' local surface (the mesh is then "
                        "exactly the level set of F; refinement is on by default at the fitted level)")
    g.add_argument("--method", choices=("auto", "dense", "narrowband"), default=None,
                   help="dense grid or narrow band refined around the surface (default: auto)")
    g.add_argument("--surface", choices=SURFACES, default=None,
                   help="closed: a watertight surface; open: only the part of the level set the data support "
                        "(fitted with a side at the sheet, then trimmed); auto (default): open when the scan's "
                        "oriented normals do not close (closure > 0.2: single views measured >= 0.51, closed scans <= 0.08), "
                        "or when more than 25%% of a closed fit lies farther than 4 point spacings from the scan")
    g.add_argument("--trim", type=validate.number(EXTRACT["trim"]), default=None, metavar="S",
                   help="closed surfaces: drop the faces farther than S scan spacings from every scan point "
                        "(the surface invented over the holes of an incomplete scan; 4 drops what the support "
                        "report counts as phantom); the mesh is then not watertight (default: 0, no trim)")
    g.add_argument("--fill", type=validate.number(EXTRACT["fill"]), default=None, metavar="S",
                   help="closed surfaces: move the vertices farther than S scan spacings from every scan point "
                        "onto the membrane the others span (hole fills without bulges; watertight as before); "
                        "(default: 2)")
    g.add_argument("--neighbors", type=validate.neighbors, default=None, metavar="K",
                   help="scan points in each vertex's local fit when the mesh is refined onto the scan: fewer "
                        "follow the points closer, their detail and their noise alike; more average the noise "
                        "(default: auto, from the scan's estimated noise, which keeps noisy scans closest to "
                        "their true surface; benchmarks/RESULTS_REAL.md)")
    parser.epilog = ((parser.epilog or "") + " Mesh options not given take the values stored with the model "
                     "(what `surfrec fit` used), else the defaults shown.").strip()


def mesh_overrides(args: argparse.Namespace) -> dict:
    """The mesh options given on the command line, as ExtractConfig fields (None: not given)."""
    return {"resolution": args.resolution, "level": args.level, "padding": args.padding,
            "method": args.method, "components": args.components, "refine": args.refine,
            "surface": args.surface, "trim": args.trim, "fill": args.fill, "neighbors": args.neighbors}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --quiet."""
    parser.add_argument("--device", type=validate.device, default="auto",
                        help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only errors")


def check_output_path(out: Path, *, inputs: tuple[Path, ...] = (), kind: str = "mesh") -> Path:
    """Validate an output path before any work is done (extension, not an input, folder exists)."""
    from ..io import SUPPORTED_MESH_EXTENSIONS

    out = Path(out)
    if kind == "mesh" and out.suffix.lower() not in SUPPORTED_MESH_EXTENSIONS:
        raise InputError(out, f"unsupported output extension {out.suffix or '(none)'!r}; "
                              f"use one of {', '.join(sorted(SUPPORTED_MESH_EXTENSIONS))}")
    for inp in inputs:
        try:
            if inp.exists() and out.exists() and out.resolve() == inp.resolve():
                raise InputError(out, "output would overwrite the input file")
        except OSError:
            pass
    if not out.parent.exists():
        raise InputError(out, f"output folder {out.parent} does not exist")
    if out.exists() and out.is_dir():
        raise InputError(out, "output path is a directory")
    return out


class Progress:
    """A tqdm progress bar that is silent with ``--quiet`` (or when tqdm is missing)."""

    def __init__(self, total: int | None, desc: str, quiet: bool, unit: str = "it") -> None:
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                            leave=True)
        self.n = 0

    def update_to(self, n: int, total: int | None = None, **postfix: str) -> None:
        if self.bar is None:
            return
        if total is not None and total != self.bar.total:
            self.bar.total = total
        self.bar.update(max(0, n - self.bar.n))
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box = [0.0]
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - t0


def describe_mesh(mesh) -> str:
    """One-line description: vertices, faces, watertightness, components."""
    from ..mesh import mesh_report

    r = mesh_report(mesh)
    closed = "watertight" if r.get("watertight") else "NOT watertight"
    comps = r.get("n_components", "?")
    genus = r.get("genus")
    gtxt = f", genus {genus}" if genus is not None else ""
    return (f"{r.get('n_vertices', len(mesh.vertices))} vertices, {r.get('n_faces', len(mesh.faces))} faces, "
            f"{closed}, {comps} component{'s' if comps != 1 else ''}{gtxt}")


def extract_with_progress(result, args: argparse.Namespace, report: dict | None = None):
    """Mesh a fitted result with the mesh options of ``args`` and a progress bar;
    ``report`` (optional) gets :func:`surfrec.extract_mesh`'s report.

    Returns
    -------
    (trimesh.Trimesh, float)
        The mesh (scan coordinates) and the seconds it took.
    """
    from ..pipeline import extract_mesh

    bar = Progress(None, "mesh", args.quiet, unit="block")
    with timed() as t:
        try:
            report = {} if report is None else report
            mesh = extract_mesh(result, **mesh_overrides(args), device=args.device,
                                progress=lambda done, total: bar.update_to(done, total), report=report)
        finally:
            bar.close()
    info = report.get("refine")
    if info is not None and not args.quiet:
        if info["applied"]:
            print(f"surfrec: refined onto the data ({info['reason']}): mean move {info['mean_shift_cells']:.2f} "
                  f"cells, {100 * info['clipped']:.2f}% of the vertices moved the maximum")
        else:
            print(f"surfrec: refinement {info['reason']}")
    return mesh, t[0]
