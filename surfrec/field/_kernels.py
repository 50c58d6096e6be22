"""Numba kernels of the fused MLP engine (:mod:`surfrec.field.engine`).

Arrays are float32 and point-major: a layer's activations over a chunk of ``m`` points
are one C-contiguous (m, H) block. Matrix products go to the single-precision GEMM of
SciPy's BLAS (its address is passed in at run time, so the compiled code can be cached
on disk); everything else is written out here so that a whole chunk of a pass is one
call that holds no GIL.

Determinism: each kernel's arithmetic depends only on its inputs and on the chunk's
size, never on the thread that runs it. ``fastmath`` allows FMA contraction; only the
row-wise dot product :func:`_rowdot` may also reassociate (it is vectorized the same
way on every call).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

f32 = np.float32
_FAST = {"contract", "nsz", "arcp"}
_JIT = dict(nogil=True, cache=True, error_model="numpy", fastmath=_FAST)
_JIT_DOT = dict(_JIT, fastmath=_FAST | {"reassoc"})

#: |βz| is clamped here before the exponential (e^-30 ≈ 9e-14: below any float32
#: contribution, and it keeps every intermediate a normal number, no slow denormals)
EXP_CLAMP = 30.0

# coefficients fitted for relative error on the reduced ranges, rounded to float32:
# e^r = 1 + r + r²·(E1 + E2 r + … + E5 r⁴) on |r| ≤ ln2/2; log1p(e)/e = L0 + L1 e + … + L9 e⁹ on [0, 1]
_E1, _E2, _E3, _E4, _E5 = (0.5, 0.16666577756404877, 0.04166685417294502,
                           0.008363140746951103, 0.001390128512866795)
_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8, _L9 = (
    1.0, -0.4999990165233612, 0.3332996368408203, -0.24954134225845337, 0.1967593878507614,
    -0.15305592119693756, 0.10603653639554977, -0.05695951730012894, 0.019851453602313995,
    -0.0032440233044326305)


# --------------------------------------------------------------------- BLAS call
@intrinsic
def _sgemm(typingctx, fn, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Call the Fortran-convention ``sgemm`` at address ``fn``: C = op(A) op(B) + beta·C.

    ``ta``/``tb`` are the flag characters' codes (ord("N") or ord("T")), ``a``/``b``/``c``
    the arrays' data addresses; the by-reference scalars live on the caller's stack.
    """
    sig = types.void(fn, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        fn_, ta_, tb_, m_, n_, k_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)

        def by_ref(value, ty):
            return builder.bitcast(cgutils.alloca_once_value(builder, value), i8p) if ty is None else \
                builder.bitcast(cgutils.alloca_once_value(builder, builder.trunc(value, ty)), i8p)

        def addr(value):
            return builder.inttoptr(value, i8p)

        one = context.get_constant(types.float32, 1.0)
        beta32 = context.cast(builder, beta_, signature.args[10], types.float32)
        call_args = [by_ref(ta_, ir.IntType(8)), by_ref(tb_, ir.IntType(8)), by_ref(m_, i32), by_ref(n_, i32),
                     by_ref(k_, i32), by_ref(one, None), addr(a_), by_ref(lda_, i32), addr(b_),
                     by_ref(ldb_, i32), by_ref(beta32, None), addr(c_), by_ref(ldc_, i32)]
        fnty = ir.FunctionType(ir.VoidType(), [i8p] * 13)
        builder.call(builder.inttoptr(fn_, fnty.as_pointer()), call_args)
        return context.get_dummy_value()

    return sig, codegen


_N, _T = ord("N"), ord("T")
FIRST = np.int64(0)   # the first layer's index, typed int64 (a literal 0 would compile a variant)


@nb.njit(**_JIT)
def _mm_abt(a, w, c, beta, fn):
    """c (m, n) = a (m, k) @ w(n, k).T + beta * c (C order)."""
    m, k = a.shape
    n = w.shape[0]
    _sgemm(fn, _T, _N, n, m, k, w.ctypes.data, k, a.ctypes.data, k, beta, c.ctypes.data, n)


@nb.njit(**_JIT)
def _mm_atb(d, a, c, fn):
    """c (n, k) = d (m, n).T @ a (m, k) (C order)."""
    m, n = d.shape
    k = a.shape[1]
    _sgemm(fn, _N, _T, k, n, m, a.ctypes.data, k, d.ctypes.data, n, f32(0.0), c.ctypes.data, k)


