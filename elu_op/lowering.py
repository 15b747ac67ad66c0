"""fastelu's math inside torch.compile: Inductor lowerings of the ops.

Registered (inductor.py), each fastelu op is an ordinary pointwise node for Inductor: it fuses with
its neighbours, forward and backward, and its inner function computes the Triton kernel's math
(kernel.py; the numbers in coefficients.py, the choice of math in kernel.math_mode), written in
Inductor's pointwise ``ops``, float64 included: its results stay within an ulp (Inductor's own CPU
expm1 for float64 is exp() - 1, which loses all relative accuracy near zero).
"""
import math
import struct

import torch

from . import build
from . import coefficients as C


# ---- the math, in Inductor's ops (kernel.py's, operation for operation) ---------------------

def _math(ops, ct):
    """expm1, scaled_expm1 and exp for values of the compute type ct (float32 or float64), as
    kernel.expm1, kernel.scaled_expm1 and kernel.exp compute them."""
    f64 = ct == torch.float64
    it, bias, shift = (torch.int64, 1023, 52) if f64 else (torch.int32, 127, 23)
    magic = C.MAGIC_F64 if f64 else C.MAGIC_F32
    ln2_hi, ln2_lo = (C.LN2_HI_F64, C.LN2_LO_F64) if f64 else (C.LN2_HI_F32, C.LN2_LO_F32)
    expm1_range = (C.EXPM1_LO_F64, C.EXPM1_HI_F64) if f64 else (C.EXPM1_LO_F32, C.EXPM1_HI_F32)
    exp_range = (C.EXP_LO_F64, C.EXP_HI_F64) if f64 else (C.EXP_LO_F32, C.EXP_HI_F32)

    def c(v, dtype=ct):
        return ops.constant(v, dtype)

    def horner(r, coefs):
        q = c(coefs[-1])
        for v in reversed(coefs[:-1]):
            q = ops.fma(q, r, c(v))
        return q

    def reduce(t, mode, one_ln2=False):
        kf = ops.fma(t, c(C.LOG2E), c(magic))
        k = ops.sub(kf, c(magic))
        if one_ln2:
            r = ops.fma(k, c(-C.LN2), t)
        else:
            r = ops.fma(k, c(-ln2_lo), ops.fma(k, c(-ln2_hi), t))
        q = horner(r, C.Q_F64 if f64 else C.Q_F32 if mode == C.FULL else C.Q_SHORT)
        return ops.to_dtype_bitcast(kf, it, ct), ops.fma(ops.mul(r, r), q, r)

    def clamp(t, lo, hi):
        t = ops.where(ops.lt(t, c(lo)), c(lo), t)
        return ops.where(ops.gt(t, c(hi)), c(hi), t)

    def pow2(n):
        return ops.to_dtype_bitcast(ops.bitwise_left_shift(ops.add(n, c(bias, it)), c(shift, it)), ct, it)

    def expm1(t, mode):
        if mode == C.EXP2:
            small = ops.mul(t, horner(t, C.P_EXP2))
            big = ops.sub(ops.exp2(ops.mul(t, c(C.LOG2E))), c(1.0))
            return ops.where(ops.lt(ops.abs(t), c(C.EXP2_FROM)), small, big)
        t = clamp(t, *expm1_range)
        kb, p = reduce(t, mode)
        h = pow2(ops.sub(kb, c(1, it)))
        full = ops.mul(c(2.0), ops.fma(h, p, ops.sub(h, c(0.5))))
        return ops.where(ops.lt(ops.abs(t), c(C.TINY)), t, full)

    def scaled_expm1(t, coef):
        kb, p = reduce(ops.where(ops.lt(t, c(C.EXPM1_LO_F32)), c(C.EXPM1_LO_F32), t), C.SHORT, one_ln2=True)
        coef_bits = struct.unpack("<i", struct.pack("<f", coef))[0]
        e = ops.to_dtype_bitcast(ops.add(ops.bitwise_left_shift(kb, c(23, it)), c(coef_bits, it)), ct, it)
        return ops.fma(e, p, ops.sub(e, c(coef)))

    def exp(t, mode):
        if mode == C.NORMAL:
            kb, p = reduce(clamp(t, C.EXP_NORMAL_LO, C.EXP_NORMAL_HI), C.SHORT)
            e = pow2(kb)
            return ops.fma(e, p, e)
        t = clamp(t, *exp_range)
        kb, p = reduce(t, C.SHORT if mode == C.EXP2 else mode)
        h = ops.bitwise_right_shift(kb, c(1, it))
        e = pow2(ops.sub(kb, h))
        return ops.mul(ops.fma(e, p, e), pow2(h))

    return expm1, scaled_expm1, exp


