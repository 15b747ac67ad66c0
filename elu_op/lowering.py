"""fastelu's math inside torch.compile: Inductor lowerings of the ops.

Registered, each fastelu op is an ordinary pointwise node for Inductor: it fuses with its
neighbours, forward and backward, and its inner function computes the Triton kernel's math
(kernel.py; the numbers in coefficients.py), written in Inductor's pointwise ``ops``, float64
included: its results stay within an ulp (Inductor's own CPU expm1 for float64 is exp() - 1,
which loses all relative accuracy near zero).

While ``elu_op.enable()`` is on, aten's elu and elu_backward lower to the same math (they are
taken out of Inductor's decompositions), and ``disable()`` gives Inductor its own back.

Safe by construction:
- Importing elu_op does not import torch._inductor (about 3 s): ``hook()``, called at import,
  registers the lowerings once something else imports Inductor's lowering module, that is, once a
  compile with Inductor gets past tracing. Tracing runs nothing from here: the Python API emits
  fastelu's ops unless the registration is known to have failed (``failed()``).
- Inductor's caches do not hash lowerings. fastelu's custom graph pass puts its state (this code,
  whether aten's elu is routed) into their keys; it is kept in Inductor's pass settings beside
  whatever pass a user sets there, before or after importing elu_op (``keep_passes``).
- The partitioner recomputes only ops it knows to be fusible; fastelu's ops are added to its
  lists. A joint-graph pass has it recompute every ELU's result from its input, which the
  backward needs anyway, rather than save it: one saved tensor an ELU (``_recompute_results``).
- A coefficient that torch.compile keeps symbolic (a float argument that changed between calls)
  has no value for the math's constants: such a call becomes aten's op, which Inductor decomposes
  and fuses as it does stock elu (``_symbolic_to_aten``), in one graph for every value.
- These are private Inductor APIs. If one is missing or has changed, ``install()`` warns once and
  returns False: the Python API then emits aten's elu under compile (which Inductor fuses), and the
  ops stay opaque kernels, as before the lowerings existed.
"""
import functools
import math
import os
import struct
import warnings

import torch

from . import build, deferred, export
from . import coefficients as C

_installed = None  # None: not tried yet; then whether the lowerings are registered
_aten_routed = False  # whether aten's elu and elu_backward lower to fastelu's math
_saved = {}  # the decompositions routing aten's ops replaced: (id(table), op) -> entry, or None


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

def _lower_elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    from torch._inductor.lowering import make_pointwise
    _check_passes()
    return make_pointwise(_elu_fn(x.get_dtype(), alpha, scale, input_scale))(x)


def _lower_elu_inplace(x, alpha=1.0, scale=1.0, input_scale=1.0):
    from torch._inductor.lowering import mutate_to
    mutate_to(x, _lower_elu(x, alpha, scale, input_scale))


def _lower_elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    from torch._inductor.lowering import make_pointwise
    _check_passes()
    fn = _elu_backward_fn(self_or_result.get_dtype(), alpha, scale, input_scale, is_result)
    return make_pointwise(fn)(grad_output, self_or_result)


def _fastelu_ops():
    f = torch.ops.fastelu
    return {f.elu.default: _lower_elu, f.elu_.default: _lower_elu_inplace, f.elu_backward.default: _lower_elu_backward}


def _aten_ops():
    a = torch.ops.aten
    return {a.elu.default: _lower_elu, a.elu_backward.default: _lower_elu_backward}


def _symbolic_to_aten(aten_op, *args):
    """A decomposition of fastelu's op (or, routed, aten's): aten's where a coefficient is symbolic,
    else none (NotImplemented: the op reaches its lowering)."""
    if export.concrete(*args[1:4]):
        return NotImplemented
    return aten_op(*args)


def _decomposition_tables():
    from torch._inductor import decomposition
    return decomposition.decompositions, decomposition.fast_random_decomps()


