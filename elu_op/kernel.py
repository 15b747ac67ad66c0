"""The Triton kernel of the ELU family, forward and backward: the math and nothing else.

One formula covers ELU, SELU and CELU, the same one as aten's ``elu``:
``scale * x`` where ``x > 0``, else ``scale * alpha * expm1(input_scale * x)``.
The math uses plain ``tl`` operations only, never libdevice, so the very same code
runs compiled on a GPU and under ``TRITON_INTERPRET=1`` on CPU tensors in CI.
"""
import triton
import triton.language as tl

from . import coefficients as C

# The constants, as Triton reads globals (coefficients.py says what each is for).
_LOG2E = tl.constexpr(C.LOG2E)
_LN2_HI_F32, _LN2_LO_F32 = tl.constexpr(C.LN2_HI_F32), tl.constexpr(C.LN2_LO_F32)
_LN2_HI_F64, _LN2_LO_F64 = tl.constexpr(C.LN2_HI_F64), tl.constexpr(C.LN2_LO_F64)
_INV_FACTORIAL = tl.constexpr(C.INV_FACTORIAL)
_TERMS_F64, _TERMS_F32, _TERMS_SHORT = tl.constexpr(C.TERMS_F64), tl.constexpr(C.TERMS_F32), tl.constexpr(C.TERMS_SHORT)
_EXP2_FROM, _TERMS_EXP2 = tl.constexpr(C.EXP2_FROM), tl.constexpr(C.TERMS_EXP2)
_EXPM1_LO_F32, _EXPM1_HI_F32 = tl.constexpr(C.EXPM1_LO_F32), tl.constexpr(C.EXPM1_HI_F32)
_EXPM1_LO_F64, _EXPM1_HI_F64 = tl.constexpr(C.EXPM1_LO_F64), tl.constexpr(C.EXPM1_HI_F64)
_EXP_LO_F32, _EXP_HI_F32 = tl.constexpr(C.EXP_LO_F32), tl.constexpr(C.EXP_HI_F32)
_EXP_LO_F64, _EXP_HI_F64 = tl.constexpr(C.EXP_LO_F64), tl.constexpr(C.EXP_HI_F64)
_EXP_NORMAL_LO, _EXP_NORMAL_HI = tl.constexpr(C.EXP_NORMAL_LO), tl.constexpr(C.EXP_NORMAL_HI)
_MODERATE_LO, _MODERATE_HI = tl.constexpr(2.0**-C.MODERATE), tl.constexpr(2.0**C.MODERATE)
_TINY = tl.constexpr(C.TINY)
FULL, SHORT, EXP2, NORMAL = tl.constexpr(C.FULL), tl.constexpr(C.SHORT), tl.constexpr(C.EXP2), tl.constexpr(C.NORMAL)


