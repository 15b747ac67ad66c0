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
_LOG2E, _LN2 = tl.constexpr(C.LOG2E), tl.constexpr(C.LN2)
_MAGIC_F32, _MAGIC_F64 = tl.constexpr(C.MAGIC_F32), tl.constexpr(C.MAGIC_F64)
_LN2_HI_F32, _LN2_LO_F32 = tl.constexpr(C.LN2_HI_F32), tl.constexpr(C.LN2_LO_F32)
_LN2_HI_F64, _LN2_LO_F64 = tl.constexpr(C.LN2_HI_F64), tl.constexpr(C.LN2_LO_F64)
_Q_F64, _Q_F32, _Q_SHORT = tl.constexpr(C.Q_F64), tl.constexpr(C.Q_F32), tl.constexpr(C.Q_SHORT)
_EXP2_FROM, _P_EXP2 = tl.constexpr(C.EXP2_FROM), tl.constexpr(C.P_EXP2)
_EXPM1_LO_F32, _EXPM1_HI_F32 = tl.constexpr(C.EXPM1_LO_F32), tl.constexpr(C.EXPM1_HI_F32)
_EXPM1_LO_F64, _EXPM1_HI_F64 = tl.constexpr(C.EXPM1_LO_F64), tl.constexpr(C.EXPM1_HI_F64)
_EXP_LO_F32, _EXP_HI_F32 = tl.constexpr(C.EXP_LO_F32), tl.constexpr(C.EXP_HI_F32)
_EXP_LO_F64, _EXP_HI_F64 = tl.constexpr(C.EXP_LO_F64), tl.constexpr(C.EXP_HI_F64)
_EXP_NORMAL_LO, _EXP_NORMAL_HI = tl.constexpr(C.EXP_NORMAL_LO), tl.constexpr(C.EXP_NORMAL_HI)
_TINY = tl.constexpr(C.TINY)
FULL, SHORT, EXP2, NORMAL = tl.constexpr(C.FULL), tl.constexpr(C.SHORT), tl.constexpr(C.EXP2), tl.constexpr(C.NORMAL)

# elu_kernel's sizes and strides: their values change from call to call, so they are neither
# specialised on nor let change the compiled kernel (the C++ passes them as 64-bit integers).
LAYOUT = tuple(f"{t}{i}" for t in ("size", "out_s", "x_s", "g_s") for i in range(4))

# elu_kernel's launch parameters, in order: (name, kind, value over flat arrays; None: no default).
# The one declaration of them: the kernel's signature, launch.py's launches and PTX check, the
# C++'s (csrc/fastelu.h's Args and Spec), the KernelBench export and the tests follow it or are
# checked against it (tests/test_params.py). Kinds: "ptr" a tensor, "int" n (32 or 64 bits: Triton
# types it by its value), "f64" and "i64" runtime scalars, "constexpr" a compile-time switch.
PARAMS = (
    ("out_ptr", "ptr", None), ("x_ptr", "ptr", None), ("g_ptr", "ptr", None), ("n", "int", None),
    ("negcoef", "f64", None), ("scale", "f64", 1.0), ("input_scale", "f64", 1.0),
    *((name, "i64", 0) for name in LAYOUT),
    ("BLOCK", "constexpr", None), ("BACKWARD", "constexpr", False), ("IS_RESULT", "constexpr", False),
    ("INT64", "constexpr", False), ("NORMAL_EXP", "constexpr", False), ("UNIT_INPUT", "constexpr", False),
    ("COLS", "constexpr", 0), ("DIMS", "constexpr", 0), ("UNIT", "constexpr", 0), ("ALIGN", "constexpr", 1),
    ("TRANS", "constexpr", 0),
)


def arguments(out, x, g=None, **values):
    """elu_kernel's parameters by name, in PARAMS's order, for a launch over out, x and g (None:
    the forward, which does not read it): `values` by name, the flat arrays' defaults for the rest,
    n from out. One with no default that is not given is left out (an autotuner's BLOCK)."""
    given = dict(out_ptr=out, x_ptr=x, g_ptr=x if g is None else g, n=out.numel(), **values)
    args = {name: given.pop(name, default) for name, _, default in PARAMS}
    if given:
        raise TypeError(f"elu_kernel has no parameters {sorted(given)}")
    return {name: value for name, value in args.items() if value is not None}


