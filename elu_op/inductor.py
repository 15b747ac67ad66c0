"""fastelu's hooks into Inductor: the lowerings (lowering.py) registered, fastelu's state in the
cache keys, its graph passes, the partitioner's lists, and aten's elu routed by enable().

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
import os
import warnings

import torch

from . import deferred, export
from .lowering import lower_elu, lower_elu_backward

_installed = None  # None: not tried yet; then whether the lowerings are registered
_aten_routed = False  # whether aten's elu and elu_backward lower to fastelu's math
_saved = {}  # the decompositions routing aten's ops replaced: (id(table), op) -> entry, or None
_recompute = True  # set_recompute()


def set_recompute(on):
    """Whether graphs that torch.compile compiles from now on recompute each ELU's result in the
    backward from its input (True, the default) or save it beside the input, as stock Inductor
    does (False). Recomputing holds one tensor an ELU where the next layer saves the result (half
    an MLP's activations) at the cost of writing that result once more in the backward
    (docs/reference.md). The gradients are the same to the bit either way. Part of Inductor's cache keys, so cached graphs follow it. Returns the previous
    setting."""
    global _recompute
    if not isinstance(on, bool):
        raise TypeError(f"elu_op.set_recompute: on must be True or False, not {on!r}")
    previous, _recompute = _recompute, on
    return previous


def _checked(lower):
    """A lowering that first checks fastelu's passes are in place (_check_passes)."""
    @functools.wraps(lower)
    def checked(*args, **kwargs):
        _check_passes()
        return lower(*args, **kwargs)
    return checked


def _fastelu_ops():
    """fastelu's ops -> their lowerings, as ops.TABLE names them."""
    from . import ops
    return {getattr(torch.ops.fastelu, op).default: _checked(lower)
            for op, lower in ops.TABLE["Inductor lowering"][ops.BUILT].items()}


def _aten_ops():
    a = torch.ops.aten
    return {a.elu.default: _checked(lower_elu), a.elu_backward.default: _checked(lower_elu_backward)}


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
    if not _recompute:
        return
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
    """What compiled code depends on here: this code, the constants and negcoef (in the C++), the
    aten switch and the recompute setting."""
    from torch._inductor.custom_graph_pass import get_hash_for_files
    here = os.path.dirname(os.path.abspath(__file__))
    files = tuple(os.path.join(here, name) for name in ("lowering.py", "inductor.py", "coefficients.py", "kernel.py",
                                                        "csrc/launch.cpp"))
    return (f"fastelu {get_hash_for_files(files).hex()} aten {'routed' if _aten_routed else 'own'} "
            f"recompute {_recompute}")


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
    from torch._inductor import config  # noqa: F401
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
