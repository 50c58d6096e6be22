"""``surfrec info``: what is in a scan (size, box, normals, spacing, duplicates), as the
input inspection of a fit sees it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..input.inspect import summarize
from ..validation import SAMPLES, SEED
from . import validate


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``surfrec info``."""
    p.add_argument("scan", type=Path,
                   help="point cloud: PLY, XYZ/PTS/TXT/CSV, NPY/NPZ, PCD, or a mesh file")
    p.add_argument("--sample-surface", type=validate.number(SAMPLES), default=None, metavar="N",
                   help="for meshes: describe N points sampled on the surface, not the vertices")
    p.add_argument("--seed", type=validate.number(SEED), default=0,
                   help="seed of the surface sampling and the spacing subsample (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _vec(values: list[float]) -> str:
    return "  ".join(f"{v:.6g}" for v in values)


def run(args: argparse.Namespace) -> int:
    """Load the scan (errors are InputError, reported by the dispatcher) and print its summary."""
    from ..io import load_points

    from ..input.inspect import merge_duplicates
    from ..settings import InputConfig

    cloud = load_points(args.scan, sample_surface=args.sample_surface, seed=args.seed)
    stats = summarize(cloud.points, seed=args.seed)
    cfg = InputConfig()
    merged = merge_duplicates(cloud.points, None, cfg.merge_tolerance, cfg.spacing_samples)
    report = {"path": cloud.source, "format": cloud.format, **stats,
              "near_duplicates": merged.near, "merge_tolerance": merged.tolerance, "spacing": merged.spacing,
              "normals": cloud.normals is not None}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    spacing = ("n/a" if stats["mean_spacing"] is None else
               f"{stats['mean_spacing']:.6g} (median {stats['median_spacing']:.6g}; "
               f"nearest neighbour, over {stats['spacing_samples']:,} points)")
    lines = [
        ("path", report["path"]),
        ("format", report["format"]),
        ("points", f"{stats['points']:,}"),
        ("bbox min", _vec(stats["bbox_min"])),
        ("bbox max", _vec(stats["bbox_max"])),
        ("bbox size", f"{_vec(stats['bbox_size'])}  (diagonal {stats['bbox_diagonal']:.6g})"),
        ("normals", "yes" if report["normals"] else "no"),
        ("mean spacing", spacing),
        ("duplicates", f"{stats['duplicates']:,}"),
        ("near dups", f"{merged.near:,} (closer than {merged.tolerance:.3g}; merged with the duplicates before a fit)"),
        ("spacing s", f"{merged.spacing:.6g} (median, after merging: the unit of every radius of a fit)"),
    ]
    width = max(len(k) for k, _ in lines) + 1
    for key, value in lines:
        print(f"{key + ':':<{width}} {value}")
    return 0