def compile_signature(pointer, n="i32"):
    """elu_kernel's signature as triton.compile's ASTSource takes it, for tensors of Triton type
    `pointer` ("*bf16") and an n of type `n`."""
    types = {"ptr": pointer, "int": n, "f64": "fp64", "i64": "i64", "constexpr": "constexpr"}
    return {name: types[kind] for name, kind, _ in PARAMS}


@triton.jit
def _bits(v):
    if v.dtype == tl.float64:
        return v.to(tl.int64, bitcast=True)
    else:
        return v.to(tl.int32, bitcast=True)


@triton.jit
def _pow2(n, like):
    # 2**n in like's dtype, for an integer n whose result is a normal number. Only n's low bits
    # count (the shift drops the rest), so n may carry MAGIC's bits.
    if like.dtype == tl.float64:
        return ((n + 1023) << 52).to(tl.float64, bitcast=True)
    else:
        return ((n + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _c(v: tl.constexpr, like):
    # The constant v in like's dtype: tl.fma, unlike * and +, would take a Python float as float32.
    return tl.full([], v, like.dtype)


@triton.jit
def _horner(r, COEFS: tl.constexpr):
    # sum of COEFS[j] * r**j, one FMA a term.
    q = tl.zeros_like(r) + COEFS[len(COEFS.value) - 1]
    for j in tl.static_range(len(COEFS.value) - 2, -1, -1):
        q = tl.fma(q, r, _c(COEFS[j], r))
    return q


@triton.jit
def _reduce(t, MODE: tl.constexpr, ONE_LN2: tl.constexpr = False):
    # t = k*ln2 + r with |r| <= ln2/2; returns the bits of MAGIC + k, whose low bits are k, and
    # expm1(r) = r + r*r*Q(r), from which callers build exp or expm1. ONE_LN2: k*ln2 in one
    # product (for k <= 0 and float16 results, coefficients.NORMAL).
    if t.dtype == tl.float64:
        kf = tl.fma(t, _c(_LOG2E, t), _c(_MAGIC_F64, t))
        k = kf - _c(_MAGIC_F64, t)
        r = tl.fma(k, _c(-_LN2_LO_F64, t), tl.fma(k, _c(-_LN2_HI_F64, t), t))
        q = _horner(r, _Q_F64)
    else:
        kf = tl.fma(t, _c(_LOG2E, t), _c(_MAGIC_F32, t))
        k = kf - _MAGIC_F32
        if ONE_LN2:
            r = tl.fma(k, _c(-_LN2, t), t)
        else:
            r = tl.fma(k, _c(-_LN2_LO_F32, t), tl.fma(k, _c(-_LN2_HI_F32, t), t))
        q = _horner(r, _Q_F32 if MODE == FULL else _Q_SHORT)
    return _bits(kf), tl.fma(r * r, q, r)


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
        return tl.where(tl.abs(t) < _EXP2_FROM, t * _horner(t, _P_EXP2), tl.exp2(t * _LOG2E) - 1.0)
    if t.dtype == tl.float64:
        t = _clamp(t, _EXPM1_LO_F64, _EXPM1_HI_F64)
    else:
        t = _clamp(t, _EXPM1_LO_F32, _EXPM1_HI_F32)
    kb, p = _reduce(t, MODE)
    h = _pow2(kb - 1, t)
    # expm1(t) = 2**k * p + (2**k - 1), written around h = 2**(k-1) so that k = 128 (1024 in
    # float64) still fits and the final doubling overflows to inf exactly when it should.
    # Tiny t is returned as it is: halving p (h = 1/2 at k = 0) would round a subnormal t.
    return tl.where(tl.abs(t) < _TINY, t, 2.0 * tl.fma(h, p, h - 0.5))


@triton.jit
def scaled_expm1(t, c):
    """c * expm1(t) for float32 t <= 0 and c within 2**+-MODERATE, accurate enough for a float16
    result (coefficients.NORMAL)."""
    kb, p = _reduce(tl.where(t < _EXPM1_LO_F32, _EXPM1_LO_F32, t), SHORT, ONE_LN2=True)
    e = ((kb << 23) + _bits(c)).to(tl.float32, bitcast=True)  # c * 2**k: k added to c's exponent
    return tl.fma(e, p, e - c)


@triton.jit
def exp(t, MODE: tl.constexpr = FULL):
    """exp of a float32 or float64 tensor to about one ulp, down into the subnormals (MODE SHORT:
    as for expm1; EXP2 is taken as SHORT, since the hardware's exp2 flushes subnormal results;
    NORMAL: SHORT for float32 t in [EXP_NORMAL_LO, EXP_NORMAL_HI], clamped there)."""
    if MODE == NORMAL:
        kb, p = _reduce(_clamp(t, _EXP_NORMAL_LO, _EXP_NORMAL_HI), SHORT)
        e = _pow2(kb, t)
        return tl.fma(e, p, e)
    if t.dtype == tl.float64:
        t = _clamp(t, _EXP_LO_F64, _EXP_HI_F64)
    else:
        t = _clamp(t, _EXP_LO_F32, _EXP_HI_F32)
    kb, p = _reduce(t, SHORT if MODE == EXP2 else MODE)
    # 2**k split in two normal factors, 2**(k - k//2) and 2**(k//2), so that subnormal results are
    # rounded only once (MAGIC's bits are even: halving them halves k, rounding down).
    h = kb >> 1
    e = _pow2(kb - h, t)
    return tl.fma(e, p, e) * _pow2(h, t)


@triton.constexpr_function
def math_mode(bits, bfloat16, backward, normal):
    """The math a result of `bits` bits needs (coefficients.py): NORMAL where the launch chose
    float16's cheaper math (normal); bfloat16 gradients keep the series, as the hardware's exp2
    flushes subnormal results. The kernel decides it at compile time, and Inductor's lowering
    (lowering.py) asks the same function in Python."""
    if normal:
        return NORMAL.value
    if backward:
        return SHORT.value if bits == 16 else FULL.value
    return EXP2.value if bfloat16 else SHORT.value if bits == 16 else FULL.value


@triton.jit
def _load(ptrs, mask, mask_t, TRANSPOSED: tl.constexpr):
    # A transposed tile's pointers come as [COLS, ROWS], so that its threads step along the rows,
    # the tensor's own fast dimension; tl.trans hands the values over in [ROWS, COLS], which the
    # compiler does through shared memory.
    if TRANSPOSED:
        v = tl.trans(tl.load(ptrs, mask=mask_t))
    else:
        v = tl.load(ptrs, mask=mask)
    return v


@triton.jit
def _elu_block(out_ptrs, x_ptrs, g_ptrs, mask, mask_t, poscoef, negcoef, negiptcoef,
               BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr, NORMAL_EXP: tl.constexpr, TRANS: tl.constexpr):
    x = _load(x_ptrs, mask, mask_t, TRANS & 2).to(poscoef.dtype)
    out_type: tl.constexpr = out_ptrs.dtype.element_ty
    mode: tl.constexpr = math_mode(out_type.primitive_bitwidth, out_type == tl.bfloat16, BACKWARD, NORMAL_EXP)
    # The branch conditions are aten's CUDA kernel's: forward x > 0, backward x <= 0. They differ
    # for NaN only: a NaN input gives a NaN output but the gradient grad * scale, as in PyTorch.
    if BACKWARD:
        g = _load(g_ptrs, mask, mask_t, TRANS & 4).to(poscoef.dtype)
        if IS_RESULT:
            y = tl.where(x <= 0, g * negiptcoef * (x + negcoef), g * poscoef)
        else:
            y = tl.where(x <= 0, g * negiptcoef * negcoef * exp(x * negiptcoef, mode), g * poscoef)
    elif NORMAL_EXP:  # x = +-0 taken by the first branch: the same signed zero (coefficients.NORMAL)
        y = tl.where(x >= 0, x * poscoef, scaled_expm1(x * negiptcoef, negcoef))
    else:
        y = tl.where(x > 0, x * poscoef, expm1(x * negiptcoef, mode) * negcoef)
    y = y.to(out_type)
    if TRANS & 1:
        tl.store(out_ptrs, tl.trans(y), mask=mask_t)
    else:
        tl.store(out_ptrs, y, mask=mask)


@triton.jit
def _tile_offsets(i0, i1, i2, cols, s0, s1, s2, s3, DIMS: tl.constexpr, UNIT: tl.constexpr, ALIGN: tl.constexpr,
                  VECTOR: tl.constexpr, INT64: tl.constexpr, TRANSPOSED: tl.constexpr):
    # One tensor's offsets over a tile: its rows from the outer indices, its columns from the
    # inner one. UNIT: a stride of 1 along the tensor's own fast axis, which the compiler can see,
    # so it loads vectors: along the columns, or for a TRANSPOSED tensor ([COLS, ROWS], _load)
    # along the rows, whose other strides are then multiples of VECTOR (csrc/launch.cpp's layout_of).
    if not INT64:
        s0 = s0.to(tl.int32)
        s1 = s1.to(tl.int32)
        s2 = s2.to(tl.int32)
        s3 = s3.to(tl.int32)
    if TRANSPOSED:
        rows = i2 if UNIT else i2 * s2
        align: tl.constexpr = VECTOR if UNIT else 1
    else:
        rows = i2 * s2
        cols = cols if UNIT else cols * s3
        align: tl.constexpr = ALIGN
    if DIMS >= 3:
        outer = i1 * s1
        if DIMS == 4:
            outer += i0 * s0
        rows += tl.multiple_of(outer, align) if TRANSPOSED else outer
    if TRANSPOSED:
        offs = rows[None, :] + tl.multiple_of(cols * s3, align)[:, None]
    else:
        offs = tl.multiple_of(rows, align)[:, None] + cols[None, :]
    return offs


@triton.jit(do_not_specialize=[name for name, kind, _ in PARAMS if kind in ("int", "i64")],
            do_not_specialize_on_alignment=LAYOUT)
def elu_kernel(out_ptr, x_ptr, g_ptr, n, negcoef: tl.float64, scale: tl.float64, input_scale: tl.float64,
               size0: tl.int64, size1: tl.int64, size2: tl.int64, size3: tl.int64,
               out_s0: tl.int64, out_s1: tl.int64, out_s2: tl.int64, out_s3: tl.int64,
               x_s0: tl.int64, x_s1: tl.int64, x_s2: tl.int64, x_s3: tl.int64,
               g_s0: tl.int64, g_s1: tl.int64, g_s2: tl.int64, g_s3: tl.int64,
               BLOCK: tl.constexpr, BACKWARD: tl.constexpr, IS_RESULT: tl.constexpr, INT64: tl.constexpr,
               NORMAL_EXP: tl.constexpr, UNIT_INPUT: tl.constexpr,
               COLS: tl.constexpr, DIMS: tl.constexpr, UNIT: tl.constexpr, ALIGN: tl.constexpr, TRANS: tl.constexpr):
    """out = elu(x) over n elements, or, with BACKWARD, out = elu_backward(g, x).

    x is the input, or with IS_RESULT the saved forward result. negcoef is alpha * scale as aten
    forms it (csrc/launch.cpp's negcoef says why it comes formed). Scalars come in as float64 so
    that float64 tensors lose nothing. NORMAL_EXP: float16's cheaper math (coefficients.NORMAL),
    which the launch allows for moderate coefficients (csrc/launch.cpp's normal_math): decided
    there, once a launch, so that every program runs one path with no test of its own.
    UNIT_INPUT: input_scale, rounded to the compute dtype, is 1 (ELU, SELU, CELU with alpha 1),
    decided there too (csrc/launch.cpp's unit_input).

    The layout, decided by the launch (csrc/launch.cpp's collapse):
    - COLS 0: out, x and g are flat arrays of n elements (dense, and laid out alike); the sizes
      and strides are not read.
    - COLS > 0: a view of DIMS (1 to 4) dimensions, size0 x size1 x size2 x size3 (the inner
      one; the first 4 - DIMS have size 1), each tensor with its own strides (0 for a broadcast),
      read and written in place, with no copy. A program takes a tile of BLOCK // COLS rows by
      COLS columns of the inner dimension.
      UNIT: bit 1 out, 2 x, 4 g, where that tensor's inner stride is 1. TRANS: bits as UNIT, the
      tensors whose stride along dimension 2 is below their inner one (a transpose of the others):
      they are read or written along the tile's rows (_load). ALIGN: a number of elements that
      divides size3 and every outer stride of the other tensors (for 16-byte vectors).
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
    if UNIT_INPUT:
        # A constant the compiler folds (x * 1 is x, NaN and -0 included): one or two products an
        # element fewer, on kernels that are compute-bound on the fastest memory.
        negiptcoef = tl.full([], 1.0, poscoef.dtype)
    pid = tl.program_id(0)
    if INT64:
        pid = pid.to(tl.int64)
    if COLS == 0:
        start = pid * BLOCK
        offs = start + tl.arange(0, BLOCK)
        # Full blocks run unmasked, so their loads and stores stay 16-byte vectors whatever n is.
        if start + BLOCK <= n:
            _elu_block(out_ptr + offs, x_ptr + offs, g_ptr + offs, None, None, poscoef, negcoef, negiptcoef,
                       BACKWARD, IS_RESULT, NORMAL_EXP, 0)
        else:
            _elu_block(out_ptr + offs, x_ptr + offs, g_ptr + offs, offs < n, None, poscoef, negcoef, negiptcoef,
                       BACKWARD, IS_RESULT, NORMAL_EXP, 0)
    else:
        ROWS: tl.constexpr = BLOCK // COLS
        # The tile's rows are the outer dimensions flattened: row r is (r // size2 // size1,
        # r // size2 % size1, r % size2), the dimensions of size 1 left out.
        inner = size3
        if not INT64:
            size0 = size0.to(tl.int32)
            size1 = size1.to(tl.int32)
            size2 = size2.to(tl.int32)
            inner = inner.to(tl.int32)
        # 16-byte vectors of elements; along the rows, where a transposed tensor loads them
        VECTOR: tl.constexpr = 128 // x_ptr.dtype.element_ty.primitive_bitwidth
        if (TRANS & UNIT) != 0 and DIMS >= 3:
            # runs of rows that do not wrap mid-vector, nor (n_rows) end there: masked tiles too
            size2 = tl.multiple_of(size2, VECTOR)
        n_rows = size0 * size1 * size2
        inner = tl.multiple_of(inner, ALIGN)
        col_tiles = tl.cdiv(inner, COLS)
        row_tile = pid // col_tiles
        row0 = row_tile * ROWS
        col0 = (pid - row_tile * col_tiles) * COLS
        rows = row0 + tl.arange(0, ROWS)
        cols = col0 + tl.arange(0, COLS)
        i0 = rows  # unread below four dimensions
        i1 = rows  # unread below three
        i2 = rows
        if DIMS >= 3:
            i2 = rows % size2
            i1 = rows // size2
        if DIMS == 4:
            i0 = i1 // size1
            i1 = i1 % size1
        out_offs = _tile_offsets(i0, i1, i2, cols, out_s0, out_s1, out_s2, out_s3, DIMS, UNIT & 1, ALIGN, VECTOR,
                                 INT64, TRANS & 1)
        x_offs = _tile_offsets(i0, i1, i2, cols, x_s0, x_s1, x_s2, x_s3, DIMS, UNIT & 2, ALIGN, VECTOR, INT64,
                              TRANS & 2)
        g_offs = _tile_offsets(i0, i1, i2, cols, g_s0, g_s1, g_s2, g_s3, DIMS, UNIT & 4, ALIGN, VECTOR, INT64,
                              TRANS & 4)
        if row0 + ROWS <= n_rows and col0 + COLS <= inner:
            _elu_block(out_ptr + out_offs, x_ptr + x_offs, g_ptr + g_offs, None, None, poscoef, negcoef, negiptcoef,
                       BACKWARD, IS_RESULT, NORMAL_EXP, TRANS)
        else:
            in_rows, in_cols = rows < n_rows, cols < inner
            mask = in_rows[:, None] & in_cols[None, :]
            _elu_block(out_ptr + out_offs, x_ptr + x_offs, g_ptr + g_offs, mask, in_rows[None, :] & in_cols[:, None],
                       poscoef, negcoef, negiptcoef, BACKWARD, IS_RESULT, NORMAL_EXP, TRANS)
