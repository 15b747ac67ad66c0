"""Python functions mirroring torch.nn.functional's elu, selu and celu (and elu_, selu_, celu_), backed
by fastelu's ops."""
import sys
from typing import Optional

import torch
from torch import Tensor
from torch.jit import is_scripting

from . import ops  # noqa: F401 - defines the ops and loads their C++ (build.C)
from .build import C as _C
from .coefficients import SELU_ALPHA, SELU_SCALE
from .inductor import failed as _lowerings_failed


# Under torch.compile, each global that the traced code reads becomes a guard that every call of
# the compiled graph checks, and an object that it reaches by two names (torch, from here and from
# the user's code) a guard in Python: so the traced path reads names bound once, here.
_is_compiling, _grad_enabled = torch.compiler.is_compiling, torch.is_grad_enabled
_function_modes = torch._C._is_torch_function_mode_enabled
_elu, _elu_ = torch.ops.fastelu.elu.default, torch.ops.fastelu.elu_.default
_elu_backward = torch.ops.fastelu.elu_backward.default
_aten_elu, _aten_elu_ = torch.ops.aten.elu.default, torch.ops.aten.elu_.default


def _check(fn, input, alpha=1.0):
    """alpha as a float, by PyTorch's rules for a Scalar argument: a Python or NumPy number (bool
    included) or a 0-d tensor that does not require grad (read with a host sync, as PyTorch reads
    it); complex only without an imaginary part, and integers in 64 bits, as aten converts them."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {_type_name(input)}")
    if type(alpha) is float or isinstance(alpha, (torch.SymFloat, torch.SymInt)):
        return alpha  # a float that torch.compile keeps symbolic stays so: one graph for every value
    if isinstance(alpha, Tensor):
        value = alpha.item() if alpha.dim() == 0 and not alpha.requires_grad else None
    elif isinstance(alpha, (int, float, complex)):
        value = alpha
    elif _numpy_number(alpha):
        value = alpha.item()
    else:
        value = None
    if value is None:
        raise TypeError(f"{fn}(): argument 'alpha' (position 2) must be Number, not {_type_name(alpha)}")
    if isinstance(value, complex):
        if value.imag != 0:
            raise RuntimeError("value cannot be converted to type float without overflow")
        value = value.real
    if isinstance(value, int) and not -2**63 <= value < 2**64:
        raise OverflowError("int too big to convert")
    return float(value)


def _numpy_number(obj):
    """A NumPy scalar of a number type (an array, even of one element, is refused, as by PyTorch)."""
    numpy = sys.modules.get("numpy")  # loaded wherever obj is one
    return numpy is not None and isinstance(obj, numpy.generic) and obj.dtype.kind in "biufc"


def _type_name(obj):
    """The type's name as PyTorch's argument errors give it (the C type's tp_name): qualified by its
    module for types written in C outside builtins (decimal.Decimal), bare for Python classes."""
    t = type(obj)
    if t.__module__ == "builtins" or t.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE: a Python class
        return t.__name__
    return f"{t.__module__}.{t.__qualname__}"


class _SavingResult(torch.autograd.Function):
    """fastelu's elu, saving its result rather than its input for the gradient (save="output"):
    where the next layer saves the result too, one tensor is held rather than two, and the input
    is not written (in place, which saves the result as well, overwrites it)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(input, alpha, scale, input_scale):
        return _elu(input, alpha, scale, input_scale)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.coefs = inputs[1:]
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, grad):
        (result,) = ctx.saved_tensors
        return _elu_backward(grad, *ctx.coefs, True, result), None, None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        (result,) = ctx.saved_tensors
        return _elu_backward(tangent, *ctx.coefs, True, result)


SAVES = (None, "input", "output")


def _check_save(fn, save, inplace, alpha, scale, input_scale):
    """What save asks for, refused before anything is written where it cannot be had."""
    if save not in SAVES:
        raise ValueError(f"{fn}(): save must be None, 'input' or 'output', not {save!r}")
    if inplace and save == "input":
        raise ValueError(f"{fn}(): in place the input is overwritten, so the gradient comes from the output: "
                         f"save='input' cannot be had with inplace=True")
    if save == "output" and not inplace and not (alpha >= 0 and scale >= 0 and input_scale >= 0):
        # The result's sign must tell which branch the input took, as for in place.
        raise ValueError(f"{fn}(): save='output' takes the gradient from the result, which needs alpha, scale and "
                         f"input_scale >= 0 (here {alpha}, {scale}, {input_scale}); use save='input'")


