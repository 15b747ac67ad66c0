"""The fastelu operators: schemas, device kernels, fake kernels and autograd, all in one place.

torch.ops.fastelu.elu(self, alpha=1.0, scale=1.0, input_scale=1.0)      like aten::elu
torch.ops.fastelu.elu_(self, alpha=1.0, scale=1.0, input_scale=1.0)     like aten::elu_
torch.ops.fastelu.elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)

CUDA tensors run the Triton kernel; CPU tensors run it under TRITON_INTERPRET=1 and use
aten's own CPU kernel otherwise; any other device gets aten's kernel.
"""
import os

import torch

from . import configs, kernel

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
# Also raised for a negative input_scale, which PyTorch lets through: the result's sign then no
# longer tells which branch the input took, and the gradient would be silently wrong.
NEGATIVE_SLOPE_ERROR = ("In-place elu backward calculation is triggered with a negative slope which is not "
                        "supported. This is caused by calling in-place forward function with a negative slope, "
                        "please call out-of-place version instead.")


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


def plain_cuda(*tensors):
    """True when handing these tensors straight to the CUDA kernels below is exactly what the
    dispatcher would do: real CUDA tensors (fake, functional and other subclass tensors fail the
    type test) with no dispatch or function mode, functorch transform or JIT tracer active. The
    Python API, the autograd kernels and the autograd formulas take this shortcut: each trip
    through the dispatcher into Python that it saves is a large part of a small call.
    """
    for t in tensors:
        if type(t) is not torch.Tensor or not t.is_cuda:
            return False
    return not (_dispatch_modes() or _function_modes() or _functorch_transform() is not None or _jit_tracer())


# Bound once: plain_cuda runs on every small call, where each attribute lookup shows.
_dispatch_modes = torch._C._len_torch_dispatch_stack
_function_modes = torch._C._is_torch_function_mode_enabled
_functorch_transform = torch._C._functorch.peek_interpreter_stack
_jit_tracer = torch._C._get_tracing_state


# ---- device kernels --------------------------------------------------------------------------

def _run(out, x, g, alpha, scale, input_scale, is_result):
    # out, x and g (or None) are dense with one layout, so the kernel sees flat arrays.
    n = out.numel()
    if n == 0:
        return
    index = out.get_device()  # -1 on the CPU
    block, warps = configs.lookup(index, out.element_size(), n)
    if index < 0 or index == torch._C._cuda_getDevice():
        kernel.launch(out, x, g, n, alpha, scale, input_scale, is_result, block, warps, index)
    else:
        with torch.cuda.device(index):
            kernel.launch(out, x, g, n, alpha, scale, input_scale, is_result, block, warps, index)


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


_TRITON = {"elu": _elu_triton, "elu_": _elu_inplace_triton, "elu_backward": _elu_backward_triton}
_ATEN = {"elu": _elu_aten, "elu_": _elu_inplace_aten, "elu_backward": _elu_backward_aten}
for _name in _TRITON:
    lib.impl(_name, _ATEN[_name], "CompositeExplicitAutograd")  # every device PyTorch supports
    lib.impl(_name, _TRITON[_name], "CUDA")
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


# ---- autograd ------------------------------------------------------------------------------------
# The formulas are aten's (derivatives.yaml): elu saves its input, elu_ its result, and
# elu_backward is itself differentiable, so second derivatives work.

_below_autograd = torch._C._AutoDispatchBelowADInplaceOrView