@triton.jit
def _pow2(k):
    # 2**k for an integral k whose result is a normal number, built from its bits.
    if k.dtype == tl.float64:
        return ((k.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)
    else:
        return ((k.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _c(v: tl.constexpr, like):
    # The constant v in like's dtype: tl.fma, unlike * and +, would take a Python float as float32.
    return tl.full([], v, like.dtype)


@triton.jit
def _horner(r, FIRST: tl.constexpr, TERMS: tl.constexpr):
    # sum of INV_FACTORIAL[FIRST + j] * r**j over TERMS terms, one FMA a term.
    q = tl.zeros_like(r) + _INV_FACTORIAL[FIRST + TERMS - 1]
    for j in tl.static_range(TERMS - 2, -1, -1):
        q = tl.fma(q, r, _c(_INV_FACTORIAL[FIRST + j], r))
    return q


@triton.jit
def _reduce(t, MODE: tl.constexpr):
    # t = k*ln2 + r with |r| <= ln2/2; returns k and expm1(r) = r + r*r*Q(r), from which callers
    # build exp or expm1.
    k = tl.floor(tl.fma(t, _c(_LOG2E, t), _c(0.5, t)))
    if t.dtype == tl.float64:
        r = tl.fma(-k, _c(_LN2_LO_F64, t), tl.fma(-k, _c(_LN2_HI_F64, t), t))
        q = _horner(r, 1, _TERMS_F64)
    else:
        r = tl.fma(-k, _c(_LN2_LO_F32, t), tl.fma(-k, _c(_LN2_HI_F32, t), t))
        q = _horner(r, 1, _TERMS_SHORT if MODE == SHORT else _TERMS_F32)
    return k, tl.fma(r * r, q, r)


@triton.jit
def _clamp(t, lo, hi):
    # tl.where, unlike tl.minimum/maximum, lets NaN through untouched.
    t = tl.where(t < lo, lo, t)
    return tl.where(t > hi, hi, t)


@triton.jit
def expm1(t, MODE: tl.constexpr = FULL):
    """expm1 of a float32 or float64 tensor, to about one ulp for every input (MODE SHORT or EXP2:
    accurate enough for a float32 result that is rounded to float16 or bfloat16; NORMAL: SHORT
    for float32 t <= 0 at least 2**-100 away from 0)."""
    if MODE == NORMAL:
        # k <= 0 here, so 2**k - 1 needs no halving, and t is never tiny (coefficients.NORMAL)
        k, p = _reduce(tl.where(t < _EXPM1_LO_F32, _EXPM1_LO_F32, t), SHORT)
        e = _pow2(k)
        return tl.fma(e, p, e - 1.0)
    if MODE == EXP2:
        return tl.where(tl.abs(t) < _EXP2_FROM, t * _horner(t, 0, _TERMS_EXP2), tl.exp2(t * _LOG2E) - 1.0)
    if t.dtype == tl.float64:
        t = _clamp(t, _EXPM1_LO_F64, _EXPM1_HI_F64)
    else:
        t = _clamp(t, _EXPM1_LO_F32, _EXPM1_HI_F32)
    k, p = _reduce(t, MODE)
    h = _pow2(k - 1.0)
    # expm1(t) = 2**k * p + (2**k - 1), written around h = 2**(k-1) so that k = 128 (1024 in
    # float64) still fits and the final doubling overflows to inf exactly when it should.
    # Tiny t is returned as it is: halving p (h = 1/2 at k = 0) would round a subnormal t.
    return tl.where(tl.abs(t) < _TINY, t, 2.0 * tl.fma(h, p, h - 0.5))


@triton.jit
def exp(t, MODE: tl.constexpr = FULL):
    """exp of a float32 or float64 tensor to about one ulp, down into the subnormals (MODE SHORT:
    as for expm1; EXP2 is taken as SHORT, since the hardware's exp2 flushes subnormal results;
    NORMAL: SHORT for float32 t in [EXP_NORMAL_LO, EXP_NORMAL_HI], clamped there)."""
    if MODE == NORMAL:
        k, p = _reduce(_clamp(t, _EXP_NORMAL_LO, _EXP_NORMAL_HI), SHORT)
        e = _pow2(k)
        return tl.fma(e, p, e)
    if t.dtype == tl.float64:
        t = _clamp(t, _EXP_LO_F64, _EXP_HI_F64)
    else:
        t = _clamp(t, _EXP_LO_F32, _EXP_HI_F32)
    k, p = _reduce(t, SHORT if MODE == EXP2 else MODE)
    # 2**k split in two normal factors so that subnormal results are rounded only once.
    k1 = tl.floor(k * 0.5)
    e = _pow2(k - k1)
    return tl.fma(e, p, e) * _pow2(k1)


@triton.jit
def _elu_block(out_ptr, x_ptr, g_ptr, offs, mask, poscoef, negcoef, negiptcoef,
               BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr, NORMAL_EXP: tl.constexpr):
    x = tl.load(x_ptr + offs, mask=mask).to(poscoef.dtype)
    # The math the result's dtype needs (coefficients.py).
    out_type: tl.constexpr = out_ptr.dtype.element_ty
    if BACKWARD:  # bfloat16 gradients keep the series: the hardware's exp2 flushes subnormal results
        mode: tl.constexpr = NORMAL if NORMAL_EXP else SHORT if out_type.primitive_bitwidth == 16 else FULL
    else:
        mode: tl.constexpr = EXP2 if out_type == tl.bfloat16 else SHORT if out_type == tl.float16 else FULL
    # The branch conditions are aten's CUDA kernel's: forward x > 0, backward x <= 0. They differ
    # for NaN only: a NaN input gives a NaN output but the gradient grad * scale, as in PyTorch.
    if BACKWARD:
        g = tl.load(g_ptr + offs, mask=mask).to(poscoef.dtype)
        if IS_RESULT:
            y = tl.where(x <= 0, g * negiptcoef * (x + negcoef), g * poscoef)
        else:
            y = tl.where(x <= 0, g * negiptcoef * negcoef * exp(x * negiptcoef, mode), g * poscoef)
    elif NORMAL_EXP:  # x = +-0 taken by the first branch: the same signed zero (coefficients.NORMAL)
        y = tl.where(x >= 0, x * poscoef, expm1(x * negiptcoef, NORMAL) * negcoef)
    else:
        y = tl.where(x > 0, x * poscoef, expm1(x * negiptcoef, mode) * negcoef)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["n"])
def elu_kernel(out_ptr, x_ptr, g_ptr, n, negcoef: tl.float64, scale: tl.float64, input_scale: tl.float64,
               BLOCK: tl.constexpr, BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr, INT64: tl.constexpr):
    """out = elu(x) over n contiguous elements, or, with BACKWARD, out = elu_backward(g, x).

    x is the input, or with IS_RESULT the saved forward result. negcoef is alpha * scale as aten
    forms it (csrc/fastelu.cpp's negcoef says why it comes formed). Scalars come in as float64 so
    that float64 tensors lose nothing.
    """
    # aten's opmath: half types are computed in float32 and rounded once, float64 stays float64;
    # the coefficients are rounded to that type. (Multiplying by a float64 one, rather than
    # casting, keeps the interpreter, which passes scalars as Python floats, from rounding them
    # to float32.)
    one = tl.full([], 1.0, tl.float64)
    if x_ptr.dtype.element_ty == tl.float64:
        poscoef = scale * one
        negiptcoef = input_scale * one
        negcoef = negcoef * one
    else:
        poscoef = (scale * one).to(tl.float32)
        negiptcoef = (input_scale * one).to(tl.float32)
        negcoef = (negcoef * one).to(tl.float32)
    pid = tl.program_id(0)
    if INT64:
        pid = pid.to(tl.int64)
    start = pid * BLOCK
    offs = start + tl.arange(0, BLOCK)
    # float16 results and gradients from the input, with moderate coefficients (positive ones for
    # the forward), take the cheaper math (coefficients.NORMAL); the test is on scalars, one branch
    # for the whole program.
    fast = False
    if not IS_RESULT and out_ptr.dtype.element_ty == tl.float16:
        if BACKWARD:
            fast = _moderate(tl.abs(negcoef)) & _moderate(tl.abs(negiptcoef))
        else:
            fast = _moderate(negcoef) & _moderate(negiptcoef) & (poscoef > 0)
    if fast:
        _elu_blocks(out_ptr, x_ptr, g_ptr, n, start, offs, poscoef, negcoef, negiptcoef, BLOCK, BACKWARD,
                    IS_RESULT, True)
    else:
        _elu_blocks(out_ptr, x_ptr, g_ptr, n, start, offs, poscoef, negcoef, negiptcoef, BLOCK, BACKWARD,
                    IS_RESULT, False)


@triton.jit
def _moderate(c):
    return (c >= _MODERATE_LO) & (c <= _MODERATE_HI)


@triton.jit
def _elu_blocks(out_ptr, x_ptr, g_ptr, n, start, offs, poscoef, negcoef, negiptcoef, BLOCK: tl.constexpr,
                BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr, NORMAL_EXP: tl.constexpr):
    # Full blocks run unmasked, so their loads and stores stay 16-byte vectors whatever n is.
    if start + BLOCK <= n:
        _elu_block(out_ptr, x_ptr, g_ptr, offs, None, poscoef, negcoef, negiptcoef, BACKWARD, IS_RESULT, NORMAL_EXP)
    else:
        _elu_block(out_ptr, x_ptr, g_ptr, offs, offs < n, poscoef, negcoef, negiptcoef, BACKWARD, IS_RESULT,
                   NORMAL_EXP)