def _recompute_results(graph):
    """A joint graph's ELU results are recomputed in the backward from their inputs, never saved.
    The backward needs the input anyway (the gradient from the input), and the next layer (a
    matmul, a convolution) saves the result too: saving both held two tensors an ELU where one
    does. The recomputed result is the forward's to the bit, so gradients do not change; the
    partitioner alone would save it, since the backward must materialize it for the next layer."""
    from torch.utils.checkpoint import CheckpointPolicy
    results = (torch.ops.fastelu.elu.default, torch.ops.aten.elu.default)  # aten's: routed by enable()
    for node in graph.nodes:
        # A node that the user's activation checkpointing tagged keeps its tag.
        if node.op == "call_function" and node.target in results and "recompute" not in node.meta:
            node.meta["recompute"] = CheckpointPolicy.MUST_RECOMPUTE
            # Checkpointing's region id, which the partitioner reads beside the tag (torch 2.9
            # requires it): one below any region's, so a result that a checkpointed region reads
            # is saved at the region's border, as checkpointing saves its inputs.
            node.meta["ac_graph_id"] = -1


def _cache_key():
    """What compiled code depends on here: this code, the constants and negcoef (in the C++), and
    the aten switch."""
    from torch._inductor.custom_graph_pass import get_hash_for_files
    here = os.path.dirname(os.path.abspath(__file__))
    files = tuple(os.path.join(here, name) for name in ("lowering.py", "coefficients.py", "kernel.py",
                                                        "csrc/launch.cpp"))
    return f"fastelu {get_hash_for_files(files).hex()} aten {'routed' if _aten_routed else 'own'}"


# Inductor's pass settings that fastelu puts its own pass into -> what that pass does to a graph
_OWN_PASSES = {"post_grad_custom_post_pass": lambda graph: None,
               "joint_custom_pre_pass": lambda graph: _recompute_results(graph)}
_Pass = None  # the class of fastelu's pass (a CustomGraphPass), made once Inductor is loaded
_warned_passes = set()