def _apply(input, alpha, scale, input_scale, inplace, save=None):
    if save == "output" and not inplace and not _is_compiling() and input.requires_grad and _grad_enabled():
        # (Compiled, every route holds one tensor an ELU already, from the input: inductor.py.)
        return _SavingResult.apply(input, alpha, scale, input_scale)
    if _is_compiling():
        if _lowerings_failed():
            # Without the lowerings (a torch whose Inductor lacks what they need), aten's elu:
            # Inductor fuses it with its pointwise neighbours, where the opaque op would split the
            # graph. (Its own checks apply: fastelu's are C++, which Dynamo cannot trace.)
            op = _aten_elu_ if inplace else _aten_elu
        else:
            op = _elu_ if inplace else _elu
    elif _C is not None and type(input) is Tensor and not _function_modes():
        # The op through the dispatcher, as torch.ops.fastelu.elu would call it, minus the
        # microsecond its Python wrapper costs (torch function modes and subclasses need that).
        op = _C.elu_ if inplace else _C.elu
    else:
        op = _elu_ if inplace else _elu
    out = op(input, alpha, scale, input_scale)
    return input if inplace else out


# Each function opens with a branch for TorchScript, which compiles only that branch (it cannot
# compile the checks below it) and calls the ops as it calls any registered op.

def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False, save: Optional[str] = None) -> Tensor:
    """Like torch.nn.functional.elu: x where x > 0, else alpha * (exp(x) - 1).

    save: what autograd keeps for the gradient. None: as PyTorch, the input (the output in place);
    'output': the output without writing the input, which holds one tensor where the next layer
    keeps the output too (the gradient from the output: docs/reference.md's Numerics give its bound)."""
    if is_scripting():
        return _scripted(input, alpha, 1.0, 1.0, inplace, save)
    alpha = _check("elu", input, alpha)
    if save is not None:
        _check_save("elu", save, inplace, alpha, 1.0, 1.0)
    return _apply(input, alpha, 1.0, 1.0, inplace, save)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """Like torch.nn.functional.elu_: elu in place, returning input."""
    if is_scripting():
        return _scripted(input, alpha, 1.0, 1.0, True)
    return _apply(input, _check("elu_", input, alpha), 1.0, 1.0, True)


def selu(input: Tensor, inplace: bool = False, save: Optional[str] = None) -> Tensor:
    """Like torch.nn.functional.selu: scale * elu(x, alpha) with the self-normalising constants.
    save: as for elu."""
    if is_scripting():
        return _selu_scripted(input, inplace, save)
    _check("selu", input)
    if save is not None:
        _check_save("selu", save, inplace, SELU_ALPHA, SELU_SCALE, 1.0)
    return _apply(input, SELU_ALPHA, SELU_SCALE, 1.0, inplace, save)


def selu_(input: Tensor) -> Tensor:
    """Like torch.nn.functional.selu_: selu in place, returning input."""
    if is_scripting():
        return _selu_scripted(input, True)
    _check("selu_", input)
    return _apply(input, SELU_ALPHA, SELU_SCALE, 1.0, True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False, save: Optional[str] = None) -> Tensor:
    """Like torch.nn.functional.celu: x where x > 0, else alpha * (exp(x / alpha) - 1).
    save: as for elu."""
    if is_scripting():
        return _celu(input, alpha, inplace, save)
    return _celu(input, _check("celu", input, alpha), inplace, save)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """Like torch.nn.functional.celu_: celu in place, returning input."""
    if is_scripting():
        return _celu(input, alpha, True)
    return _celu(input, _check("celu_", input, alpha), True)


def _celu(input: Tensor, alpha: float, inplace: bool, save: Optional[str] = None) -> Tensor:
    if alpha == 0:  # aten's celu raises PyTorch's own error, eager or scripted
        return torch.celu(input, alpha)
    if is_scripting():
        return _scripted(input, alpha, 1.0, 1.0 / alpha, inplace, save)
    if save is not None:
        _check_save("celu", save, inplace, alpha, 1.0, 1.0 / alpha)
    return _apply(input, alpha, 1.0, 1.0 / alpha, inplace, save)


def _scripted(input: Tensor, alpha: float, scale: float, input_scale: float, inplace: bool,
              save: Optional[str] = None) -> Tensor:
    if save is not None and save == "output" and not inplace:  # TorchScript compares a str, not an Optional
        raise RuntimeError("fastelu: save='output' is not available under TorchScript")
    if inplace:
        torch.ops.fastelu.elu_(input, alpha, scale, input_scale)
        return input
    return torch.ops.fastelu.elu(input, alpha, scale, input_scale)


def _selu_scripted(input: Tensor, inplace: bool, save: Optional[str] = None, alpha: float = SELU_ALPHA,
                   scale: float = SELU_SCALE) -> Tensor:
    # TorchScript reads no float globals, but takes them as defaults
    return _scripted(input, alpha, scale, 1.0, inplace, save)
