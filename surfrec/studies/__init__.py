"""Studies that answer the method's open questions (``surfrec study NAME``).

Each study is a module with one library function ``run_<name>_study(cases, out, quick=False,
seed=0, device="cpu") -> Path`` that writes ``report.md``, a CSV and PNG figures into ``out``
and returns the report's path. ``cases`` is ``None`` (a small default set generated in
code), a folder of scans (``NAME.xyz`` with an optional ``NAME.gt.ply``, e.g.
``../shared/data/bench``) or a list of :class:`surfrec.studies.common.Case`.

=============  =====================================================================
projection     Newton vs gradient descent vs L-BFGS for projecting seeds onto F = c
residuals      residuals after 10 and 20 Newton steps; where and why samples fail
activation     ReLU vs Softplus(β): quality at equal steps/time, samples stuck at ∇F≈0
seeds          seed distributions: kNN σ for several k, fixed σ, uniform share
level          levels c ≠ 0: is the c-level set at distance |c| from the 0-level set?
losses         sample-network loss vs a Neural-Pull loss vs an IGR-style loss
curves         2-D curves: level sets, seeds, Newton trajectories, final samples
=============  =====================================================================
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

#: study name -> (module, function, one-line description)
STUDIES: dict[str, tuple[str, str, str]] = {
    "projection": (".projection", "run_projection_study",
                   "Newton vs gradient descent vs L-BFGS for level-set projection"),
    "residuals": (".residuals", "run_residuals_study",
                  "residuals after 10/20 Newton steps and why samples fail"),
    "activation": (".activation", "run_activation_study",
                   "ReLU vs Softplus(beta): quality and samples stuck where grad F = 0"),
    "seeds": (".seeds", "run_seeds_study", "seed distributions: effect on Chamfer and residuals"),
    "level": (".level", "run_level_study", "levels c != 0: does F behave like a distance?"),
    "losses": (".losses", "run_losses_study",
               "sample-network loss vs Neural-Pull vs IGR-style loss at equal time"),
    "curves": (".curves", "run_curves_study", "2-D curves: level sets, seeds, Newton trajectories"),
}


def get_study(name: str) -> Callable[..., Path]:
    """The library function of study ``name``."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {sorted(STUDIES)}")
    mod, fn, _ = STUDIES[name]
    return getattr(importlib.import_module(mod, __name__), fn)


__all__ = ["STUDIES", "get_study"]
