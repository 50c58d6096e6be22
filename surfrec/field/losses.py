"""The sample network and the loss terms of the fit.

The sample network (Atzmon et al. 2019, eq. 5) turns level-set samples p* into points
that depend on θ to first order, without moving them::

    p(θ) = p* − (F(p*; θ) − F₀) g / max(‖g‖², ε),   g = ∇ₓF(p*), F₀ = F(p*), both detached

Its value is p*, and ∂p/∂θ = −g/‖g‖² ∂F(p*; θ)/∂θ: the velocity of the level set at p*
when θ changes. Any loss on p(θ) therefore moves the surface, with first derivatives only.
"""

from __future__ import annotations

import torch

from .levelset import value_and_grad

#: What a fit records per recorded step: the step, time and learning rate, the loss and
#: each of its terms, and the level-set samples' residual statistics.
HISTORY_KEYS = ("step", "time", "lr", "loss", "surface", "sign", "data", "side", "slope", "distance",
                "residual_median", "residual_p90", "converged")


def sample_network(
    model: torch.nn.Module,
    p_star: torch.Tensor,
    f0: torch.Tensor | None = None,
    g: torch.Tensor | None = None,
    *,
    eps: float = 1e-8,
    f: torch.Tensor | None = None,
) -> torch.Tensor:
    """Level-set samples as a differentiable function of θ.

    Parameters
    ----------
    model : torch.nn.Module
        The implicit network F.
    p_star : (M, 3) tensor
        Samples on (or near) a level set; detached.
    f0 : (M,) tensor, optional
        F(p*) detached; computed when not given.
    g : (M, 3) tensor, optional
        ∇ₓF(p*) detached; computed when not given.
    eps : float
        Guard of the denominator.
    f : (M,) tensor, optional
        F(p*; θ) with its θ-graph, when the caller already evaluated it (e.g. in one
        batched forward pass with other terms); computed when not given.

    Returns
    -------
    (M, 3) tensor
        Equal to ``p_star`` in value; carries ∂p/∂θ.
    """
    p_star = p_star.detach()
    if f0 is None or g is None:
        f0, g = value_and_grad(model, p_star)
    f0, g = f0.detach(), g.detach()
    if f is None:
        f = model(p_star)
    g2 = (g * g).sum(dim=1).clamp_min(eps)
    return p_star - ((f - f0) / g2).unsqueeze(1) * g


def surface_sample_loss(p_theta: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean distance from level-set samples to their nearest input points.

    Parameters
    ----------
    p_theta : (M, 3) tensor
        Output of :func:`sample_network` for samples of the 0-level set.
    targets : (M, 3) tensor
        Nearest input point of each sample (among all input points); detached.

    Returns
    -------
    scalar tensor
    """
    return (p_theta - targets.detach()).norm(dim=1).mean()


def distance_sample_loss(p_theta: torch.Tensor, targets: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    """Make level sets lie at the distance their level says ("general" samples).

    A point q with F(q) = F₀ lies on the level set S_{F₀}; if F were a distance function,
    the nearest input point would be at distance |F₀|. The sample network of S_{F₀}
    through q moves that level set so that it does.

    Parameters
    ----------
    p_theta : (M, 3) tensor
        :func:`sample_network` output at the points q (level F₀).
    targets : (M, 3) tensor
        Nearest input point of each q; detached.
    f0 : (M,) tensor
        F(q), detached.

    Returns
    -------
    scalar tensor
    """
    d = (p_theta - targets.detach()).norm(dim=1)
    return (d - f0.detach().abs()).abs().mean()


def data_loss(model: torch.nn.Module, x: torch.Tensor, level: float = 0.0) -> torch.Tensor:
    """Mean |F(x) − c| on input points.

    Parameters
    ----------
    x : (B, 3) tensor

    Returns
    -------
    scalar tensor
    """
    return (model(x) - level).abs().mean()


def eikonal_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mean (‖∇ₓF(x)‖ − 1)² (needs second derivatives: optional, off by default).

    Parameters
    ----------
    x : (B, 3) tensor

    Returns
    -------
    scalar tensor
    """
    _, g = model.gradient(x, create_graph=True)
    return ((g.norm(dim=1) - 1.0) ** 2).mean()


def slope_loss(f_plus: torch.Tensor, f_minus: torch.Tensor, step: float) -> torch.Tensor:
    """Mean (D − 1)², D = (F(x + hn) − F(x − hn)) / 2h: the eikonal term with first
    derivatives only, when n is the unit gradient at x (detached) and h = ``step``.

    Parameters
    ----------
    f_plus, f_minus : (B,) F(x ± hn; θ) with their θ-graphs
    step : float
        h.

    Returns
    -------
    scalar tensor
    """
    return (((f_plus - f_minus) / (2.0 * step) - 1.0) ** 2).mean()


def normal_loss(model: torch.nn.Module, x: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """Mean 1 − |cos(∇ₓF(x), n)| on input points with normals (orientation-free).

    Parameters
    ----------
    x : (B, 3) tensor
    normals : (B, 3) tensor
        Unit normals of the scan.

    Returns
    -------
    scalar tensor
    """
    _, g = model.gradient(x, create_graph=True)
    cos = torch.nn.functional.cosine_similarity(g, normals, dim=1, eps=1e-8)
    return (1.0 - cos.abs()).mean()


def side_loss(f: torch.Tensor, side: torch.Tensor, delta: torch.Tensor, level: float = 0.0,
              margin: float = 0.1) -> torch.Tensor:
    """Mean hinge asking F to cross ``level`` at a sheet of points with oriented normals.

    With ``f`` = F(x + s·δ·n), s = ±1 the side each point was moved to::

        mean relu(m·δ − s·(F(x + s·δ·n) − c))

    Zero once F is above c + mδ in front of the sheet and below c − mδ behind it, so it
    gives an open scan an inside without placing the surface (the data and sample terms do).

    Parameters
    ----------
    f : (B,) tensor
        F at the moved points.
    side : (B,) tensor
        s = +1 (moved along the normal) or −1 (against it).
    delta : (B,) tensor
        The offsets δ (normalized units).

    Returns
    -------
    scalar tensor
    """
    return torch.relu(margin * delta - side * (f - level)).mean()


def sign_push_loss(f: torch.Tensor, f0: torch.Tensor, side: torch.Tensor, count: int) -> torch.Tensor:
    """Move stray level-set samples to the side the scan says.

    Per sample ``side · (F(p*; θ) − F₀)``: side = +1 lowers F at p* (the level set there
    moves along ∇F, so the region it bounds on the low side, the inside, grows: a bubble
    closes), −1 raises it (a web's inside shrinks). Linear in F like the data term, not
    divided by ‖∇F‖ as the sample network's displacement is: far from the data ‖∇F‖ can be
    small, and the displacement form blew the field up (abc00994122: the pushed samples
    grew to 444 of 724 within 60 steps; benchmarks/EXPERIMENTS.md).

    Parameters
    ----------
    f : (M,) F(p*; θ) with its θ-graph; f0 : (M,) F(p*) detached
    side : (M,) ±1
    count : int
        Divisor (the number of samples of the sample term, so both are means over it).

    Returns
    -------
    scalar tensor
    """
    return (side * (f - f0.detach())).sum() / max(1, count)