def _coefs(dtype, backward, is_result, alpha, scale, input_scale):
    """(compute dtype, poscoef, negcoef, negiptcoef, mode) as the kernel's launch forms them (aten's
    opmath; the C++ decides float16's NORMAL math, kernel.math_mode the rest)."""
    from .kernel import math_mode
    normal = build.C.normal(dtype == torch.float16, backward, is_result, alpha, scale, input_scale)
    mode = math_mode(torch.finfo(dtype).bits, dtype == torch.bfloat16, backward, normal)
    if dtype == torch.float64:
        return torch.float64, scale, build.C.negcoef(alpha, scale, True), input_scale, mode
    return torch.float32, _float32(scale), build.C.negcoef(alpha, scale, False), _float32(input_scale), mode


def _float32(v):
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:  # finite doubles past float32's range round to inf
        return math.copysign(math.inf, v)


def _elu_fn(dtype, alpha, scale, input_scale):
    from torch._inductor.virtualized import ops
    ct, pos, neg, ipt, mode = _coefs(dtype, False, False, alpha, scale, input_scale)
    expm1, scaled_expm1, _ = _math(ops, ct)

    def fn(x):
        x = ops.to_dtype(x, ct)
        t = ops.mul(x, ops.constant(ipt, ct))
        if mode == C.NORMAL:  # which takes x = +-0 in the first branch
            positive, negative = ops.ge(x, ops.constant(0.0, ct)), scaled_expm1(t, neg)
        else:
            positive, negative = ops.gt(x, ops.constant(0.0, ct)), ops.mul(expm1(t, mode), ops.constant(neg, ct))
        y = ops.where(positive, ops.mul(x, ops.constant(pos, ct)), negative)
        return ops.to_dtype(y, dtype)
    return fn


def _elu_backward_fn(dtype, alpha, scale, input_scale, is_result):
    from torch._inductor.virtualized import ops
    ct, pos, neg, ipt, mode = _coefs(dtype, True, is_result, alpha, scale, input_scale)
    exp = _math(ops, ct)[2]

    def fn(g, x):
        g, x = ops.to_dtype(g, ct), ops.to_dtype(x, ct)
        gi = ops.mul(g, ops.constant(ipt, ct))
        if is_result:
            negative = ops.mul(gi, ops.add(x, ops.constant(neg, ct)))
        else:
            t = ops.mul(x, ops.constant(ipt, ct))
            e = exp(t, mode)
            negative = ops.mul(ops.mul(gi, ops.constant(neg, ct)), e)
        y = ops.where(ops.le(x, ops.constant(0.0, ct)), negative, ops.mul(g, ops.constant(pos, ct)))
        return ops.to_dtype(y, dtype)
    return fn


# ---- the lowerings ------------------------------------------------------------------------------

def lower_elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    from torch._inductor.lowering import make_pointwise
    return make_pointwise(_elu_fn(x.get_dtype(), alpha, scale, input_scale))(x)


def lower_elu_inplace(x, alpha=1.0, scale=1.0, input_scale=1.0):
    from torch._inductor.lowering import mutate_to
    mutate_to(x, lower_elu(x, alpha, scale, input_scale))


def lower_elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    from torch._inductor.lowering import make_pointwise
    fn = _elu_backward_fn(self_or_result.get_dtype(), alpha, scale, input_scale, is_result)
    return make_pointwise(fn)(grad_output, self_or_result)
