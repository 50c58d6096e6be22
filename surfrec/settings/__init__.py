"""Every setting of a reconstruction, declared once, grouped by stage.

:class:`ReconstructionConfig` holds one config per stage: ``input``
(:class:`~surfrec.settings.input.InputConfig`: inspection of the scan), ``fit``
(:class:`~surfrec.settings.field.FitConfig` and its
:class:`~surfrec.settings.field.ModelConfig`) and ``mesh``
(:class:`~surfrec.settings.mesh.MeshConfig` with its refinement, surface and support
configs). Each field is declared with :func:`~surfrec.settings.declare.setting`: its
default, valid range, help text and command-line flag live in that one declaration, which
validation, ``--help`` and the API reference read. The whole config is saved with every
model file, so ``surfrec mesh model.pt`` replays the stages after the fit as ``surfrec fit``
ran them. :data:`PRESETS` are named instances.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from .declare import from_dict as _from_dict
from .declare import nested_from_dict, to_dict
from .field import FitConfig, ModelConfig
from .input import InputConfig
from .mesh import MeshConfig, RefineConfig, SupportConfig, SurfaceConfig

#: The stages of :class:`ReconstructionConfig`, in the order a scan passes them.
STAGES = ("input", "fit", "mesh")


@dataclass
class ReconstructionConfig:
    """Every setting of a reconstruction: one config per stage (see the module docstring)."""

    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    """Inspection of the scan before the fit."""
    fit: FitConfig = dataclasses.field(default_factory=FitConfig)
    """The network and its fit."""
    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
    """Everything after the fit."""

    def __post_init__(self) -> None:
        nested_from_dict(self)

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ReconstructionConfig":
        """Inverse of :meth:`to_dict`; also reads the flat layout of model files of format 1.
        Unknown keys are an error; missing ones take their defaults."""
        if "fit" not in d:
            d = _from_format_1(d)
        unknown = set(d) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown ReconstructionConfig keys: {sorted(unknown)}")
        return cls(input=_from_dict(InputConfig, d.get("input", {})),
                   fit=_from_dict(FitConfig, d.get("fit", {})),
                   mesh=_from_dict(MeshConfig, d.get("mesh", {})))


#: Keys of the format-1 layout (one flat fit config with ``extract`` and ``refine``) that
#: moved to the input stage, from the fit and from ``extract`` / ``extract.surface_config``.
_TO_INPUT = {"fit": ("remove_stray", "outlier_percentile", "outlier_box_ratio", "outlier_margin"),
             "extract": ("max_data_points",),
             "surface_config": ("normal_k", "orient_k", "closure_area_clip")}


def _from_format_1(d: dict) -> dict:
    """A format-1 config dict in the stage layout."""
    fit = dict(d)
    extract = dict(fit.pop("extract", None) or {})
    refine = fit.pop("refine", None)
    surface = dict(extract.pop("surface_config", None) or {})
    inp = {k: fit.pop(k) for k in _TO_INPUT["fit"] if k in fit}
    inp.update({k: extract.pop(k) for k in _TO_INPUT["extract"] if k in extract})
    inp.update({k: surface.pop(k) for k in _TO_INPUT["surface_config"] if k in surface})
    mesh = {**extract, "surface_config": surface}
    if refine is not None:
        refine = dict(refine)
        refine.pop("seed", None)  # the noise estimate moved to the input stage
        if refine.get("noise_k") is not None:
            inp["noise_k"] = refine["noise_k"]
        refine.pop("noise_k", None)
        if "noise_samples" in refine:
            inp["noise_samples"] = refine.pop("noise_samples")
        mesh["refine_config"] = refine
    return {"input": inp, "fit": fit, "mesh": mesh}


def _stage_fields(stage: str) -> set[str]:
    return {f.name for f in fields(getattr(ReconstructionConfig(), stage))}


def with_overrides(config: ReconstructionConfig, stages: tuple[str, ...] = STAGES,
                   **overrides: Any) -> ReconstructionConfig:
    """A copy of ``config`` with fields replaced; None values mean "not given" and are skipped.

    A name is a field of one of ``stages`` (``iterations``, ``fill``) or a dotted
    ``stage.field`` (``mesh.level``); a name found in two of ``stages`` must be dotted.
    """
    cfg = copy.deepcopy(config)
    by_stage: dict[str, dict[str, Any]] = {s: {} for s in STAGES}
    for name, value in overrides.items():
        if value is None:
            continue
        if "." in name:
            stage, key = name.split(".", 1)
            if stage not in STAGES or key not in _stage_fields(stage):
                raise ValueError(f"unknown setting {name!r}")
        else:
            owners = [s for s in stages if name in _stage_fields(s)]
            if not owners:
                raise ValueError(f"unknown setting {name!r} (stages {', '.join(stages)})")
            if len(owners) > 1:
                raise ValueError(f"setting {name!r} is ambiguous: say {' or '.join(f'{s}.{name}' for s in owners)}")
            stage, key = owners[0], name
        by_stage[stage][key] = value
    for stage, given in by_stage.items():
        if given:
            setattr(cfg, stage, dataclasses.replace(getattr(cfg, stage), **given))
    return cfg


def _preset(fit: dict | None = None, mesh: dict | None = None) -> ReconstructionConfig:
    cfg = ReconstructionConfig()
    if fit:
        cfg.fit = dataclasses.replace(cfg.fit, **fit)
    if mesh:
        cfg.mesh = dataclasses.replace(cfg.mesh, **mesh)
    return cfg


#: Named configurations for 2 CPU cores and ~50k points (times: benchmarks/RESULTS.md).
#: Each stops on its step count (the same mesh for the same seed at any machine load).
PRESETS: dict[str, ReconstructionConfig] = {
    # the declared defaults: 6000 steps, then meshing and the refinement onto the scan
    "default": ReconstructionConfig(),
    # 1200 steps; the refinement's neighbourhoods capped at 48 points (noisy scans: time)
    "fast": _preset(fit={"iterations": 1200}, mesh={"refine_config": RefineConfig(max_neighbors=48)}),
    # a 4x128 network with 2x larger batches: a few minutes per scan
    "quality": _preset(fit={"model": ModelConfig(hidden_dim=128, n_hidden_layers=4), "lr": 3e-3,
                            "batch_points": 2048, "n_samples": 2048}),
}


def get_config(preset: str | ReconstructionConfig | None = "default", **overrides: Any) -> ReconstructionConfig:
    """A preset (by name) or a config, with fields replaced by ``overrides`` (see
    :func:`with_overrides`; None values are ignored)."""
    if preset is None:
        preset = "default"
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
        base = PRESETS[preset]
    elif isinstance(preset, ReconstructionConfig):
        base = preset
    else:
        raise TypeError(f"preset must be a name or a ReconstructionConfig, got {type(preset).__name__}")
    return with_overrides(base, **overrides)


__all__ = ["ReconstructionConfig", "InputConfig", "FitConfig", "ModelConfig", "MeshConfig", "RefineConfig",
           "SurfaceConfig", "SupportConfig", "PRESETS", "STAGES", "get_config", "with_overrides"]
