"""Python functions mirroring torch.nn.functional.elu, selu and celu, backed by fastelu's ops."""
import numbers

import torch

from . import lowering
from .ops import _C

# The constants of torch.nn.functional.selu (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check(fn, input, alpha=1.0):
    """alpha as a float, after PyTorch's checks: a Python number (bool included) or a 0-d tensor
    (read with a host sync, as PyTorch's Scalar conversion does)."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if type(alpha) is float:
        return alpha
    if isinstance(alpha, numbers.Real) or (isinstance(alpha, torch.Tensor) and alpha.dim() == 0
                                           and not alpha.is_complex()):
        return float(alpha)
    raise TypeError(f"{fn}(): argument 'alpha' (position 2) must be Number, not {type(alpha).__name__}")


def _apply(input, alpha, scale, input_scale, inplace):
    compiling = torch.compiler.is_compiling()
    if compiling and _C is not None and lowering.failed():
        # Without the lowerings (a torch whose Inductor lacks what they need), aten's elu: Inductor
        # fuses it with its pointwise neighbours, where the opaque op would split the graph. (Its
        # own checks apply: fastelu's are C++, which Dynamo cannot trace.)
        if inplace:
            return torch.ops.aten.elu_(input, alpha, scale, input_scale)
        return torch.ops.aten.elu(input, alpha, scale, input_scale)
    if not compiling and _C is not None and type(input) is torch.Tensor and not _function_modes():
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
    return _apply(input, _check("elu", input, alpha), 1.0, 1.0, inplace)


def selu(input, inplace=False):
    """Like torch.nn.functional.selu: scale * elu(x, alpha) with the self-normalising constants."""
    _check("selu", input)
    return _apply(input, SELU_ALPHA, SELU_SCALE, 1.0, inplace)


def celu(input, alpha=1.0, inplace=False):
    """Like torch.nn.functional.celu: x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    alpha = _check("celu", input, alpha)
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")  # torch.nn.functional.celu's
    return _apply(input, alpha, 1.0, 1.0 / alpha, inplace)
