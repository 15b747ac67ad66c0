"""fastelu: the ELU family (ELU, SELU, CELU) as Triton kernels behind torch.library.

Importing registers torch.ops.fastelu.elu, elu_ and elu_backward, and the first import with a
given torch compiles their C++ part (build.py).
"""
from . import ops
from .functional import celu, celu_, elu, elu_, selu, selu_
from .aten_override import disable, enable, enabled, is_enabled
from .inductor import set_recompute
from .nn import FastCELU, FastELU, FastSELU, patch, unpatch

__all__ = ["ops", "elu", "selu", "celu", "elu_", "selu_", "celu_", "FastELU", "FastSELU", "FastCELU", "patch",
           "unpatch", "enable", "disable", "enabled", "is_enabled", "set_recompute"]
__version__ = "0.1.0"