def _user_passes(value):
    """The passes a pass setting holds: None, one, or (torch >= 2.13) a list or tuple."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _on_compile_start(args):
    keep_passes()


def keep_passes():
    """Puts fastelu's pass into each of Inductor's pass settings it needs, around whatever a user
    set there, before or since: its uuid carries fastelu's state into Inductor's and AOTAutograd's
    cache keys, and the user's passes still run, after fastelu's. Where a setting takes a list
    (torch >= 2.13), fastelu's pass goes first in it, so that Inductor calls each pass as its kind
    asks; before, it wraps the one pass there. Returns the settings it had to change.

    A user's pass may be set at any time, and torch >= 2.13 keeps Inductor's settings per thread,
    so this runs before any cache key of a compilation is computed: when Dynamo starts one (and
    when a backward is compiled as it first runs), and, since torch._dynamo.reset() drops that
    callback, from fastelu's fake kernels, which every graph that holds a fastelu op passes through
    while Dynamo traces it."""
    if _Pass is None:  # the lowerings are not in place
        return []
    from torch._dynamo.callback import callback_handler
    from torch._inductor import config, custom_graph_pass
    if _on_compile_start not in callback_handler.start_callbacks:
        callback_handler.register_start_callback(_on_compile_start)
    lists = hasattr(custom_graph_pass, "get_custom_graph_passes")
    changed = []
    for setting in _OWN_PASSES:
        passes = _user_passes(getattr(config, setting))
        if any(isinstance(p, _Pass) for p in passes):
            continue
        setattr(config, setting, [_Pass(setting), *passes] if lists else _Pass(setting, passes))
        changed.append(setting)
    return changed


def _check_passes():
    """At a lowering: a pass set since the compilation began (one that does not go through
    torch.compile's entry, such as torch._inductor.compile) kept fastelu's state out of this
    graph's cache key. Said once per setting; fastelu's pass wraps it again for what follows."""
    for setting in keep_passes():
        if setting not in _warned_passes:
            _warned_passes.add(setting)
            warnings.warn(f"fastelu: torch._inductor.config.{setting} was set after this compilation began, "
                          f"replacing fastelu's pass: this graph's cache key lacks fastelu's state (its math, "
                          f"whether aten's elu is routed), so a cache may serve it to another fastelu", stacklevel=2)


def _register():
    # Everything looked up first, so that a missing piece changes nothing.
    from torch._functorch import partitioners
    from torch._inductor import config
    from torch._dynamo.callback import callback_handler  # noqa: F401
    from torch._inductor.custom_graph_pass import CustomGraphPass
    from torch._inductor.lowering import make_pointwise, mutate_to, register_lowering  # noqa: F401
    from torch._inductor.ops_handler import OpsHandler
    default_op_list = partitioners.get_default_op_list
    needed = ("fma", "exp2", "abs", "where", "to_dtype", "to_dtype_bitcast", "bitwise_left_shift",
              "bitwise_right_shift")
    missing = [name for name in needed if not hasattr(OpsHandler, name)]
    if missing:
        raise AttributeError(f"Inductor's ops lack {missing}")

    for op, lower in _fastelu_ops().items():
        register_lowering(op, type_promotion_kind=None)(lower)
    aten = torch.ops.aten
    for op, aten_op in ((torch.ops.fastelu.elu.default, aten.elu.default),
                        (torch.ops.fastelu.elu_backward.default, aten.elu_backward.default)):
        for table in _decomposition_tables():
            table[op] = functools.partial(_symbolic_to_aten, aten_op)

    class Pass(CustomGraphPass):
        """fastelu's pass in one of Inductor's pass settings, wrapping (before torch 2.13) the
        user's passes there."""

        def __init__(self, setting, inner=()):
            self.setting, self.inner = setting, inner

        def __call__(self, graph):
            _OWN_PASSES[self.setting](graph)
            for p in self.inner:
                p(graph)

        def uuid(self):
            # None (no caching, as Inductor does for such a pass) where a wrapped pass has none
            inner = tuple(p.uuid() if hasattr(p, "uuid") else None for p in self.inner)
            return None if None in inner else (_cache_key(), inner)

    global _Pass
    _Pass = Pass
    keep_passes()

    # The partitioner's allowlists (fusible, recomputable) hold aten's ops tagged pointwise only,
    # which leaves out fastelu's and aten's elu_backward (routed by enable(), it reaches the
    # partitioner undecomposed): their inputs would count as materialized and be saved.
    @functools.wraps(default_op_list)
    def op_list():
        types = default_op_list()
        for packet in (torch.ops.fastelu.elu, torch.ops.fastelu.elu_backward, torch.ops.aten.elu_backward):
            types.fusible_ops.add(packet)
            types.recomputable_ops.add(packet)
        return types

    partitioners.get_default_op_list = op_list


def install():
    """Register the lowerings once; True when they are in place (False: this torch's Inductor
    lacks what they need, and a warning said so)."""
    global _installed
    if _installed is None:
        try:
            _register()
            _installed = True
        except Exception as e:  # noqa: BLE001 - any mismatch of private APIs means: fall back
            _installed = False
            warnings.warn(f"fastelu: Inductor lowerings unavailable on torch {torch.__version__} ({e!r}); "
                          f"compiled graphs use aten's elu instead of fastelu's math", stacklevel=2)
        if _installed and _aten_routed:
            _route(True)
    return _installed


def route_aten(on):
    """Lower aten's elu and elu_backward to fastelu's math (on) or Inductor's own (off)."""
    global _aten_routed
    _aten_routed = on
    if _installed:
        _route(on)


def _route(on):
    # Inductor decomposes aten's elu before lowering: with its decompositions replaced by one that
    # keeps concrete coefficients (_symbolic_to_aten), the op reaches the lowering registered here.
    # Off puts back exactly the decompositions that were there, so graphs traced from then on are
    # Inductor's own; the lowering stays, for graphs traced while on and compiled after (a
    # backward, compiled when it first runs), which would otherwise fail to compile.
    from torch._inductor.lowering import register_lowering
    decompositions = _decomposition_tables()
    for op, lower in _aten_ops().items():
        routed = (id(decompositions[0]), op) in _saved
        if on and not routed:
            for table in decompositions:
                own = _saved[id(table), op] = table.pop(op, None)
                if own is not None:
                    table[op] = functools.partial(_symbolic_to_aten, own)
            register_lowering(op, type_promotion_kind=None)(lower)
        elif not on and routed:
            for table in decompositions:
                own = _saved.pop((id(table), op))
                table.pop(op, None)
                if own is not None:
                    table[op] = own


def failed():
    """True once install() has found this torch's Inductor lacking what the lowerings need."""
    return _installed is False


def hook():
    """install() now if Inductor is loaded, else as soon as it is."""
    deferred.after_import("torch._inductor.lowering", install)
