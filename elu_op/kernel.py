"""The Triton kernel of the ELU family (forward and backward) and its launcher.

One formula covers ELU, SELU and CELU, the same one as aten's ``elu``:
``scale * x`` where ``x > 0``, else ``scale * alpha * expm1(input_scale * x)``.
The math uses plain ``tl`` operations only, never libdevice, so the very same code
runs compiled on a GPU and under ``TRITON_INTERPRET=1`` on CPU tensors in CI.
"""
import functools
import math
import struct

import torch
import triton
import triton.language as tl
from triton import knobs

from . import coefficients as C

_runtime = knobs.runtime

# Largest element count whose offsets (plus one block of slack) stay in int32.
INT32_SAFE = 2**31 - 1


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
_TINY = tl.constexpr(C.TINY)
FULL, SHORT, EXP2 = tl.constexpr(C.FULL), tl.constexpr(C.SHORT), tl.constexpr(C.EXP2)


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
    accurate enough for a float32 result that is rounded to float16 or bfloat16)."""
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
    as for expm1; EXP2 is taken as SHORT, since the hardware's exp2 flushes subnormal results)."""
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
               BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr):
    x = tl.load(x_ptr + offs, mask=mask).to(poscoef.dtype)
    # The math the result's dtype needs (coefficients.py).
    out_type: tl.constexpr = out_ptr.dtype.element_ty
    if BACKWARD:  # bfloat16 gradients keep the series: the hardware's exp2 flushes subnormal results
        mode: tl.constexpr = SHORT if out_type.primitive_bitwidth == 16 else FULL
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
    else:
        y = tl.where(x > 0, x * poscoef, expm1(x * negiptcoef, mode) * negcoef)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["n"])
def elu_kernel(out_ptr, x_ptr, g_ptr, n, negcoef: tl.float64, scale: tl.float64, input_scale: tl.float64,
               BLOCK: tl.constexpr, BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr, INT64: tl.constexpr):
    """out = elu(x) over n contiguous elements, or, with BACKWARD, out = elu_backward(g, x).

    x is the input, or with IS_RESULT the saved forward result. negcoef is alpha * scale as aten
    forms it (see negcoef() below). Scalars come in as float64 so that float64 tensors lose nothing.
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
    # Full blocks run unmasked, so their loads and stores stay 16-byte vectors whatever n is.
    if start + BLOCK <= n:
        _elu_block(out_ptr, x_ptr, g_ptr, offs, None, poscoef, negcoef, negiptcoef, BACKWARD, IS_RESULT)
    else:
        _elu_block(out_ptr, x_ptr, g_ptr, offs, offs < n, poscoef, negcoef, negiptcoef, BACKWARD, IS_RESULT)


@functools.lru_cache(maxsize=256)
def negcoef(alpha, scale, float64):
    """alpha * scale as aten forms it: in float64 for float64 tensors, else as a float32 product of
    the float32-rounded coefficients. Formed here rather than in the kernel, where the compiler
    may fuse the product into an FMA with the result + alpha*scale of the gradient from the
    result, skipping the rounding that aten's value has; that sum cancels as x -> -inf, and the
    difference showed there as ulps by the trillion."""
    if float64:
        return alpha * scale
    return _float32(_float32(alpha) * _float32(scale))  # exact in double, then rounded once


def _float32(v):
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:  # finite doubles past float32's range round to inf
        return math.copysign(math.inf, v)


def width(n, block):
    """How the kernel addresses n elements in blocks of block: 0 with int32 offsets, 1 with int64
    offsets and a 32-bit n, 2 with a 64-bit n (Triton types an n past int32 as i64: another
    compiled kernel)."""
    return 0 if n <= INT32_SAFE - block else 1 if n <= INT32_SAFE else 2


# Compiled kernels by everything the launch specialises on, so that repeated calls skip Triton's
# argument binding and cache lookup. Only used for 16-byte aligned pointers; anything else takes
# Triton's ordinary path, which specialises on alignment itself.
_compiled = {}


def launch(out, x, g, n, alpha, scale, input_scale, is_result, block, num_warps, device):
    """Run elu_kernel over the first n elements of the flat, equally laid out out, x and g, through
    Triton's launcher; return the compiled kernel where the C++ may launch it (aligned CUDA tensors).

    g is None for the forward; out may be x (in place). device is out's CUDA device index, made
    current by the caller, or -1 for CPU tensors under the interpreter.
    """
    coef = negcoef(alpha, scale, out.dtype is torch.float64)  # the kernel takes alpha * scale
    backward = g is not None
    grid = (n + block - 1) // block
    wide = width(n, block)
    int64 = wide > 0
    compiled = None
    if device >= 0:
        out_ptr, x_ptr = out.data_ptr(), x.data_ptr()
        g_ptr = g.data_ptr() if backward else x_ptr
        aligned = (out_ptr | x_ptr | g_ptr) % 16 == 0
        key = (device, out.dtype, block, num_warps, backward, is_result, wide)
        compiled = _compiled.get(key) if aligned else None
    if compiled is None:
        # FMA contraction asked for by name: the polynomials are written for one FMA per term,
        # and Triton 3.10 turns it off by default.
        compiled = elu_kernel[(grid,)](out, x, g if backward else x, n, coef, scale, input_scale, block,
                                       backward, is_result, int64, num_warps=num_warps, enable_fp_fusion=True)
        if device >= 0 and aligned:
            _compiled[key] = compiled
            return compiled
        return None
    # Triton's launcher, as JITFunction.run calls it: it reports the launch to profiler hooks,
    # makes a CUDA context current in a thread that has none yet, and raises the driver's error
    # if the launch fails. The pointers go in as integers, which it takes as they are (for a
    # tensor it would ask the driver about them).
    stream = torch._C._cuda_getCurrentRawStream(device)
    enter, leave = _runtime.launch_enter_hook, _runtime.launch_exit_hook
    args = (out_ptr, x_ptr, g_ptr, n, coef, scale, input_scale, block, backward, is_result, int64)
    if enter.calls or leave.calls:
        compiled.run(grid, 1, 1, stream, compiled.function, compiled.packed_metadata,
                     compiled.launch_metadata((grid, 1, 1), stream, *args), enter, leave, *args)
    else:
        compiled.run(grid, 1, 1, stream, compiled.function, compiled.packed_metadata, None, None, None, *args)
    return compiled