@nb.njit(**_JIT)
def _mm_ab(d, w, c, fn):
    """c (m, k) = d (m, n) @ w (n, k) (C order)."""
    m, n = d.shape
    k = w.shape[1]
    _sgemm(fn, _N, _N, k, m, n, w.ctypes.data, k, d.ctypes.data, n, f32(0.0), c.ctypes.data, k)


# ------------------------------------------------------------ activation maths
@intrinsic
def _bits_to_f32(typingctx, i):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@nb.njit(**_JIT)
def _exp_neg(a):
    """e^-a for a in [0, EXP_CLAMP] (relative error ~1e-7; vectorizes: no libm call)."""
    x = -a
    n = np.floor(x * f32(1.44269504) + f32(0.5))
    r = x - n * f32(0.693359375) + n * f32(2.12194440e-4)   # Cody-Waite: x - n ln 2
    r2 = r * r
    p = (f32(_E1) + f32(_E2) * r) + r2 * ((f32(_E3) + f32(_E4) * r) + r2 * f32(_E5))
    p = (f32(1.0) + r) + r2 * p
    return p * _bits_to_f32((np.int32(n) + np.int32(127)) * np.int32(8388608))   # · 2^n


@nb.njit(**_JIT)
def _softplus_sigmoid(t):
    """softplus(t) and sigmoid(t) from one exponential, e = e^-|t| ∈ (0, 1].

    softplus(t) = max(t, 0) + log1p(e), with log1p(e) = e·φ(e) and φ a polynomial
    (relative error 3e-8 on [0, 1]; exact as e → 0, no cancellation); sigmoid(t) =
    1/(1+e) for t ≥ 0, else e/(1+e). The polynomial is evaluated in pairs of terms and
    runs beside the division: the dependency chain is short.
    """
    e = _exp_neg(min(abs(t), f32(EXP_CLAMP)))
    e2 = e * e
    phi = (f32(_L0) + f32(_L1) * e) + e2 * ((f32(_L2) + f32(_L3) * e) + e2 * (
        (f32(_L4) + f32(_L5) * e) + e2 * ((f32(_L6) + f32(_L7) * e) + e2 * (f32(_L8) + f32(_L9) * e))))
    r1 = f32(1.0) / (f32(1.0) + e)
    sp = max(t, f32(0.0)) + e * phi
    sg = r1 if t >= f32(0.0) else e * r1
    return sp, sg


@nb.njit(**_JIT)
def activate(z, beta, tmin, keep_slope, h, s):
    """h = softplus(t)/β and, when ``keep_slope``, s = sigmoid(t), with t = max(βz, tmin).

    Elementwise over (m, H) blocks; z holds the pre-activations (bias included). ``tmin``
    is −15 in inference (:meth:`ImplicitMLP._act_`) and −inf in training (torch's softplus).
    """
    n = z.size
    zf, hf, sf = z.reshape(n), h.reshape(n), s.reshape(n)
    inv = f32(1.0) / beta
    if keep_slope:
        for k in range(n):
            sp, sg = _softplus_sigmoid(max(zf[k] * beta, tmin))
            hf[k] = sp * inv
            sf[k] = sg
    else:
        for k in range(n):
            sp, _ = _softplus_sigmoid(max(zf[k] * beta, tmin))
            hf[k] = sp * inv


# ------------------------------------------------------------- small pieces
@nb.njit(**_JIT)
def _fill_rows(z, b):
    """Every row of z (m, H) = b (H,)."""
    m, hdim = z.shape
    for i in range(m):
        for j in range(hdim):
            z[i, j] = b[j]


@nb.njit(**_JIT)
def _first_layer(x, w0, b0, z, w0t):
    """z (m, H) = x (m, 3) @ w0 (H, 3).T + b0; ``w0t`` (3, H) is scratch for w0.T."""
    hdim = w0.shape[0]
    for j in range(hdim):
        for k in range(3):
            w0t[k, j] = w0[j, k]
    for i in range(x.shape[0]):
        x0, x1, x2 = x[i, 0], x[i, 1], x[i, 2]
        for j in range(hdim):
            z[i, j] = b0[j] + x0 * w0t[0, j] + x1 * w0t[1, j] + x2 * w0t[2, j]


