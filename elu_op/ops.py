"""The fastelu operators: their schemas, and which kernels serve which dispatch keys.

torch.ops.fastelu.elu(self, alpha=1.0, scale=1.0, input_scale=1.0)      like aten::elu
torch.ops.fastelu.elu_(self, alpha=1.0, scale=1.0, input_scale=1.0)     like aten::elu_
torch.ops.fastelu.elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)

The kernels are C++ (csrc/launch.cpp; registrations and autograd in csrc/ops.cpp; built on first
use by build.py): CUDA tensors run the Triton kernel (kernel.py), CPU tensors run it under
TRITON_INTERPRET=1, and anything else runs aten's kernel; autograd, forward-mode AD included, is
C++ too. Where there are no kernels (without Triton, or with one warning where the C++ cannot be
built) the ops are aten's, as composite kernels. Here: those, the fake kernels, and what both paths
share: the vmap rules, functionalization and tracing of elu_, the export decompositions
(export.py), DTensor (sharding.py) and jagged nested tensors (nested.py).
"""
import os
import sys

import torch

from . import build, coefficients, configs, deferred, export, inductor, nested, sharding

try:
    from triton import knobs
except ImportError:  # Triton has no wheels for macOS or Windows
    knobs = None

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

lib = torch.library.Library("fastelu", "DEF")
# The coefficients are Scalars, as aten's: torch.compile then keeps a float that changes from call
# to call symbolic (one graph for every alpha) rather than compiling a graph for each value.
lib.define("elu(Tensor self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1) -> Tensor")
# elu_ returns nothing (aten's returns self): torch.compile can only functionalize custom ops
# whose outputs do not alias their inputs. elu_op.elu(..., inplace=True) returns the tensor.
lib.define("elu_(Tensor(a!) self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1) -> ()")
lib.define("elu_backward(Tensor grad_output, Scalar alpha, Scalar scale, Scalar input_scale, bool is_result, "
           "Tensor self_or_result) -> Tensor")

# The C++ part exists to launch Triton's kernels: without Triton it is not built.
# build.C: registers the C++ kernels as it loads; None where it could not be built.
_C = build.load_or_warn() if knobs is not None else None
# Why fastelu's kernels are off (None while they are on), for `python -m elu_op info` and enable().
if knobs is None:
    OFF = ("Triton is not installed (it has no wheels for macOS or Windows; on Linux, pip install triton)"
           if sys.platform == "linux" else "Triton has no wheels for this platform")
    OFF += ", so there are no kernels to launch"
else:
    OFF = None if _C is not None else f"its C++ part could not be built ({build.error})"


# ---- the kernels: C++ (csrc/) where it was built, else aten's ---------------------------------------

if _C is None:
    # The ops are their own decompositions (export.py: aten's elu, selu or celu, in place or not), as
    # composite kernels: every transform and tracer sees aten's ops beneath, and autograd is aten's.
    for _name in ("elu", "elu_", "elu_backward"):
        lib.impl(_name, getattr(export, _name), "CompositeImplicitAutograd")
