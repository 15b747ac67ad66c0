"""DTensor sharding rules for the fastelu ops (tensor and sequence parallel models).

The ops are pointwise, so they take the rules DTensor has for aten's pointwise ops of the same
kind: relu for elu (nonlinear, so a Partial input is reduced first), and gelu_backward,
a nonlinear pointwise op of two tensors, for elu_backward. Those rules live in private tables of
DTensor's sharding propagator, whose layout changed between torch 2.11 and 2.13; both are handled,
and if neither holds, DTensor keeps refusing the ops with its own error. elu_, which returns
nothing, gets a handler of its own instead, which runs it on each shard: DTensor's propagation
fails on such an op before torch 2.13, and in 2.11 lets it keep a Partial placement (elu of each
partial sum).
"""
import torch

from . import deferred


def _peers():
    aten, ops = torch.ops.aten, torch.ops.fastelu
    return {ops.elu.default: aten.relu.default, ops.elu_backward.default: aten.gelu_backward.default}


def _elu_inplace(op_call, args, kwargs):
    self = args[0]
    if any(p.is_partial() for p in self.placements):  # a nonlinear op needs the sum first: as DTensor says
        raise RuntimeError(f"{op_call}: in-place operations that require placement changes are not supported. The "
                           f"input has placement {self.placements}, but no valid strategy preserves this placement. "
                           f"Please use the out-of-place version of this operation instead.")
    op_call(self._local_tensor, *args[1:], **kwargs)


# What serves each op (elu, elu_, elu_backward), for ops.py's table: two borrowed rules, one handler.
RULES = ("aten.relu's sharding strategy", _elu_inplace, "aten.gelu_backward's sharding strategy")


def register():
    from torch.distributed.tensor import DTensor
    prop = DTensor._op_dispatcher.sharding_propagator
    tables = [("op_strategy_funcs", "op_to_schema_info"),
              ("op_single_dim_strategy_funcs", "op_to_schema_info_for_single_dim_strategy")]
    for ours, peer in _peers().items():
        for funcs, infos in tables:
            funcs, infos = getattr(prop, funcs, {}), getattr(prop, infos, {})
            if peer in funcs:
                funcs[ours] = funcs[peer]
                if peer in infos:
                    infos[ours] = infos[peer]
                break
    DTensor._op_dispatcher._custom_op_handlers[torch.ops.fastelu.elu_.default] = _elu_inplace


def hook():
    """register() now if DTensor is loaded, else as soon as it is (it costs about 1 s to import)."""
    if torch.distributed.is_available():
        deferred.after_import("torch.distributed.tensor", register)
