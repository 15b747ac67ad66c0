"""The numbers of fastelu's expm1 and exp, in one place for the two implementations of the math:
the Triton kernel (kernel.py) and the Inductor lowering (lowering.py). tests/test_lowering.py feeds
both the same inputs and compares their results bit for bit.

Every mode starts from the argument reduction t = k*ln2 + r, |r| <= ln2/2: adding MAGIC (1.5 times
2**mantissa bits) to t*log2e rounds it to the integer k and leaves k in the sum's low bits, from
which 2**k is built with integer operations (no float rounding or conversion instructions, which
issue at a quarter of the FMA rate); then expm1(r) = r + r*r*Q(r) in Horner form (one FMA a term;
the exact leading r keeps rounding on a correction below 0.2*|r|).

How much math a result needs depends on the dtype it is rounded to:
- float64 and float32 results: ln2 split in two (Cody-Waite), Q the Taylor series of
  (expm1(r) - r) / r**2: 13 terms leave 3e-19 relative truncation error (float64), 8 terms 3e-11
  (float32).
- float16 results and all 16-bit gradients (SHORT): Q_SHORT, a minimax polynomial of 5 terms (its
  float32 coefficients fitted one by one): 1.4e-8 relative error, far below a 16-bit half ulp.
- bfloat16 results (EXP2): exp2(t * log2(e)) - 1 from the hardware's ex2 where |t| >= EXP2_FROM,
  and below it, without reduction, r * P(r), P the series of expm1(r) / r (a product keeps the sign
  of -0 and subnormals exact, which r + r*r*Q(r) would not without one more select). Both stay under
  6e-7 relative error, and over every bfloat16 input the exact result lies at least 1.1e-6
  (relative) from a rounding midpoint (tests/test_exhaustive.py), so the rounded result is the
  correctly rounded one. float16's exact results come within 4e-8 of a midpoint, which this path's
  error would cross: float16 keeps SHORT.
- NORMAL, float16 only, where alpha*scale and input_scale lie within 2**+-MODERATE (and for the
  forward are positive, as is scale): the guards for extreme values are left out where they cannot
  change a float16 result, and the tests on every float16 input (tests/test_exhaustive.py) hold.
  The launch decides, once a call (csrc/launch.cpp's normal_math, which the lowering asks too).
  Four to five fewer instructions an element than SHORT, on kernels that are compute-bound on the
  fastest memory (benchmarks/studies/instruction_count.py).
  - Gradients from the input: SHORT's exp with 2**k in one factor rather than two (the guard for
    subnormal results), t clamped to [EXP_NORMAL_LO, EXP_NORMAL_HI]. Where the clamp acts, the
    exact gradient rounds to +-0 (below: |grad| <= 65504 times coefficients under 2**80 times
    exp(-87) is under 2**-29) or overflows float16 (above: any nonzero gradient), as the clamped
    one does: results are SHORT's bit for bit.
  - Results: the x > 0 branch takes x = +-0 too (x * scale is then the same signed zero as
    alpha*scale*expm1(+-0)), so every t that reaches expm1 is negative and, x being a float16 and
    input_scale at least 2**-MODERATE, at least 2**-64 in size: no TINY select and no upper clamp.
    Then k <= 0, and k*ln2 needs no split: ln2's float32 error, 1.9e-9*|k| in r, moves
    2**k*exp(r) by less than 5e-9 of expm1(t) (most at k = -1, where |expm1(t)| >= 0.29). And
    alpha*scale*2**k is formed exactly by adding k to the coefficient's exponent (k >= -44, the
    coefficient at least 2**-40: a normal number), which saves the product by alpha*scale:
    alpha*scale*expm1(t) = c*2**k*expm1(r) + (c*2**k - c), c = alpha*scale.
"""
import math

LOG2E, LN2 = 1.4426950408889634, 0.6931471805599453
# t*log2e + MAGIC, rounded, holds round(t*log2e) in its low bits (for |t*log2e| < 2**22, 2**51)
MAGIC_F32, MAGIC_F64 = 1.5 * 2.0**23, 1.5 * 2.0**52
# ln2 split in two (Cody-Waite) so that k * LN2_HI is exact for every k that occurs.
LN2_HI_F32, LN2_LO_F32 = 0.693145751953125, 1.428606765330187e-06
LN2_HI_F64, LN2_LO_F64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
# Polynomials, lowest degree first. Taylor: Q's terms are 1/(j+2)!, P's (EXP2) 1/(j+1)!.
_INV_FACTORIAL = tuple(1.0 / math.factorial(j + 1) for j in range(14))
Q_F64, Q_F32 = _INV_FACTORIAL[1:14], _INV_FACTORIAL[1:9]
# minimax for |r| <= ln2/2, each coefficient a float32
Q_SHORT = (0.4999999701976776, 0.1666654646396637, 0.04166743904352188, 0.008366256020963192,
           0.0013870217371731997)
# EXP2: the series (no reduction: 3.6e-7 truncation at |t| = EXP2_FROM) below EXP2_FROM, where
# exp2(t*log2e) - 1 would lose relative accuracy to cancellation (5.7e-7 at EXP2_FROM).
EXP2_FROM, P_EXP2 = 0.35, _INV_FACTORIAL[:6]
# Clamps that keep 2**(k-1) (for exp, 2**(k/2)) a normal number: below the low bound expm1 is -1
# and exp rounds to 0, above the high one both overflow to inf.
EXPM1_LO_F32, EXPM1_HI_F32, EXPM1_LO_F64, EXPM1_HI_F64 = -30.0, 89.0, -60.0, 709.9
EXP_LO_F32, EXP_HI_F32, EXP_LO_F64, EXP_HI_F64 = -104.0, 89.0, -746.0, 709.9
EXP_NORMAL_LO, EXP_NORMAL_HI, MODERATE = -87.0, 88.0, 40
# Below 2**-100 expm1(t) rounds to t itself: returning t keeps subnormal t exact.
TINY = 2.0**-100
# Result modes of the math, chosen by the result's dtype (and for NORMAL, the coefficients).
FULL, SHORT, EXP2, NORMAL = 0, 1, 2, 3


# The constants of torch.nn.functional.selu (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
