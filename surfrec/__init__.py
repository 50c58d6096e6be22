"""surfrec: surface reconstruction from raw point clouds with neural level sets.

The public API is re-exported here lazily (importing ``surfrec`` stays cheap):

>>> import surfrec
>>> rec = surfrec.reconstruct("scan.ply", output="mesh.ply")   # doctest: +SKIP
>>> result = surfrec.fit("scan.ply", preset="fast")            # doctest: +SKIP
>>> mesh = surfrec.extract_mesh(result, resolution=256)         # doctest: +SKIP
>>> scores = surfrec.evaluate(mesh, "scan.gt.ply")              # doctest: +SKIP
>>> page = surfrec.report(rec, path="fit.html")                 # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "reconstruct": ".run",
    "fit": ".run",
    "extract_mesh": ".run",
    "mesh_stages": ".run",
    "Reconstruction": ".run",
    "RunReport": ".run",
    "ReconstructionConfig": ".settings",
    "InputConfig": ".settings",
    "FitConfig": ".settings",
    "ModelConfig": ".settings",
    "MeshConfig": ".settings",
    "RefineConfig": ".settings",
    "SurfaceConfig": ".settings",
    "SupportConfig": ".settings",
    "PRESETS": ".settings",
    "get_config": ".settings",
    "FitResult": ".result",
    "save_model": ".result",
    "load_model": ".result",
    "inspect_scan": ".input.inspect",
    "load_points": ".io",
    "save_mesh": ".io",
    "PointCloud": ".io",
    "project_to_level_set": ".field.levelset",
    "evaluate": ".evaluation.metrics",
    "report": ".evaluation.story",
    "Normalization": ".input.normalize",
    "SurfrecError": ".errors",
    "InputError": ".errors",
    "StageError": ".errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        mod = importlib.import_module(_EXPORTS[name], __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'surfrec' has no attribute {name!r}")
