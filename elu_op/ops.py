"""The fastelu operators: schemas, which kernels serve which dispatch keys, the Python kernels
and the fake kernels. The C++ kernels and the autograd formulas are in csrc/fastelu.cpp.

torch.ops.fastelu.elu(self, alpha=1.0, scale=1.0, input_scale=1.0)      like aten::elu
torch.ops.fastelu.elu_(self, alpha=1.0, scale=1.0, input_scale=1.0)     like aten::elu_
torch.ops.fastelu.elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)

CUDA tensors run the Triton kernel, launched from C++ (csrc/fastelu.cpp) in the common case;
CPU tensors run it under TRITON_INTERPRET=1 and use aten's own CPU kernel otherwise; any other
device gets aten's kernel.
"""
import contextlib
import os

import torch
from triton import knobs

from . import _C, configs, kernel, launcher, lowering, sharding  # _C: the ops' C++ kernels, registered on import

lib = torch.library.Library("fastelu", "DEF")
lib.define("elu(Tensor self, float alpha=1.0, float scale=1.0, float input_scale=1.0) -> Tensor")
# elu_ returns nothing (aten's returns self): torch.compile can only functionalize custom ops
# whose outputs do not alias their inputs. elu_op.elu(..., inplace=True) returns the tensor.
lib.define("elu_(Tensor(a!) self, float alpha=1.0, float scale=1.0, float input_scale=1.0) -> ()")
lib.define("elu_backward(Tensor grad_output, float alpha, float scale, float input_scale, bool is_result, "
           "Tensor self_or_result) -> Tensor")

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DTYPES = frozenset((torch.float32, torch.float16, torch.bfloat16, torch.float64))

OVERLAP_ERROR = ("unsupported operation: more than one element of the written-to tensor refers to a single "
                 "memory location. Please clone() the tensor before performing the operation.")
NEGATIVE_SLOPE_ERROR = _C.NEGATIVE_SLOPE_ERROR


# ---- checks, all made before anything is written --------------------------------------------

def check_dtype(t, name="input"):
    if t.dtype not in DTYPES:
        raise TypeError(f"fastelu: {name} has dtype {t.dtype}, but only float32, float16, bfloat16 and "
                        f"float64 are supported")


def _check_backward(grad_output, is_result, alpha, input_scale, self_or_result):
    check_dtype(grad_output, "grad_output")
    check_dtype(self_or_result, "self_or_result")
    if grad_output.dtype != self_or_result.dtype:
        raise TypeError(f"fastelu: grad_output has dtype {grad_output.dtype} but self_or_result has "
                        f"{self_or_result.dtype}; they must match")
    if grad_output.shape != self_or_result.shape:
        raise ValueError(f"fastelu: grad_output has shape {tuple(grad_output.shape)} but self_or_result has "
                         f"{tuple(self_or_result.shape)}; they must match")
    if grad_output.device != self_or_result.device:
        raise ValueError(f"fastelu: grad_output is on {grad_output.device} but self_or_result is on "
                         f"{self_or_result.device}")
    if is_result and (alpha < 0 or input_scale < 0):
        raise RuntimeError(NEGATIVE_SLOPE_ERROR)


def _check_writable(x):
    if torch._debug_has_internal_overlap(x) == 1:
        raise RuntimeError(OVERLAP_ERROR)


def _is_dense(t):
    """True when t covers one gap-free block of memory (any order of dimensions)."""
    if t.is_contiguous():
        return True
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda p: p[1]):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


# ---- device kernels --------------------------------------------------------------------------

def _run(out, x, g, alpha, scale, input_scale, is_result):
    # out, x and g (or None) are dense with one layout, so the kernel sees flat arrays.
    n = out.numel()
    if n == 0 or _C.launch(out, x, g, alpha, scale, input_scale, is_result):
        return
    index = out.get_device()  # -1 on the CPU
    block, warps = configs.lookup(index, out.element_size(), n)
    with torch.cuda.device(index) if 0 <= index != torch._C._cuda_getDevice() else contextlib.nullcontext():
        compiled = kernel.launch(out, x, g, n, alpha, scale, input_scale, is_result, block, warps, index)
    if compiled is not None:  # from now on the C++ launches it (_C.launch above, or the op's own C++)
        mode = 0 if g is None else 1 + is_result
        launcher.register(compiled, index, out.dtype, n, mode, block, kernel.width(n, block))


def _elu_triton(self, alpha=1.0, scale=1.0, input_scale=1.0):
    check_dtype(self)
    out = torch.empty_like(self)  # keeps a dense input's layout (channels_last...) as it is
    if _is_dense(self):
        _run(out, self, None, alpha, scale, input_scale, False)
    else:  # slices, expands: gather once, then work in place on the dense copy
        out.copy_(self)
        _run(out, out, None, alpha, scale, input_scale, False)
    return out


