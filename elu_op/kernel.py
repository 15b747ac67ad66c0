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

_runtime = knobs.runtime

# Largest element count whose offsets (plus one block of slack) stay in int32.
INT32_SAFE = 2**31 - 1


@triton.jit
def _pow2(k):
    # 2**k for an integral k whose result is a normal number, built from its bits.
    if k.dtype == tl.float64:
        return ((k.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)
    else:
        return ((k.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _expm1_small(r, SHORT: tl.constexpr):
    # expm1 for |r| <= ln2/2 as r + r*r*Q(r), Q the Taylor series of (expm1(r) - r) / r**2 in
    # Horner form: one FMA per term, and the exact leading r keeps rounding on a correction below
    # 0.2*|r|. Degree 9 leaves 3e-11 relative truncation error in float32, degree 14 3e-19 in
    # float64. SHORT (a float32 result headed for a 16-bit tensor) takes degree 7: 1.5e-8, far
    # below a 16-bit half ulp; rounded to fp16 and bf16 it equalled aten's on 4M random inputs,
    # and the two FMAs it saves show there, where 2 bytes per element bring the kernel near the
    # H100's float32 issue rate (benchmarks/results/).
    if SHORT:
        q = r * 0.0001984126984126984 + 0.001388888888888889
    else:
        if r.dtype == tl.float64:
            q = 1.1470745597729725e-11
            q = q * r + 1.6059043836821613e-10
            q = q * r + 2.08767569878681e-09
            q = q * r + 2.505210838544172e-08
            q = q * r + 2.755731922398589e-07
            q = q * r + 2.7557319223985893e-06
            q = q * r + 2.48015873015873e-05
        else:
            q = r * 2.7557319223985893e-06 + 2.48015873015873e-05
        q = q * r + 0.0001984126984126984
        q = q * r + 0.001388888888888889
    q = q * r + 0.008333333333333333
    q = q * r + 0.041666666666666664
    q = q * r + 0.16666666666666666
    q = q * r + 0.5
    return r + (r * r) * q


@triton.jit
def _reduce(t, SHORT: tl.constexpr):
    # t = k*ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split so that k*LN2_HI is exact).
    # Returns k and expm1(r); callers rebuild exp or expm1 from them.
    k = tl.floor(t * 1.4426950408889634 + 0.5)
    if t.dtype == tl.float64:
        r = (t - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    else:
        r = (t - k * 0.693145751953125) - k * 1.428606765330187e-06
    return k, _expm1_small(r, SHORT)


@triton.jit
def _clamp(t, lo, hi):
    # tl.where, unlike tl.minimum/maximum, lets NaN through untouched.
    t = tl.where(t < lo, lo, t)
    return tl.where(t > hi, hi, t)


@triton.jit
def expm1(t, SHORT: tl.constexpr = False):
    """expm1 of a float32 or float64 tensor, accurate to about one ulp for every input (SHORT,
    for a float32 result to be rounded to 16 bits, adds up to a quarter ulp)."""
    # Below LO the result is -1 to the last bit; above HI it is +inf. The bounds keep 2**(k-1) normal.
    if t.dtype == tl.float64:
        t = _clamp(t, -60.0, 709.9)
    else:
        t = _clamp(t, -30.0, 89.0)
    k, p = _reduce(t, SHORT)
    h = _pow2(k - 1.0)
    # expm1(t) = 2**k * p + (2**k - 1), written around h = 2**(k-1) so that k = 128 (1024 in
    # float64) still fits and the final doubling overflows to inf exactly when it should.
    # Below 2**-100, expm1(t) rounds to t itself; returning t keeps subnormal t exact, which
    # halving p (h = 1/2 at k = 0) would not.
    return tl.where(tl.abs(t) < 7.888609052210118e-31, t, 2.0 * (h * p + (h - 0.5)))


@triton.jit
def exp(t, SHORT: tl.constexpr = False):
    """exp of a float32 or float64 tensor to about one ulp, down into the subnormals (SHORT: as
    for expm1)."""
    if t.dtype == tl.float64:
        t = _clamp(t, -746.0, 709.9)
    else:
        t = _clamp(t, -104.0, 89.0)
    k, p = _reduce(t, SHORT)
    # 2**k split in two normal factors so that subnormal results are rounded only once.
    k1 = tl.floor(k * 0.5)
    e = _pow2(k - k1)
    return (e * p + e) * _pow2(k1)


@triton.jit
def _elu_block(out_ptr, x_ptr, g_ptr, offs, mask, poscoef, negcoef, negiptcoef,
               BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr):
    x = tl.load(x_ptr + offs, mask=mask).to(poscoef.dtype)
    short = out_ptr.dtype.element_ty.primitive_bitwidth == 16  # see _expm1_small
    # The branch conditions are aten's CUDA kernel's: forward x > 0, backward x <= 0. They differ
    # for NaN only: a NaN input gives a NaN output but the gradient grad * scale, as in PyTorch.
    if BACKWARD:
        g = tl.load(g_ptr + offs, mask=mask).to(poscoef.dtype)
        if IS_RESULT:
            y = tl.where(x <= 0, g * negiptcoef * (x + negcoef), g * poscoef)
        else:
            y = tl.where(x <= 0, g * negiptcoef * negcoef * exp(x * negiptcoef, short), g * poscoef)
    else:
        y = tl.where(x > 0, x * poscoef, expm1(x * negiptcoef, short) * negcoef)
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
