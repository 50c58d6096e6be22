"""Implicit networks F(x; θ): R³ → R.

The default is an MLP with Softplus activations and the geometric ("sphere")
initialization of Atzmon & Lipman (SAL), so that before training F(x) ≈ ‖x‖ − r: a
signed-distance-like function of a sphere, negative inside. Smooth activations matter for
level-set sampling: Newton projection needs ∇ₓF ≠ 0, and ReLU networks have regions where
∇ₓF = 0 (see ``surfrec study activation``).

Optionally (``ModelConfig.encoding = "grid"``) the MLP also reads a multiresolution
feature grid: dense trilinear grids at resolutions from ``grid_min_res`` to
``grid_max_res`` (geometric progression), ``grid_channels`` features each, concatenated
with x. The features start near zero, so the geometric sphere initialization still holds;
they let the fit add detail in few steps (a small MLP on x alone converges slowly on
fine detail). Finer levels can be switched on over time (coarse to fine) through
:meth:`ImplicitMLP.set_level_weights`.

:meth:`ImplicitMLP.value_and_grad` computes F and ∇ₓF with one forward pass and one
hand-written reverse sweep (one matmul per layer), without building an autograd
graph. Level-set projection and the sample network use it; they need no θ-gradient of
∇ₓF, so no second derivatives are ever required.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..settings.field import ACTIVATIONS, ENCODINGS, ModelConfig

#: Softplus arguments βz below −SOFTPLUS_FLOOR are clamped (the value there is < e^−15/β).
SOFTPLUS_FLOOR = 15.0


class ImplicitMLP(nn.Module):
    """MLP F(x; θ) with optional skip connections and geometric initialization.

    Parameters
    ----------
    config : ModelConfig
        Architecture.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.grids = nn.ParameterList(
            [nn.Parameter(torch.empty(r**3, c.grid_channels)) for r in c.grid_resolutions()])
        self.register_buffer("level_weights", torch.ones(len(self.grids)), persistent=False)
        #: grid gradients as sparse tensors (only the rows a step touched; for SparseAdam)
        self.sparse_grid_grad = False
        self.layers = nn.ModuleList()
        in_dim = 3 + c.feature_dim
        for i in range(c.n_hidden_layers):
            extra = 3 if i in c.skip_layers else 0
            self.layers.append(nn.Linear(in_dim + extra, c.hidden_dim))
            in_dim = c.hidden_dim
        self.out = nn.Linear(in_dim, 1)
        self._geometric_init()

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def _geometric_init(self) -> None:
        c = self.config
        for i, lin in enumerate(self.layers):
            out_dim = lin.out_features
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0) / math.sqrt(out_dim))
            nn.init.zeros_(lin.bias)
            if i in c.skip_layers:
                # the concatenated x enters with zero weight: F starts as the plain sphere
                lin.weight[:, -3:].zero_()
        nn.init.normal_(self.out.weight, math.sqrt(math.pi) / math.sqrt(self.out.in_features), 1e-4)
        nn.init.constant_(self.out.bias, -c.init_radius)
        for grid in self.grids:
            nn.init.normal_(grid, 0.0, c.grid_init_std)

    def grid_parameters(self) -> list[nn.Parameter]:
        """Parameters of the feature grid (they usually want a higher learning rate)."""
        return list(self.grids)

    def mlp_parameters(self) -> list[nn.Parameter]:
        """Parameters of the MLP."""
        return [p for n, p in self.named_parameters() if not n.startswith("grids.")]

    def set_level_weights(self, weights) -> None:
        """Scale each grid level's features (0 = off, 1 = on): coarse-to-fine schedules."""
        w = torch.as_tensor(weights, dtype=self.level_weights.dtype, device=self.level_weights.device)
        if w.shape != self.level_weights.shape:
            raise ValueError(f"expected {tuple(self.level_weights.shape)} level weights, got {tuple(w.shape)}")
        self.level_weights.copy_(w)

    # -------------------------------------------------------------- encoding
    def _encode(self, x: torch.Tensor, jacobian: bool = False):
        """Grid features of x, (M, L·C), and optionally their x-Jacobian, (M, L·C, 3).

        Trilinear interpolation written with gathers, so that its spatial derivative is
        available in closed form (piecewise linear along each axis).
        """
        c = self.config
        feats, jacs = [], []
        for lvl, grid in enumerate(self.grids):
            r = round(grid.shape[0] ** (1.0 / 3.0))
            scale = (r - 1) / (2.0 * c.grid_bound)
            u_raw = (x + c.grid_bound) * scale
            u = u_raw.clamp(0.0, r - 1.0)
            i0 = u.detach().floor().clamp(max=r - 2).long()
            t = u - i0.to(u.dtype)
            base = (i0[:, 2] * r + i0[:, 1]) * r + i0[:, 0]
            offsets = torch.tensor([(dz * r + dy) * r + dx for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)],
                                   device=x.device)
            # one gather per level (M, 8, C); a sparse gradient touches only these rows
            v = nn.functional.embedding(base.unsqueeze(1) + offsets, grid, sparse=self.sparse_grid_grad)
            tx, ty, tz = t[:, 0:1, None], t[:, 1:2, None], t[:, 2:3, None]
            v = v.view(-1, 2, 2, 2, v.shape[-1])               # [z, y, x] corners
            cx = v[:, :, :, 0] + tx.unsqueeze(1) * (v[:, :, :, 1] - v[:, :, :, 0])   # (M, 2z, 2y, C)
            cy = cx[:, :, 0] + ty * (cx[:, :, 1] - cx[:, :, 0])                      # (M, 2z, C)
            w = self.level_weights[lvl]
            tz2 = tz.squeeze(1)
            feats.append((cy[:, 0] + tz2 * (cy[:, 1] - cy[:, 0])) * w)
            if jacobian:
                dxv = v[:, :, :, 1] - v[:, :, :, 0]                                   # (M, 2z, 2y, C)
                dxy = dxv[:, :, 0] + ty * (dxv[:, :, 1] - dxv[:, :, 0])
                d_dx = dxy[:, 0] + tz2 * (dxy[:, 1] - dxy[:, 0])
                dyv = cx[:, :, 1] - cx[:, :, 0]
                d_dy = dyv[:, 0] + tz2 * (dyv[:, 1] - dyv[:, 0])
                d_dz = cy[:, 1] - cy[:, 0]
                # clamped coordinates (outside the grid) have no derivative along that axis
                inside = ((u_raw > 0) & (u_raw < r - 1)).to(x.dtype)
                j = torch.stack([d_dx, d_dy, d_dz], dim=2) * (scale * w)
                jacs.append(j * inside.unsqueeze(1))
        f = torch.cat(feats, dim=1)
        return (f, torch.cat(jacs, dim=1)) if jacobian else f

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self._encode(x)], dim=1) if len(self.grids) else x

    # ------------------------------------------------------------ activation
    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "relu":
            return torch.relu(z)
        b = self.config.softplus_beta
        # softplus(βz)/β with βz clamped at −SOFTPLUS_FLOOR: below it the value is < 4e-9 of
        # a unit, and exp() of very negative arguments takes a slow path on x86 CPUs (torch's
        # own softplus(beta=100) was 7x slower than this on 64-wide layers)
        # (with autograd on, torch's fused op is kept: three recorded ops cost more there;
        # in float64 too, where e^-15 is not below the precision)
        if torch.is_grad_enabled() or z.dtype == torch.float64:
            return nn.functional.softplus(z, beta=b, threshold=20.0)
        return nn.functional.softplus((z * b).clamp(min=-SOFTPLUS_FLOOR), threshold=20.0) / b

    def _act_(self, z: torch.Tensor) -> torch.Tensor:
        """:meth:`_act` without autograd, in place on ``z`` (``z`` is consumed): the same
        values bit for bit (same ops, same order), without the temporaries of ``z * β``,
        the clamp and the division (grid evaluation: 1.1x of the whole pass)."""
        if self.config.activation == "relu":
            return torch.relu_(z)
        b = self.config.softplus_beta
        if z.dtype == torch.float64:
            return nn.functional.softplus(z, beta=b, threshold=20.0)
        t = z.mul_(b).clamp_(min=-SOFTPLUS_FLOOR)
        return nn.functional.softplus(t, threshold=20.0).div_(b)

    def _act_grad(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "relu":
            return (z > 0).to(z.dtype)
        return torch.sigmoid(self.config.softplus_beta * z)

    def _act_and_slope(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Activation and its derivative from one pass (no autograd; ``z`` is consumed).

        Softplus shares its transcendental with its slope: with t = βz and s = σ(t),
        softplus(t)/β = (t − log s)/β (exact: log σ(t) = −softplus(−t)), so one sigmoid
        and one log give both, instead of softplus (exp + log1p) and a separate sigmoid
        (2× faster on 64-wide layers). t is clamped at −SOFTPLUS_FLOOR as in :meth:`_act`
        (σ there is < 3.1e-7, the value < e^−15/β); float64 keeps the exact formulas.
        """
        if self.config.activation == "relu":
            return torch.relu(z), (z > 0).to(z.dtype)
        b = self.config.softplus_beta
        if z.dtype == torch.float64:
            return nn.functional.softplus(z, beta=b, threshold=20.0), torch.sigmoid(b * z)
        t = z.mul_(b).clamp_(min=-SOFTPLUS_FLOOR)
        s = torch.sigmoid(t)
        return (t - torch.log(s)).div_(b), s

    # --------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate F.

        Parameters
        ----------
        x : (M, 3) float tensor

        Returns
        -------
        (M,) tensor
        """
        return self._pass(x, self._act)

    def _pass(self, x: torch.Tensor, act) -> torch.Tensor:
        """The layers with activation ``act``: (M, 3) -> (M,)."""
        h = self._input(x)
        skip_scale = 1.0 / math.sqrt(2.0)
        for i, lin in enumerate(self.layers):
            if i in self.config.skip_layers:
                h = torch.cat([h, x], dim=-1) * skip_scale
            h = act(lin(h))
        return self.out(h).squeeze(-1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) without autograd: :meth:`forward`'s values (bit for bit), activations in
        place. For inference only (grids, the surface step); the result is computed as if
        under ``torch.no_grad``.

        Parameters
        ----------
        x : (M, 3) float tensor

        Returns
        -------
        (M,) tensor
        """
        with torch.no_grad():
            return self._pass(x, self._act_)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F(x) and ∇ₓF(x) in closed form: one forward pass, one reverse sweep, no autograd.

        Only valid where no θ-gradient is needed (the result is computed as if under
        ``torch.no_grad``).

        Parameters
        ----------
        x : (M, 3) float tensor

        Returns
        -------
        f : (M,) tensor
        g : (M, 3) tensor
        """
        with torch.no_grad():
            skip_scale = 1.0 / math.sqrt(2.0)
            if len(self.grids):
                feats, jac = self._encode(x, jacobian=True)
                h = torch.cat([x, feats], dim=1)
            else:
                h = x
            slopes: list[torch.Tensor] = []
            for i, lin in enumerate(self.layers):
                if i in self.config.skip_layers:
                    h = torch.cat([h, x], dim=-1) * skip_scale
                h, slope = self._act_and_slope(lin(h))
                slopes.append(slope)
            f = self.out(h).squeeze(-1)
            # reverse sweep of a single vector: one matmul per layer, no autograd graph
            v = self.out.weight.expand(x.shape[0], -1)
            g_skip = torch.zeros_like(x)
            for i in range(len(self.layers) - 1, -1, -1):
                v = torch.matmul(v * slopes[i], self.layers[i].weight)
                if i in self.config.skip_layers:
                    # the layer's input was [h, x] / sqrt(2): split the gradient
                    g_skip = g_skip + v[:, -3:] * skip_scale
                    v = v[:, :-3] * skip_scale
            if len(self.grids):
                # chain rule through the encoding: x itself, then each feature's Jacobian
                g = v[:, :3] + torch.bmm(v[:, 3:].unsqueeze(1), jac).squeeze(1) + g_skip
            else:
                g = v + g_skip
        return f, g

    def gradient(self, x: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """F(x) and ∇ₓF(x) through autograd (differentiable in θ when ``create_graph``).

        Used by the optional eikonal and normal terms and as the reference for
        :meth:`value_and_grad` in tests.

        Returns
        -------
        f : (M,) tensor
        g : (M, 3) tensor
        """
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            f = self(x)
            (g,) = torch.autograd.grad(f.sum(), x, create_graph=create_graph)
        return f, g


def build_model(config: ModelConfig | dict | None = None) -> ImplicitMLP:
    """Build an :class:`ImplicitMLP` from a config or its dict form."""
    if isinstance(config, dict):
        config = ModelConfig(**config)
    return ImplicitMLP(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ModelConfig", "ImplicitMLP", "build_model", "count_parameters", "ACTIVATIONS", "ENCODINGS"]
