"""Numba kernels of the fused training step (:mod:`surfrec.field.step`): the work between
the engine's passes, each one call that holds no GIL.

Random numbers come in from a numpy generator (uniforms in [0, 1) and standard normals,
drawn in bulk once per step); the kernels turn them into indices, seeds and offsets.
Reductions run in a fixed order in float64.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True, error_model="numpy")


@nb.njit(**_JIT)
def pick(u, n):
    """Index ``floor(u · n)`` (clamped to n − 1) of a uniform ``u`` in [0, 1)."""
    j = int(u * n)
    return j if j < n else n - 1


@nb.njit(**_JIT)
def seeds(pts, sigma, scale, box, u_idx, z, u_uni, out):
    """Gaussian seeds around ``pts[pick(u_idx)]`` (σ · scale) then uniform ones in the box, into ``out``."""
    n = pts.shape[0]
    kg = u_idx.shape[0]
    for i in range(kg):
        j = pick(u_idx[i], n)
        s = sigma[j] * scale
        for d in range(3):
            out[i, d] = pts[j, d] + z[i, d] * s
    for i in range(u_uni.shape[0]):
        for d in range(3):
            out[kg + i, d] = np.float32(u_uni[i, d] * 2.0 * box - box)


@nb.njit(**_JIT)
def gather(points, u, out):
    """``out[i] = points[pick(u[i])]``."""
    n = points.shape[0]
    for i in range(u.shape[0]):
        j = pick(u[i], n)
        for d in range(3):
            out[i, d] = points[j, d]


@nb.njit(**_JIT)
def newton(p, f, g, level, eps, box, out, bad):
    """One generalized Newton step of every row; ``bad`` flags non-finite rows and rows
    that left the box. Returns how many are bad."""
    count = 0
    for i in range(p.shape[0]):
        g2 = g[i, 0] * g[i, 0] + g[i, 1] * g[i, 1] + g[i, 2] * g[i, 2]
        step = (f[i] - level) / max(g2, eps)
        b = False
        for d in range(3):
            v = p[i, d] - step * g[i, d]
            out[i, d] = v
            if not np.isfinite(v) or abs(v) > box:
                b = True
        bad[i] = b
        count += b
    return count


@nb.njit(**_JIT)
def slope_pairs(x, g, h, out):
    """The slope term's pairs: x + h n (first half of ``out``), x − h n (second), n = g / |g|."""
    n = x.shape[0]
    for i in range(n):
        norm = np.sqrt(g[i, 0] * g[i, 0] + g[i, 1] * g[i, 1] + g[i, 2] * g[i, 2])
        s = h / max(norm, 1e-12)
        for d in range(3):
            out[i, d] = x[i, d] + s * g[i, d]
            out[n + i, d] = x[i, d] - s * g[i, d]


@nb.njit(**_JIT)
def side_points(pts, nrm, delta, u_idx, u_side, out, side, dlt):
    """The side term's points x ± δ n of random scan points with oriented normals."""
    n = pts.shape[0]
    for i in range(u_idx.shape[0]):
        j = pick(u_idx[i], n)
        s = np.float32(1.0) if u_side[i] >= 0.5 else np.float32(-1.0)
        side[i] = s
        dlt[i] = delta[j]
        for d in range(3):
            out[i, d] = pts[j, d] + s * delta[j] * nrm[j, d]


@nb.njit(**_JIT)
def _cell(v, box, r):
    """Grid coordinate of ``v`` on the (r+1)-point axis over [−box, box]: (cell, fraction)."""
    t = min(max((v / box + 1.0) * 0.5 * r, 0.0), float(r))
    k = min(int(np.floor(t)), r - 1)
    return k, t - k


@nb.njit(**_JIT)
def trilinear(grid, box, p, out):
    """The (R+1)³ grid over [−box, box]³ (index [z, y, x]) at the rows of ``p``, trilinear,
    clamped at the border (torch's grid_sample with align_corners)."""
    r = grid.shape[0] - 1
    for i in range(p.shape[0]):
        x0, u0 = _cell(p[i, 0], box, r)
        x1, u1 = _cell(p[i, 1], box, r)
        x2, u2 = _cell(p[i, 2], box, r)
        acc = 0.0
        for dz in range(2):
            wz = u2 if dz else 1.0 - u2
            for dy in range(2):
                wy = u1 if dy else 1.0 - u1
                for dx in range(2):
                    wx = u0 if dx else 1.0 - u0
                    acc += wz * wy * wx * grid[x2 + dz, x1 + dy, x0 + dx]
        out[i] = acc


