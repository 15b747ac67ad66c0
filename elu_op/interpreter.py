"""Triton's CPU interpreter made to round as a GPU does while fastelu's kernel runs in it
(launch.py), so that its results on the CPU are the GPU's, to the last bit.

Two conversions and one operation differ from the hardware's, depending on the triton release:
- float32 to bfloat16 truncates (GPUs round to nearest even), and bfloat16 to float32 flushes
  subnormals: left alone, a quarter of bfloat16 ELU results were one ulp off and subnormal inputs
  came out as zero;
- tl.fma multiplies and then adds, rounding twice, before triton 3.9 (an FMA rounds once).
"""
import contextlib

import numpy as np
import torch


def _two_sum(a, b):
    """s, e with s = a + b rounded and s + e = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_product(a, b):
    """p, e with p = a * b rounded and p + e = a * b exactly (Dekker, by Veltkamp's split)."""
    def split(v):
        t = v * 134217729.0  # 2**27 + 1
        hi = t - (t - v)
        return hi, v - hi
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _add_round_to_odd(a, b):
    """a + b in float64, rounded to odd: rounding that once more to a narrower format is correct."""
    s, e = _two_sum(a, b)
    even = (s.view(np.int64) & 1) == 0
    inexact = (e != 0) & np.isfinite(s) & even
    return np.where(inexact, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)


def fma(x, y, z):
    """x * y + z rounded once, for float64, float32 and float16 numpy arrays."""
    with np.errstate(all="ignore"):  # infinities and NaN go through, as on the hardware
        return _fma(x, y, z)


def _fma(x, y, z):
    if z.dtype == np.float64:
        # Boldo and Melquiond's emulated FMA: exact product, exact sum with z's high part, and the
        # two small parts added with rounding to odd before the last rounding.
        uh, ul = _two_product(x, y)
        th, tl = _two_sum(z, uh)
        out = th + _add_round_to_odd(tl, ul)
        plain = x * y + z  # infinities and NaN, where the error terms are meaningless
        return np.where(np.isfinite(out) & np.isfinite(plain), out, plain)
    # float32 (and narrower) products are exact in float64; one addition rounded to odd, then to z's type.
    wide = [v.astype(np.float64) for v in (x, y, z)]
    return _add_round_to_odd(wide[0] * wide[1], wide[2]).astype(z.dtype)


def _faithful_methods(cast):
    """InterpreterBuilder's cast_impl and create_fma as the GPU rounds, given its own cast_impl."""
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    def cast_impl(self, src, dst_type):
        if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
            rounded = torch.from_numpy(np.ascontiguousarray(src.data)).to(torch.bfloat16)
            return TensorHandle(rounded.view(torch.int16).numpy().view(np.uint16), dst_type.scalar)
        if src.dtype.scalar == tl.bfloat16 and dst_type.scalar == tl.float32:  # exact: the same bits, widened
            return TensorHandle((src.data.astype(np.uint32) << 16).view(np.float32), dst_type.scalar)
        return cast(self, src, dst_type)

    def create_fma(self, x, y, z):
        out = fma(*np.broadcast_arrays(x.data, y.data, z.data))
        return TensorHandle(out.astype(z.data.dtype), z.dtype.scalar)

    return {"cast_impl": cast_impl, "create_fma": create_fma}


@contextlib.contextmanager
def faithful():
    """The interpreter rounding as the GPU does, for the duration; then as it was, so that other
    Triton code in the process keeps the interpreter it expects. launch.py holds its lock around
    this (the interpreter runs one launch at a time anyway). NumPy's overflow and invalid-value
    warnings are off meanwhile: infinities and NaN are ELU's inputs and results, and the GPU
    computes them without a word."""
    from triton.runtime.interpreter import InterpreterBuilder

    saved = {name: getattr(InterpreterBuilder, name) for name in ("cast_impl", "create_fma")}
    for name, method in _faithful_methods(saved["cast_impl"]).items():
        setattr(InterpreterBuilder, name, method)
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        for name, method in saved.items():
            setattr(InterpreterBuilder, name, method)