@nb.njit(**_JIT_DOT)
def _rowdot(h, wo, bo, f):
    """f (m,) = h (m, H) @ wo (H,) + bo."""
    for i in range(h.shape[0]):
        acc = f32(0.0)
        for j in range(h.shape[1]):
            acc += h[i, j] * wo[j]
        f[i] = acc + bo


@nb.njit(**_JIT)
def _mul_slope(d, s):
    """d *= s elementwise (m, H)."""
    n = d.size
    df, sf = d.reshape(n), s.reshape(n)
    for k in range(n):
        df[k] *= sf[k]


@nb.njit(**_JIT)
def _mul_slope_colsum(d, s, gb):
    """d *= s elementwise (m, H); gb (H,) = column sums of the product."""
    for j in range(d.shape[1]):
        gb[j] = 0.0
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            v = d[i, j] * s[i, j]
            d[i, j] = v
            gb[j] += v


@nb.njit(**_JIT)
def _grad_first(d, x, gw0, acc):
    """gw0 (H, 3) = d (m, H).T @ x (m, 3); ``acc`` (3, H) scratch."""
    for j in range(d.shape[1]):
        acc[0, j] = 0.0
        acc[1, j] = 0.0
        acc[2, j] = 0.0
    for i in range(d.shape[0]):
        x0, x1, x2 = x[i, 0], x[i, 1], x[i, 2]
        for j in range(d.shape[1]):
            acc[0, j] += d[i, j] * x0
            acc[1, j] += d[i, j] * x1
            acc[2, j] += d[i, j] * x2
    for j in range(d.shape[1]):
        for k in range(3):
            gw0[j, k] = acc[k, j]


# ------------------------------------------------------------ parameter layout
@nb.njit(**_JIT)
def _weight(theta, hdim, n_layers, layer):
    """View of layer ``layer``'s weight (out, in) in the flat θ (module order)."""
    if layer == 0:
        return theta[0:3 * hdim].reshape(hdim, 3)
    if layer == n_layers:   # the output layer
        o = 4 * hdim + (n_layers - 1) * (hdim * hdim + hdim)
        return theta[o:o + hdim].reshape(1, hdim)
    o = 4 * hdim + (layer - 1) * (hdim * hdim + hdim)
    return theta[o:o + hdim * hdim].reshape(hdim, hdim)


@nb.njit(**_JIT)
def _bias(theta, hdim, n_layers, layer):
    """View of layer ``layer``'s bias (out,) in the flat θ."""
    if layer == 0:
        return theta[3 * hdim:4 * hdim]
    o = 4 * hdim + (layer - 1) * (hdim * hdim + hdim)
    if layer == n_layers:
        return theta[o + hdim:o + hdim + 1]
    return theta[o + hdim * hdim:o + hdim * hdim + hdim]


# --------------------------------------------------------------- chunk passes
@nb.njit(**_JIT)
def forward_chunk(x, theta, hdim, n_layers, beta, tmin, keep_slope, hs, ss, r0, z, f, fn, w0t):
    """F at a chunk of m points; every layer's activation (and slope) kept.

    Parameters
    ----------
    x : (m, 3) points; f : (m,) output
    hs, ss : (L, >= r0+m, H) activation and slope buffers; rows r0:r0+m are written
        (``ss`` only when ``keep_slope``)
    z : (>= m, H) scratch; w0t : (3, H) scratch; fn : sgemm's address
    """
    m = x.shape[0]
    r1 = r0 + m
    zc = z[:m]
    _first_layer(x, _weight(theta, hdim, n_layers, FIRST), _bias(theta, hdim, n_layers, FIRST), zc, w0t)
    for layer in range(n_layers):
        if layer > 0:
            _fill_rows(zc, _bias(theta, hdim, n_layers, layer))
            _mm_abt(hs[layer - 1, r0:r1], _weight(theta, hdim, n_layers, layer), zc, f32(1.0), fn)
        activate(zc, beta, tmin, keep_slope, hs[layer, r0:r1], ss[layer, r0:r1])
    _rowdot(hs[n_layers - 1, r0:r1], _weight(theta, hdim, n_layers, n_layers)[0],
            _bias(theta, hdim, n_layers, n_layers)[0], f)


