"""Study ``activation``: ReLU vs Softplus(β) — quality, and samples stuck where ∇ₓF ≈ 0.

The reviewer asked whether ReLU networks, whose ∇ₓF vanishes on whole regions, leave
Newton samples stuck far from the level set. Each activation is fitted twice per case with
the same network size and settings: once for a fixed number of steps (equal steps) and once
for a fixed wall-clock budget (equal time: 20 s by default; on a shared machine the steps
reached in it vary, so they are reported). During the equal-steps fit, every ``probe_every`` steps, a fixed set of
seeds (drawn as in fitting) is projected with 10 Newton steps on the current network and we
count

* ``zero_grad_seed``: seeds where ‖∇ₓF‖² < 1e-8 before projection (Newton cannot move them);
* ``zero_grad_end``: samples where ‖∇ₓF‖² < 1e-8 after the 10 steps;
* ``unusable``: samples with residual ≥ 1e-2 or zero gradient after the 10 steps (the ones
  ``fit`` leaves out of its loss);

and the fit's own record of its sample buffer (``1 − converged``: the share of buffer
samples left out of the loss at that step). The probes' time is excluded from the reported
training time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..field.levelset import project_to_level_set, value_and_grad
from . import common

log = logging.getLogger(__name__)


def activation_configs(quick: bool) -> list[tuple[str, dict]]:
    """(label, ModelConfig overrides) of the compared activations."""
    betas = (10.0, 100.0) if quick else (10.0, 100.0, 1000.0)
    out = [("relu", {"activation": "relu"})]
    out += [(f"softplus β={b:g}", {"activation": "softplus", "softplus_beta": b}) for b in betas]
    return out


def stuck_fractions(model, seeds: torch.Tensor, steps: int = 10, eps: float = 1e-8,
                    sample_tol: float = 1e-2) -> dict[str, float]:
    """Shares of seeds with a vanishing gradient before/after Newton, and unusable samples."""
    with torch.no_grad():
        _, g = value_and_grad(model, seeds)
        zero_seed = float(((g * g).sum(dim=1) < eps).float().mean())
        proj = project_to_level_set(model, seeds, 0.0, max_steps=steps, tol=1e-6, eps=eps, box=1.0)
        unusable = (proj.residuals >= sample_tol) | proj.zero_gradient | proj.left_box
    return {"zero_grad_seed": zero_seed, "zero_grad_end": float(proj.zero_gradient.float().mean()),
            "unusable": float(unusable.float().mean())}


def _equal_steps(case, label, mcfg, probe, iters, probe_every, quick, device, seed, stuck_rows) -> dict:
    """Fit with ``iters`` steps, probing the training network every ``probe_every`` recorded steps."""
    probe_s = [0.0]

    def hook(st) -> None:  # on_step: the loop state hands over the network being trained
        recorded = st.history["step"] and st.history["step"][-1] == st.step
        if not recorded or (st.step != 1 and st.step % probe_every):
            return
        t0 = time.perf_counter()
        fr = stuck_fractions(st.model, probe)
        stuck_rows.append({"case": case.name, "activation": label, "step": st.step,
                           **fr, "buffer_unusable": 1.0 - st.history["converged"][-1]})
        probe_s[0] += time.perf_counter() - t0

    res = common.fit_case(case, quick, device, seed, on_step=hook, model=mcfg, iterations=iters)
    q = common.score(res, case, quick, device=device)
    final = stuck_fractions(res.model.to(device), probe)
    res.model.to("cpu")
    return {"case": case.name, "activation": label, "budget": f"{iters} steps",
            "steps": res.steps, "train_s": res.seconds - probe_s[0], **q, **final}


def _equal_time(case, label, mcfg, probe, iters, budget, quick, device, seed) -> dict:
    """Fit for ``budget`` seconds (at most 100 × ``iters`` steps)."""
    res = common.fit_case(case, quick, device, seed, model=mcfg, iterations=100 * iters,
                          time_budget=budget, cache=False)
    q = common.score(res, case, quick, device=device)
    final = stuck_fractions(res.model.to(device), probe)
    res.model.to("cpu")
    return {"case": case.name, "activation": label, "budget": f"{budget:.1f} s",
            "steps": res.steps, "train_s": res.seconds, **q, **final}


def _run_fits(cases, configs, out, quick, seed, device, iters, probe_every, n_probe, equal_time):
    """Every case × activation at equal steps (probed) and equal time: (rows, stuck_rows)."""
    from ..input.normalize import Normalization

    rows, stuck_rows = [], []
    budget = equal_time if equal_time is not None else (3.0 if quick else 20.0)
    for case in cases:
        unit = Normalization.from_points(case.points).to_unit(case.points).astype(np.float32)
        probe = common.fit_like_seeds(unit, n_probe, seed=seed + 7).to(device)
        for label, mkw in configs:
            rows.append(_equal_steps(case, label, common.model_config(quick, **mkw), probe, iters, probe_every,
                                     quick, device, seed, stuck_rows))
        for label, mkw in configs:
            rows.append(_equal_time(case, label, common.model_config(quick, **mkw), probe, iters, budget,
                                    quick, device, seed))
        # partial results survive an interrupted run
        common.write_csv(rows, out / "activation.csv")
        common.write_csv(stuck_rows, out / "stuck.csv")
    return rows, stuck_rows


def _figure(cases, configs, stuck_rows, out):
    plt = common.plt()
    fig, axes = plt.subplots(1, len(cases), figsize=(4.4 * len(cases), 3.4), squeeze=False)
    for j, case in enumerate(cases):
        ax = axes[0, j]
        for i, (label, _) in enumerate(configs):
            rs = [r for r in stuck_rows if r["case"] == case.name and r["activation"] == label]
            steps = [r["step"] for r in rs]
            ax.plot(steps, [r["unusable"] for r in rs], color=f"C{i}", label=f"{label}")
            ax.plot(steps, [r["zero_grad_seed"] for r in rs], color=f"C{i}", linestyle=":")
        ax.set_xlabel("training step")
        ax.set_ylabel("share of probe seeds")
        ax.set_title(f"{case.name}: unusable (solid), ∇F=0 at seed (dotted)", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return common.save_figure(fig, out / "activation_stuck.png")


def _summary(cases, configs, stuck_rows) -> list[dict]:
    summary = []
    for case in cases:
        for label, _ in configs:
            rs = [r for r in stuck_rows if r["case"] == case.name and r["activation"] == label]
            summary.append({"case": case.name, "activation": label,
                            "zero_grad_seed mean": float(np.mean([r["zero_grad_seed"] for r in rs])),
                            "zero_grad_seed max": float(np.max([r["zero_grad_seed"] for r in rs])),
                            "unusable mean": float(np.mean([r["unusable"] for r in rs])),
                            "buffer_unusable mean": float(np.mean([r["buffer_unusable"] for r in rs]))})
    return summary


def run_activation_study(cases: Any = None, out: str | Path = "out/studies/activation",
                         quick: bool = False, seed: int = 0, device: str = "cpu",
                         equal_time: float | None = None) -> Path:
    """ReLU vs Softplus(β) at equal steps and equal time (see module doc).

    Returns
    -------
    Path of ``report.md`` (beside it: ``activation.csv``, ``stuck.csv``, PNGs).
    """
    out = common.prepare_out(out)
    cases = common.load_cases(cases, quick, seed=seed)
    iters = 20 if quick else 200
    probe_every = 5 if quick else 25
    n_probe = 300 if quick else 2000
    configs = activation_configs(quick)
    rows, stuck_rows = _run_fits(cases, configs, out, quick, seed, device, iters, probe_every, n_probe, equal_time)
    common.write_csv(rows, out / "activation.csv")
    common.write_csv(stuck_rows, out / "stuck.csv")
    fig_path = _figure(cases, configs, stuck_rows, out)
    summary = _summary(cases, configs, stuck_rows)
    return _report(rows, summary, fig_path, out, quick, device, cases, seed, n_probe, probe_every)


def _report(rows, summary, fig_path, out, quick, device, cases, seed, n_probe, probe_every) -> Path:
    rep = common.Report("Study: ReLU vs Softplus(β)")
    rep.add(common.setup_note(quick, device, cases, seed,
                              f"Network {common.model_config(quick).hidden_dim} wide × "
                              f"{common.model_config(quick).n_hidden_layers} hidden layers; {n_probe} probe "
                              f"seeds, probed every {probe_every} steps. Training times are wall-clock on a "
                              "shared machine (noisy): equal-time budgets are approximate; step counts are "
                              "reported beside them."))
    rep.add(__doc__.split("\n\n", 1)[1])
    rep.add("## Quality and stuck samples at the end of training\n")
    rep.add("`cd`: Chamfer-L1 ×1000 of the box side; `nc`: normal consistency; `fscore` at 1% of the "
            "box side; stuck shares measured on the final network.")
    rep.table(rows, ["case", "activation", "budget", "steps", "train_s", "cd", "nc", "fscore",
                     "zero_grad_seed", "zero_grad_end", "unusable"])
    rep.add("## During training\n")
    rep.add("Per probe: see `stuck.csv` (columns step, zero_grad_seed, zero_grad_end, unusable, "
            "buffer_unusable).")
    rep.table(summary)
    rep.figure(fig_path, "Share of probe seeds unusable after 10 Newton steps (solid) and with "
                         "∇F = 0 at the seed (dotted) during training.")
    rep.add("## Answer\n")
    lines = []
    for s in summary:
        eq = [r for r in rows if r["case"] == s["case"] and r["activation"] == s["activation"]]
        lines.append(f"- {s['case']}, {s['activation']}: CD {eq[0]['cd']:.3g} at equal steps, "
                     f"{eq[1]['cd']:.3g} at equal time ({eq[1]['steps']} steps); ∇F = 0 at "
                     f"{s['zero_grad_seed mean']:.2%} of seeds on average during training (max "
                     f"{s['zero_grad_seed max']:.2%}); unusable samples {s['unusable mean']:.2%}.")
    rep.add("\n".join(lines))
    return rep.write(out / "report.md")
