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

from . import build, coefficients, configs, deferred, export, inductor, lowering, nested, sharding

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


if _C is not None:
    from . import launch

    # The C++ asks configs.py for a device's launch table on first use, and launch.py for the
    # launches Triton's own launcher makes; it watches Triton's launch hooks for profilers.
    _C.setup(launch, configs.table, launch.hook_lists(knobs.runtime), list(configs.BUCKETS), coefficients.MODERATE,
             INTERPRET)


# ---- fake kernels: shapes, dtypes and strides, after the real kernels' checks ----------------------
# The outputs are laid out as aten's (TensorIterator's layout, which the C++ follows), so aten's own
# fake kernels give their strides. A symbolic coefficient is checked when the graph runs. Dynamo
# traces a graph with them before computing its cache keys: fastelu's state goes in.

def _elu_fake(self, alpha=1, scale=1, input_scale=1):
    inductor.keep_passes()
    if export.concrete(alpha, scale, input_scale):
        _C.check(self, False, alpha, scale, input_scale)
    return torch.ops.aten.elu.default(self, alpha, scale, input_scale)


def _elu_inplace_fake(self, alpha=1, scale=1, input_scale=1):
    inductor.keep_passes()
    if export.concrete(alpha, scale, input_scale):
        _C.check(self, True, alpha, scale, input_scale)


def _elu_backward_fake(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    inductor.keep_passes()
    if export.concrete(alpha, scale, input_scale):
        _C.check_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)
    return torch.ops.aten.elu_backward.default(grad_output, alpha, scale, input_scale, is_result, self_or_result)


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


# Under torch.jit.trace, elu_ is recorded as elu and a copy_: TorchScript's ONNX exporter drops a
# custom op that returns nothing, and understands aten's copy_.
def _elu_inplace_traced(self, alpha=1, scale=1, input_scale=1):
    self.copy_(torch.ops.fastelu.elu.default(self, alpha, scale, input_scale))


# ---- the table: every op x dispatch key, in each build state, and what serves it -----------------

BUILT, NO_CPP, NO_TRITON = "C++ built", "C++ missing", "no Triton"
STATES = (BUILT, NO_CPP, NO_TRITON)
STATE = NO_TRITON if knobs is None else NO_CPP if _C is None else BUILT
OPS = ("elu", "elu_", "elu_backward")


class Cpp(str):
    """A kernel of csrc/ops.cpp, by its function's name: registered (TORCH_LIBRARY_IMPL) as the C++
    module loads, so the table names it and tests/test_ops.py checks that it is there."""


ATEN = "aten's"  # the composite kernel's aten ops serve it


def _each(elu, elu_, elu_backward):
    return dict(zip(OPS, (elu, elu_, elu_backward)))


def _built(kernels, otherwise=None):
    """kernels where the C++ is built; otherwise (aten's, or none) in the other states."""
    return {BUILT: kernels, NO_CPP: otherwise, NO_TRITON: otherwise}


def _always(kernels):
    return dict.fromkeys(STATES, kernels)


# key -> state -> op -> kernel. Where the C++ part is missing the ops are their own export
# decompositions (export.py: aten's elu, selu or celu, in place or not) as composite kernels, so
# every transform and tracer sees aten's ops beneath, and autograd is aten's. The keys below
# "Tracer" are registered once their module is imported (deferred.py), by the function named.
TABLE = {
    "CompositeExplicitAutograd": _built(_each(Cpp("elu_any"), Cpp("elu_inplace_any"), Cpp("elu_backward_any"))),
    "CompositeImplicitAutograd": {BUILT: None, NO_CPP: _each(export.elu, export.elu_, export.elu_backward),
                                  NO_TRITON: _each(export.elu, export.elu_, export.elu_backward)},
    "Autograd": _built(_each(Cpp("elu_autograd"), Cpp("elu_inplace_autograd"), Cpp("elu_backward_autograd")),
                       dict.fromkeys(OPS, ATEN)),
    "ADInplaceOrView": _built({"elu_": Cpp("elu_inplace_ad_inplace_or_view")}, {"elu_": ATEN}),
    "Meta": _built(_each(_elu_fake, _elu_inplace_fake, _elu_backward_fake), dict.fromkeys(OPS, ATEN)),
    "Functionalize": _always({"elu_": _elu_inplace_functionalize}),
    "Tracer": _always({"elu_": _elu_inplace_traced}),
    "vmap": _always(_each(_elu_vmap, _elu_inplace_vmap, _elu_backward_vmap)),
    "export decomposition": _always(_each(export.elu, export.elu_, export.elu_backward)),
    "NestedTensor (jagged)": _always(_each(nested.elu, nested.elu_inplace, nested.elu_backward)),
    "DTensor": _always(_each(*sharding.RULES)),
    "ONNX (TorchScript)": _always({"elu": export.onnx_symbolic}),
    "Inductor lowering": _built(_each(lowering.lower_elu, lowering.lower_elu_inplace, lowering.lower_elu_backward)),
}


def _register(key, op, kernel):
    """Register one Python kernel of the table; the other keys' registrars are below the loop."""
    name = f"fastelu::{op}"
    if key in ("CompositeImplicitAutograd", "Functionalize", "Tracer"):
        lib.impl(op, kernel, key)
    elif key == "Meta":
        torch.library.register_fake(name, kernel, lib=lib)
    elif key == "vmap":
        torch.library.register_vmap(name, kernel, lib=lib)
    elif key == "export decomposition":  # a Python kernel only: eager calls never see it
        getattr(torch.ops.fastelu, op).default.py_impl(torch._C.DispatchKey.CompositeImplicitAutograd)(kernel)


_REGISTERED_HERE = ("CompositeImplicitAutograd", "Meta", "Functionalize", "Tracer", "vmap", "export decomposition")
for _key in _REGISTERED_HERE:
    for _op, _kernel in (TABLE[_key][STATE] or {}).items():
        if callable(_kernel):  # not aten's
            _register(_key, _op, _kernel)
# These register all three ops at once, once their module is imported.
deferred.after_import("torch.nested._internal.nested_tensor",
                      lambda: nested.register(lib, TABLE["NestedTensor (jagged)"][STATE]))
sharding.hook()  # DTensor
deferred.after_import("torch.onnx", export.register_onnx)
if STATE == BUILT:
    inductor.hook()  # the lowerings, with fastelu's passes and the partitioner's lists