@nb.njit(**_JIT)
def reverse_chunk(theta, hdim, n_layers, ss, v, u, g, fn):
    """∇ₓF at a chunk of m points from the slopes of :func:`forward_chunk` (rows 0:m of ss):
    one reverse sweep of a single vector per point.

    v, u : (>= m, H) scratch; g : (m, 3) output.
    """
    m = g.shape[0]
    wo = _weight(theta, hdim, n_layers, n_layers)[0]
    vc, uc = v[:m], u[:m]
    s_last = ss[n_layers - 1, :m]
    for i in range(m):
        for j in range(hdim):
            vc[i, j] = wo[j] * s_last[i, j]
    for layer in range(n_layers - 1, 0, -1):
        _mm_ab(vc, _weight(theta, hdim, n_layers, layer), uc, fn)
        vc, uc = uc, vc
        _mul_slope(vc, ss[layer - 1, :m])
    _mm_ab(vc, _weight(theta, hdim, n_layers, FIRST), g, fn)   # (m, H) @ (H, 3)


@nb.njit(**_JIT)
def backward_chunk(x, w, theta, hdim, n_layers, hs, ss, r0, d0, d1, grad, fn, acc):
    """θ-gradient of Σᵢ wᵢ F(xᵢ) over a chunk of m points into ``grad`` (P,), overwritten.

    Parameters
    ----------
    x : (m, 3) points; w : (m,) weights
    hs, ss : the buffers :func:`forward_chunk` filled (rows r0:r0+m)
    d0, d1 : (>= m, H) scratch; acc : (3, H) scratch; fn : sgemm's address
    """
    m = x.shape[0]
    r1 = r0 + m
    h_last, s_last = hs[n_layers - 1, r0:r1], ss[n_layers - 1, r0:r1]
    wo = _weight(theta, hdim, n_layers, n_layers)[0]
    gwo = _weight(grad, hdim, n_layers, n_layers)[0]
    gb = _bias(grad, hdim, n_layers, n_layers - 1)
    d, dn = d0[:m], d1[:m]
    for j in range(hdim):
        gwo[j] = 0.0
        gb[j] = 0.0
    sw = f32(0.0)
    for i in range(m):
        wi = w[i]
        sw += wi
        for j in range(hdim):
            gwo[j] += wi * h_last[i, j]
            v = wi * wo[j] * s_last[i, j]
            d[i, j] = v
            gb[j] += v
    _bias(grad, hdim, n_layers, n_layers)[0] = sw
    for layer in range(n_layers - 1, 0, -1):
        _mm_atb(d, hs[layer - 1, r0:r1], _weight(grad, hdim, n_layers, layer), fn)
        _mm_ab(d, _weight(theta, hdim, n_layers, layer), dn, fn)
        d, dn = dn, d
        _mul_slope_colsum(d, ss[layer - 1, r0:r1], _bias(grad, hdim, n_layers, layer - 1))
    _grad_first(d, x, _weight(grad, hdim, n_layers, FIRST), acc)


@nb.njit(**_JIT)
def sum_rows(parts, n, out):
    """out = parts[0] + parts[1] + ... + parts[n-1], in that order."""
    for k in range(out.size):
        out[k] = parts[0, k]
    for c in range(1, n):
        for k in range(out.size):
            out[k] += parts[c, k]


@nb.njit(**_JIT)
def adam(theta, grad, m, v, step, b2, w1, w2, bc2_sqrt, eps):
    """One Adam update in place, as :class:`surfrec.optim.Adam` writes it.

    m ← m + w₁(g − m); v ← β₂v + w₂g²; θ ← θ − step·m / (√v/√bc₂ + ε), where the caller
    rounds w₁ = 1−β₁, w₂ = 1−β₂, step = lr/(1−β₁ᵗ) and √bc₂ = √(1−β₂ᵗ) from double
    precision (1 − β₂ in float32 arithmetic would be off by 5e-5).
    """
    for k in range(theta.size):
        g = grad[k]
        mk = m[k] + w1 * (g - m[k])
        vk = v[k] * b2 + w2 * g * g
        m[k] = mk
        v[k] = vk
        theta[k] -= step * mk / (np.sqrt(vk) / bc2_sqrt + eps)
