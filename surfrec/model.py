"""Implicit networks F(x; θ): R³ → R.

The default is an MLP with Softplus activations and the geometric ("sphere")
initialization of Atzmon & Lipman (SAL), so that before training F(x) ≈ ‖x‖ − r: a
signed-distance-like function of a sphere, negative inside. Smooth activations matter for
level-set sampling: Newton projection needs ∇ₓF ≠ 0, and ReLU networks have regions where
∇ₓF = 0 (see ``surfrec study activation``).

:meth:`ImplicitMLP.value_and_grad` computes F and ∇ₓF with one forward pass and one
hand-written reverse sweep (one matmul per layer), without building an autograd
graph. Level-set projection and the sample network use it; they need no θ-gradient of
∇ₓF, so no second derivatives are ever required.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

ACTIVATIONS = ("softplus", "relu")


@dataclass
class ModelConfig:
    """Architecture of the implicit network."""

    hidden_dim: int = 128
    """Width of every hidden layer."""
    n_hidden_layers: int = 4
    """Number of hidden layers."""
    skip_layers: tuple[int, ...] = ()
    """Hidden-layer indices (0-based) whose input is concatenated with x (DeepSDF-style skip)."""
    activation: str = "softplus"
    """``softplus`` (smooth, recommended) or ``relu`` (as in the paper's official code)."""
    softplus_beta: float = 100.0
    """Sharpness β of Softplus(z) = log(1 + exp(βz)) / β; large β approaches ReLU."""
    init_radius: float = 0.5
    """Radius r of the sphere F ≈ ‖x‖ − r that the geometric initialization produces."""

    def __post_init__(self) -> None:
        self.skip_layers = tuple(int(i) for i in self.skip_layers)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.hidden_dim < 1 or self.n_hidden_layers < 1:
            raise ValueError("hidden_dim and n_hidden_layers must be positive")
        if self.softplus_beta <= 0:
            raise ValueError(f"softplus_beta must be positive, got {self.softplus_beta}")
        bad = [i for i in self.skip_layers if not 0 < i < self.n_hidden_layers]
        if bad:
            raise ValueError(f"skip_layers must lie in 1..{self.n_hidden_layers - 1}, got {bad}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skip_layers"] = list(self.skip_layers)
        return d


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
        self.layers = nn.ModuleList()
        in_dim = 3
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

    # ------------------------------------------------------------ activation
    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "relu":
            return torch.relu(z)
        b = self.config.softplus_beta
        return nn.functional.softplus(z, beta=b, threshold=20.0)

    def _act_grad(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "relu":
            return (z > 0).to(z.dtype)
        return torch.sigmoid(self.config.softplus_beta * z)

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
        h = x
        skip_scale = 1.0 / math.sqrt(2.0)
        for i, lin in enumerate(self.layers):
            if i in self.config.skip_layers:
                h = torch.cat([h, x], dim=-1) * skip_scale
            h = self._act(lin(h))
        return self.out(h).squeeze(-1)

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
            h = x
            slopes: list[torch.Tensor] = []
            for i, lin in enumerate(self.layers):
                if i in self.config.skip_layers:
                    h = torch.cat([h, x], dim=-1) * skip_scale
                z = lin(h)
                slopes.append(self._act_grad(z))
                h = self._act(z)
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


__all__ = ["ModelConfig", "ImplicitMLP", "build_model", "count_parameters", "ACTIVATIONS"]