def _elu_inplace_triton(self, alpha=1.0, scale=1.0, input_scale=1.0):
    check_dtype(self)
    _check_writable(self)
    if _is_dense(self):
        _run(self, self, None, alpha, scale, input_scale, False)
    else:  # slices: work on a dense copy and write it back
        dense = self.clone()
        _run(dense, dense, None, alpha, scale, input_scale, False)
        self.copy_(dense)


def _elu_backward_triton(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    _check_backward(grad_output, is_result, alpha, input_scale, self_or_result)
    out = torch.empty_like(self_or_result)
    # Bring both inputs to out's layout where they differ from it (rare: mixed layouts, views).
    s = self_or_result if _is_dense(self_or_result) else torch.empty_like(out).copy_(self_or_result)
    g = grad_output if grad_output.stride() == out.stride() and _is_dense(grad_output) else \
        torch.empty_like(out).copy_(grad_output)
    _run(out, s, g, alpha, scale, input_scale, is_result)
    return out


def _elu_aten(self, alpha=1.0, scale=1.0, input_scale=1.0):
    check_dtype(self)
    return torch.ops.aten.elu.default(self, alpha, scale, input_scale)


def _elu_inplace_aten(self, alpha=1.0, scale=1.0, input_scale=1.0):
    check_dtype(self)
    _check_writable(self)
    torch.ops.aten.elu_.default(self, alpha, scale, input_scale)


def _elu_backward_aten(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    _check_backward(grad_output, is_result, alpha, input_scale, self_or_result)
    return torch.ops.aten.elu_backward.default(grad_output, alpha, scale, input_scale, is_result, self_or_result)


# Where each op's kernels live. CUDA, Autograd and ADInplaceOrView: C++ (csrc/fastelu.cpp); its
# CUDA kernels call the Python ones above (handed over at the end of this file) for all but the
# common case.
# CPU under TRITON_INTERPRET=1: the Triton kernel, interpreted. Any other device, and the CPU
# otherwise: aten's kernel. Fake kernels: below.
_TRITON = {"elu": _elu_triton, "elu_": _elu_inplace_triton, "elu_backward": _elu_backward_triton}
_ATEN = {"elu": _elu_aten, "elu_": _elu_inplace_aten, "elu_backward": _elu_backward_aten}
for _name in _TRITON:
    lib.impl(_name, _ATEN[_name], "CompositeExplicitAutograd")
    if INTERPRET:
        lib.impl(_name, _TRITON[_name], "CPU")


# ---- fake kernels (shapes, dtypes and strides only) --------------------------------------------

@torch.library.register_fake("fastelu::elu")
def _elu_fake(self, alpha=1.0, scale=1.0, input_scale=1.0):
    check_dtype(self)
    return torch.empty_like(self)


@torch.library.register_fake("fastelu::elu_")
def _elu_inplace_fake(self, alpha=1.0, scale=1.0, input_scale=1.0):
    check_dtype(self)


@torch.library.register_fake("fastelu::elu_backward")
def _elu_backward_fake(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    _check_backward(grad_output, is_result, alpha, input_scale, self_or_result)
    return torch.empty_like(self_or_result)


# ---- vmap: the ops are elementwise, so a batched call is one call over the whole batch ---------

def _elu_vmap(info, in_dims, x, *coefs):
    return torch.ops.fastelu.elu.default(x, *coefs), in_dims[0]


def _elu_inplace_vmap(info, in_dims, x, *coefs):
    torch.ops.fastelu.elu_.default(x, *coefs)
    return None, None  # elu_ returns nothing


def _elu_backward_vmap(info, in_dims, grad_output, alpha, scale, input_scale, is_result, s):
    def batch_first(t, dim):  # the batch dimension first, expanded where t has none
        return t.movedim(dim, 0) if dim is not None else t.expand(info.batch_size, *t.shape)
    out = torch.ops.fastelu.elu_backward.default(batch_first(grad_output, in_dims[0]), alpha, scale, input_scale,
                                                 is_result, batch_first(s, in_dims[5]))
    return out, 0


for _name, _rule in (("elu", _elu_vmap), ("elu_", _elu_inplace_vmap), ("elu_backward", _elu_backward_vmap)):
    torch.library.register_vmap(f"fastelu::{_name}", _rule, lib=lib)


# ---- the C++ kernels' way back: the Python kernels above, for all but the common case ----------

_C.setup(list(configs.BUCKETS), kernel.INT32_SAFE, _TRITON, knobs.runtime)

# Inductor lowerings of these ops, registered once a compile loads Inductor (lowering.py), and
# DTensor's sharding rules, once DTensor is loaded (sharding.py).
lowering.hook()
sharding.hook()