class _EluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        out = _elu(x, alpha, scale, input_scale)
        ctx.save_for_backward(x)
        ctx.coefs = (alpha, scale, input_scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return _elu_backward(grad, *ctx.coefs, False, x), None, None, None


class _EluInplaceFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        if plain_cuda(x):
            _elu_inplace_triton(x, alpha, scale, input_scale)
        else:
            with _below_autograd():
                torch.ops.fastelu.elu_(x, alpha, scale, input_scale)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.coefs = (alpha, scale, input_scale)
        return x

    @staticmethod
    def backward(ctx, grad):
        result, = ctx.saved_tensors
        return _elu_backward(grad, *ctx.coefs, True, result), None, None, None


class _EluBackwardFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output, alpha, scale, input_scale, is_result, self_or_result):
        out = _elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)
        ctx.save_for_backward(grad_output, self_or_result)
        ctx.args = (alpha, scale, input_scale, is_result)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_output, s = ctx.saved_tensors
        alpha, scale, input_scale, is_result = ctx.args
        d_grad_output = d_s = None
        if ctx.needs_input_grad[0]:
            d_grad_output = torch.ops.fastelu.elu_backward(grad, alpha, scale, input_scale, is_result, s)
        if ctx.needs_input_grad[5]:
            negative = (s < 0).type_as(grad)
            if is_result:
                d_s = grad * grad_output * input_scale * negative
            else:
                d_s = torch.ops.fastelu.elu_backward(grad * grad_output * input_scale, alpha, scale,
                                                     input_scale, False, s) * negative
        return d_grad_output, None, None, None, None, d_s


def _elu(self, alpha, scale, input_scale):
    # Below autograd: the Triton kernel directly where the dispatcher would pick it anyway.
    if plain_cuda(self):
        return _elu_triton(self, alpha, scale, input_scale)
    with _below_autograd():
        return torch.ops.fastelu.elu(self, alpha, scale, input_scale)


def _elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    # Also reached from backward with create_graph=True: then autograd must see the op.
    if plain_cuda(grad_output, self_or_result) and not torch.is_grad_enabled():
        return _elu_backward_triton(grad_output, alpha, scale, input_scale, is_result, self_or_result)
    return torch.ops.fastelu.elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)


def _elu_autograd(self, alpha=1.0, scale=1.0, input_scale=1.0):
    if self.requires_grad and torch.is_grad_enabled():
        return _EluFunction.apply(self, alpha, scale, input_scale)
    return _elu(self, alpha, scale, input_scale)


def _elu_inplace_autograd(self, alpha=1.0, scale=1.0, input_scale=1.0):
    if self.requires_grad and torch.is_grad_enabled():
        # PyTorch finds these only after writing (or, for the slope, in backward); we refuse first.
        if self.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if self._is_view() and self._base.is_leaf and self._base.requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                               "operation.")
        if alpha < 0 or input_scale < 0:
            raise RuntimeError(NEGATIVE_SLOPE_ERROR)
        _EluInplaceFunction.apply(self, alpha, scale, input_scale)  # mark_dirty rebases self's history
        return
    if plain_cuda(self):
        _elu_inplace_triton(self, alpha, scale, input_scale)
    else:
        with _below_autograd():
            torch.ops.fastelu.elu_(self, alpha, scale, input_scale)
    torch.autograd.graph.increment_version(self)


def _elu_inplace_ad_inplace_or_view(self, alpha=1.0, scale=1.0, input_scale=1.0):
    # Reached only by callers that enter below autograd themselves: bump the version counter
    # as aten's in-place ops do, so saved tensors notice the write.
    with _below_autograd():
        torch.ops.fastelu.elu_(self, alpha, scale, input_scale)
    torch.autograd.graph.increment_version(self)


def _elu_backward_autograd(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    if (grad_output.requires_grad or self_or_result.requires_grad) and torch.is_grad_enabled():
        return _EluBackwardFunction.apply(grad_output, alpha, scale, input_scale, is_result, self_or_result)
    if plain_cuda(grad_output, self_or_result):
        return _elu_backward_triton(grad_output, alpha, scale, input_scale, is_result, self_or_result)
    with _below_autograd():
        return torch.ops.fastelu.elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)


lib.impl("elu", _elu_autograd, "Autograd")
lib.impl("elu_", _elu_inplace_autograd, "Autograd")
lib.impl("elu_", _elu_inplace_ad_inplace_or_view, "ADInplaceOrView")
lib.impl("elu_backward", _elu_backward_autograd, "Autograd")
