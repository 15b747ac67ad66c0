"""Python functions mirroring torch.nn.functional.elu, selu and celu, backed by fastelu's ops."""
import numbers

import torch

from . import _C, lowering, ops

# The constants of torch.nn.functional.selu (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check(fn, input, alpha=1.0):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{fn}(): input must be a Tensor, not {type(input).__name__}")
    if type(alpha) is not float and (isinstance(alpha, (bool, torch.Tensor)) or not isinstance(alpha, numbers.Real)):
        raise TypeError(f"{fn}(): alpha must be a real number (int or float), not {type(alpha).__name__}")


def _apply(input, alpha, scale, input_scale, inplace):
    compiling = torch.compiler.is_compiling()
    if compiling and not lowering.install():
        # Without the lowerings (a torch whose Inductor lacks what they need), aten's elu: Inductor
        # fuses it with its pointwise neighbours, where the opaque op would split the graph.
        ops.check_dtype(input)
        if inplace:
            return torch.ops.aten.elu_(input, alpha, scale, input_scale)
        return torch.ops.aten.elu(input, alpha, scale, input_scale)
    if not compiling and type(input) is torch.Tensor and not _function_modes():
        # The op through the dispatcher, as torch.ops.fastelu.elu would call it, minus the
        # microsecond its Python wrapper costs (torch function modes and subclasses need that).
        if inplace:
            _C.elu_(input, alpha, scale, input_scale)
            return input
        return _C.elu(input, alpha, scale, input_scale)
    if inplace:
        torch.ops.fastelu.elu_(input, alpha, scale, input_scale)
        return input
    return torch.ops.fastelu.elu(input, alpha, scale, input_scale)


_function_modes = torch._C._is_torch_function_mode_enabled


def elu(input, alpha=1.0, inplace=False):
    """Like torch.nn.functional.elu: x where x > 0, else alpha * (exp(x) - 1)."""
    _check("elu", input, alpha)
    return _apply(input, float(alpha), 1.0, 1.0, inplace)


def selu(input, inplace=False):
    """Like torch.nn.functional.selu: scale * elu(x, alpha) with the self-normalising constants."""
    _check("selu", input)
    return _apply(input, SELU_ALPHA, SELU_SCALE, 1.0, inplace)


def celu(input, alpha=1.0, inplace=False):
    """Like torch.nn.functional.celu: x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    _check("celu", input, alpha)
    if alpha == 0:
        raise ZeroDivisionError("ZeroDivisionError")  # what torch.nn.functional.celu raises
    return _apply(input, float(alpha), 1.0, 1.0 / alpha, inplace)
