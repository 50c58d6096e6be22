"""Optimizers and the learning-rate schedule of the fit (no torch.optim import cost)."""

from __future__ import annotations

import math

import torch


def lr_at(cfg, step: int, total: int) -> float:
    """Linear warm-up, then cosine decay from ``cfg.lr`` to ``cfg.lr * cfg.lr_final_factor``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    lo = cfg.lr * cfg.lr_final_factor
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def level_weights(n_levels: int, progress: float, span: float) -> list[float]:
    """Coarse-to-fine weights: level 0 always on, level k fades in over span/(L−1) of the run."""
    out = [1.0]
    per = span / (n_levels - 1)
    for k in range(1, n_levels):
        start = (k - 1) * per
        out.append(float(min(1.0, max(0.0, (progress - start) / per))))
    return out


class Adam:
    """Adam (Kingma & Ba 2015), the update of ``torch.optim.Adam`` with its defaults (no
    weight decay, no AMSGrad), written out.

    Why not torch's: building the first ``torch.optim`` optimizer in a process imports
    ``torch._dynamo``, 1.2 s of every fit's set-up on two cores (the ``fast`` preset's
    whole budget is ~13 s). The result matches ``torch.optim.Adam`` to float32 rounding
    (tests/test_fitting.py).

    Parameters
    ----------
    groups : list of dict
        Each with ``params`` (tensors) and any extra keys (kept, e.g. ``base_lr``).
    lr : float
        Default learning rate of groups without ``lr``.
    betas, eps
        As in ``torch.optim.Adam``.
    """

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param_groups = [dict(g, params=list(g["params"]), lr=g.get("lr", lr)) for g in groups]
        self.betas, self.eps = betas, eps
        # per parameter: [steps taken, first moment, second moment] (None until its first grad)
        self.state: list[list[list | None]] = [[None] * len(g["params"]) for g in self.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the parameters' gradients."""
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        b1, b2 = self.betas
        for g, states in zip(self.param_groups, self.state):
            for i, p in enumerate(g["params"]):
                if p.grad is None:
                    continue
                st = states[i]
                if st is None:
                    st = states[i] = [0, torch.zeros_like(p), torch.zeros_like(p)]
                st[0] += 1
                m, v = st[1], st[2]
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                step_size = g["lr"] / (1 - b1 ** st[0])
                denom = (v.sqrt() / math.sqrt(1 - b2 ** st[0])).add_(self.eps)
                p.addcdiv_(m, denom, value=-step_size)

    def state_dict(self) -> dict:
        """Learning rates, extra group keys and moments (tensors, ints, floats: weights_only-safe)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        return {"param_groups": groups, "state": [[None if s is None else list(s) for s in st] for st in self.state]}

    def load_state_dict(self, state: dict) -> None:
        """Restore learning rates and moments saved by :meth:`state_dict`."""
        for g, saved in zip(self.param_groups, state["param_groups"]):
            g.update(saved)
        self.state = [[None if s is None else [int(s[0]), s[1].clone(), s[2].clone()] for s in st]
                      for st in state["state"]]

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters (with its own learning rate)."""
        self.param_groups.append(dict(group, params=list(group["params"]), lr=group.get("lr", self.param_groups[0]["lr"])))
        self.state.append([None] * len(group["params"]))


class Optimizers:
    """Several optimizers stepped together (Adam for the MLP, SparseAdam for the grid)."""

    def __init__(self, optimizers: list) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list:
        """Every optimizer's parameter groups."""
        return [g for o in self.optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the parameters' gradients."""
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> list:
        """Each optimizer's state (checkpoints)."""
        return [o.state_dict() for o in self.optimizers]

    def load_state_dict(self, states: list) -> None:
        """Restore learning rates and moments saved by :meth:`state_dict`."""
        for o, s in zip(self.optimizers, states):
            o.load_state_dict(s)