@nb.njit(**_JIT)
def weights(f, m, nb_, ns, ps, g0, target, near, sheet_nrm, use_sheet, winding, sign_on, far, inside,
            outside, side, delta, level, sample_tol, eps, surface_weight, sign_weight, data_weight, side_weight,
            side_margin, slope_weight, slope_step, w, usable, dist_out):
    """The loss terms of one step and dL/dF of every point (see :func:`surfrec.field.step.loss_weights`).

    Returns (surface, pulled, sign_pushed, data, side, slope): the unweighted terms, the
    count of pulled samples (0: no surface term) and of pushed ones.
    """
    for i in range(w.shape[0]):
        w[i] = 0.0
    n_ok = 0
    for i in range(m):
        g2 = g0[i, 0] * g0[i, 0] + g0[i, 1] * g0[i, 1] + g0[i, 2] * g0[i, 2]
        ok = abs(f[i] - level) < sample_tol and g2 > eps
        usable[i] = ok
        n_ok += ok
        dist_out[i] = 0.0
    pulled = np.zeros(m, np.bool_)
    dist = np.zeros(m, np.float32)
    n_push = 0
    n_pull = 0
    surface = 0.0
    if n_ok:
        for i in range(m):
            if not usable[i]:
                continue
            dx = ps[i, 0] - target[i, 0]
            dy = ps[i, 1] - target[i, 1]
            dz = ps[i, 2] - target[i, 2]
            dist[i] = np.sqrt(dx * dx + dy * dy + dz * dz)
            if use_sheet:
                facing = g0[i, 0] * sheet_nrm[i, 0] + g0[i, 1] * sheet_nrm[i, 1] + g0[i, 2] * sheet_nrm[i, 2]
                pulled[i] = near[i] and facing > 0
                continue
            dist_out[i] = dist[i]
            push = 0.0
            if sign_on and dist[i] > far:
                push = (1.0 if winding[i] > inside else 0.0) - (1.0 if winding[i] < outside else 0.0)
            if push != 0.0:
                w[i] += np.float32(surface_weight * sign_weight / n_ok * push)
                n_push += 1
            else:
                pulled[i] = True
        for i in range(m):
            if pulled[i]:
                n_pull += 1
                surface += dist[i]
        if n_pull:
            surface /= n_pull
            scale = -surface_weight / n_pull
            for i in range(m):
                if not pulled[i] or dist[i] <= 0:
                    continue
                g2 = max(g0[i, 0] * g0[i, 0] + g0[i, 1] * g0[i, 1] + g0[i, 2] * g0[i, 2], eps)
                dot = 0.0
                for d in range(3):
                    dot += (ps[i, d] - target[i, d]) * g0[i, d]
                w[i] += np.float32(scale * dot / (dist[i] * g2))
    data = 0.0
    for i in range(m, m + nb_):
        r = f[i] - level
        data += abs(r)
        w[i] += np.float32(data_weight / max(nb_, 1) * (1.0 if r > 0 else (-1.0 if r < 0 else 0.0)))
    data = data / nb_ if nb_ else 0.0
    side_term = 0.0
    o = m + nb_
    for i in range(ns):
        hinge = side_margin * delta[i] - side[i] * (f[o + i] - level)
        if hinge > 0:
            side_term += hinge
            w[o + i] += np.float32(-side_weight / ns * side[i])
    side_term = side_term / ns if ns else 0.0
    slope = 0.0
    o = m + nb_ + ns
    nl = (f.shape[0] - o) // 2
    if nl and slope_weight > 0:
        c = slope_weight * 2.0 / (nl * 2.0 * slope_step)
        for i in range(nl):
            d = (f[o + i] - f[o + nl + i]) / (2.0 * slope_step) - 1.0
            slope += d * d
            w[o + i] += np.float32(c * d)
            w[o + nl + i] -= np.float32(c * d)
        slope /= nl
    return surface, n_pull, n_push, data, side_term, slope
