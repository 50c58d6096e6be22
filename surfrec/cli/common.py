"""Helpers shared by several commands (CLI only): progress bars, output checks, one-line
descriptions of meshes and reports."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import validate


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: only errors are printed."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only errors")


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device`` of commands that evaluate a saved model."""
    parser.add_argument("--device", type=validate.device, default="auto",
                        help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")


def check_output_path(out: Path, *, inputs: tuple[Path, ...] = (), kind: str = "mesh") -> Path:
    """Validate an output path before any work is done (extension, not an input, folder exists)."""
    from ..io import SUPPORTED_MESH_EXTENSIONS, check_output

    suffixes = SUPPORTED_MESH_EXTENSIONS if kind == "mesh" else None
    return check_output(out, suffixes=suffixes, protect=inputs)


class Progress:
    """A tqdm progress bar (with rate and time remaining) that is silent with ``--quiet``."""

    def __init__(self, total: int | None, desc: str, quiet: bool, unit: str = "it") -> None:
        self.bar = None
        self.closed = False
        self.quiet = quiet
        self._args = dict(total=total, desc=desc, unit=unit)
        self.n = 0

    def _open(self) -> None:
        """The bar starts at its first update (its rate and time remaining count from there)."""
        from tqdm import tqdm

        self.bar = tqdm(**self._args, file=sys.stderr, dynamic_ncols=True, leave=True, delay=0.1)

    def update_to(self, n: int, total: int | None = None, **postfix: str) -> None:
        if self.quiet or self.closed:
            return
        if self.bar is None:
            self._open()
        if total is not None and total != self.bar.total:
            self.bar.total = total
        self.bar.update(max(0, n - self.bar.n))
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None and not self.closed:
            self.bar.close()
        self.closed = True


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
    from ..surface.components import mesh_report

    r = mesh_report(mesh)
    closed = "watertight" if r.get("watertight") else "NOT watertight"
    comps = r.get("n_components", "?")
    genus = r.get("genus")
    gtxt = f", genus {genus}" if genus is not None else ""
    return (f"{r.get('n_vertices', len(mesh.vertices))} vertices, {r.get('n_faces', len(mesh.faces))} faces, "
            f"{closed}, {comps} component{'s' if comps != 1 else ''}{gtxt}")


def print_refinement(info) -> None:
    """One line of what the refinement did (:class:`~surfrec.surface.refine.RefineReport`)."""
    if info is None:
        return
    if info.applied:
        print(f"surfrec: refined onto the data ({info.reason}): mean move {info.mean_shift_cells:.2f} "
              f"cells, {100 * info.clipped:.2f}% of the vertices moved the maximum")
    else:
        print(f"surfrec: refinement {info.reason}")