else:
    from . import launch

    # The C++ asks configs.py for a device's launch table on first use, and launch.py for the
    # launches Triton's own launcher makes; it watches Triton's launch hooks for profilers.
    _C.setup(launch, configs.table, launch.hook_lists(knobs.runtime), list(configs.BUCKETS), coefficients.MODERATE,
             INTERPRET)

    # ---- fake kernels: shapes, dtypes and strides, after the real kernels' checks ---------------
    # The outputs are laid out as aten's (TensorIterator's layout, which the C++ follows), so aten's
    # own fake kernels give their strides. A symbolic coefficient is checked when the graph runs.
    # Dynamo traces a graph with them before computing its cache keys: fastelu's state goes in.

    @torch.library.register_fake("fastelu::elu")
    def _elu_fake(self, alpha=1, scale=1, input_scale=1):
        inductor.keep_passes()
        if export.concrete(alpha, scale, input_scale):
            _C.check(self, False, alpha, scale, input_scale)
        return torch.ops.aten.elu.default(self, alpha, scale, input_scale)

    @torch.library.register_fake("fastelu::elu_")
    def _elu_inplace_fake(self, alpha=1, scale=1, input_scale=1):
        inductor.keep_passes()
        if export.concrete(alpha, scale, input_scale):
            _C.check(self, True, alpha, scale, input_scale)

    @torch.library.register_fake("fastelu::elu_backward")
    def _elu_backward_fake(grad_output, alpha, scale, input_scale, is_result, self_or_result):
        inductor.keep_passes()
        if export.concrete(alpha, scale, input_scale):
            _C.check_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)
        return torch.ops.aten.elu_backward.default(grad_output, alpha, scale, input_scale, is_result, self_or_result)

    # Inductor lowerings of these ops, registered once a compile loads Inductor (inductor.py; the math: lowering.py).
    inductor.hook()

# ---- vmap: the ops are elementwise, so a batched call is one call over the whole batch ---------


def _elu_vmap(info, in_dims, x, *coefs):
    return torch.ops.fastelu.elu.default(x, *coefs), in_dims[0]


def _elu_inplace_vmap(info, in_dims, x, *coefs):
    torch.ops.fastelu.elu_.default(x, *coefs)
    return None, None  # elu_ returns nothing


def _elu_backward_vmap(info, in_dims, grad_output, alpha, scale, input_scale, is_result, s):
    def batch_first(t, dim):  # the batch dimension first, expanded where t has none
        return t.movedim(dim, 0) if dim is not None else t.expand(info.batch_size, *t.shape)
    out = torch.ops.fastelu.elu_backward.default(batch_first(grad_output, in_dims[0]), alpha, scale,
                                                 input_scale, is_result, batch_first(s, in_dims[5]))
    return out, 0


for _name, _rule in (("elu", _elu_vmap), ("elu_", _elu_inplace_vmap), ("elu_backward", _elu_backward_vmap)):
    torch.library.register_vmap(f"fastelu::{_name}", _rule, lib=lib)

# ---- functionalization: elu_ as aten's in-place ops are functionalized ---------------------------
# torch.func.functionalize (and torch.compile's own functionalization, which prefers this kernel
# to auto_functionalize) sees elu out of place, and the result written back as the new value
# of self and of every view that shares its base.

_FUNCTIONALIZE = torch._C.DispatchKeySet(torch._C.DispatchKey.Functionalize)


def _elu_inplace_functionalize(self, alpha=1, scale=1, input_scale=1):
    if _C is not None and export.concrete(alpha, scale, input_scale):
        _C.check(self, True, alpha, scale, input_scale)
    torch._sync(self)
    with torch._C._ExcludeDispatchKeyGuard(_FUNCTIONALIZE):
        out = torch.ops.fastelu.elu.default(torch._from_functional_tensor(self), alpha, scale, input_scale)
    torch._functionalize_replace(self, out)
    torch._functionalize_commit_update(self)
    torch._functionalize_sync(self)


lib.impl("elu_", _elu_inplace_functionalize, "Functionalize")


# Under torch.jit.trace, elu_ is recorded as elu and a copy_: TorchScript's ONNX exporter drops a
# custom op that returns nothing, and understands aten's copy_.
def _elu_inplace_traced(self, alpha=1, scale=1, input_scale=1):
    self.copy_(torch.ops.fastelu.elu.default(self, alpha, scale, input_scale))


lib.impl("elu_", _elu_inplace_traced, "Tracer")

# DTensor's sharding rules, once DTensor is loaded (sharding.py), and jagged nested tensors.
sharding.hook()
nested.hook(lib)

# What torch.export's decompositions and the ONNX exporters turn the ops into (export.py).
export.register()
deferred.after_import("torch.onnx", export.register_onnx)
