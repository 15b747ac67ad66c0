"""How fastelu's ops leave PyTorch: as aten's own ops, so that exported models carry no fastelu.

- torch.export.export keeps fastelu's ops (AOTInductor then compiles them with fastelu's
  lowering); ep.run_decompositions() turns them into aten's: selu, celu or elu, whichever the
  coefficients are, and elu_backward. It finds these decompositions as any custom op's: they are
  the ops' CompositeImplicitAutograd kernels, registered in Python only, so that eager calls never
  see them and the C++ kernels run.
- torch.onnx.export(dynamo=True) decomposes the same way, so the ONNX graph holds Elu, Selu and
  Celu nodes; torch.onnx.export(dynamo=False) traces the ops, and onnx_symbolic() maps them to the
  same nodes (register_onnx(), once torch.onnx is imported).

Elsewhere, torch.compile included, the kernels return NotImplemented, which tells the tracer to
keep the op as it is.
"""
import sys

import torch
from torch._C import DispatchKey

from .coefficients import SELU_ALPHA, SELU_SCALE

aten = torch.ops.aten


def _own_kernels():
    """Whether these functions are the ops' own composite kernels in this build state (the
    registration table, ops.TABLE: where the C++ part is missing, the ops are aten's)."""
    from . import ops  # ops imports this module
    return ops.TABLE["CompositeImplicitAutograd"][ops.STATE] is not None


def _decomposing():
    """Whether the ops should become aten's here: always where they are their own decompositions,
    and while torch.export decomposes them (it installs Python autograd kernels on the ops it
    decomposes for as long as it does)."""
    return _own_kernels() or DispatchKey.AutogradCPU in torch.ops.fastelu.elu.default.py_kernels


def _onnx_exporting():
    onnx = sys.modules.get("torch.onnx")
    return onnx is not None and onnx.is_in_onnx_export()


def concrete(*coefs):
    """Whether every coefficient has a value here (not a symbol of a graph that torch.compile traces,
    which stays symbolic: one graph for every value)."""
    return not any(isinstance(c, (torch.SymFloat, torch.SymInt)) for c in coefs)


def is_selu(alpha, scale, input_scale):
    return concrete(alpha, scale, input_scale) and (alpha, scale, input_scale) == (SELU_ALPHA, SELU_SCALE, 1.0)


def is_celu(alpha, scale, input_scale):
    return (concrete(alpha, scale, input_scale) and scale == 1.0 and alpha != 0 and input_scale != 1.0
            and input_scale == 1.0 / alpha)


def elu(self, alpha=1.0, scale=1.0, input_scale=1.0):
    """fastelu.elu as the aten op that computes the same: what F.selu, F.celu or F.elu give."""
    if not _decomposing():
        return NotImplemented
    if is_selu(alpha, scale, input_scale):
        return aten.selu.default(self)
    if is_celu(alpha, scale, input_scale):
        return aten.celu.default(self, alpha)
    if _onnx_exporting() and input_scale != 1.0:
        # ONNX's translation of aten.elu scales positive inputs by input_scale as well.
        negative = torch.expm1(self * input_scale) * (alpha * scale)
        return torch.where(self > 0, self * scale, negative)
    return aten.elu.default(self, alpha, scale, input_scale)


def elu_(self, alpha=1.0, scale=1.0, input_scale=1.0):
    """fastelu.elu_ as fastelu.elu and a copy while torch.export decomposes it (so that a table
    without fastelu.elu keeps fastelu's kernel for in-place calls too); where the ops are aten's (no
    C++), as aten's own in-place op, which autograd sees: it saves the result, as for F.elu_ (a
    copy into self would overwrite the input that elu saved)."""
    if not _decomposing():
        return NotImplemented
    if not _own_kernels() or (_onnx_exporting() and input_scale != 1.0):
        self.copy_(torch.ops.fastelu.elu.default(self, alpha, scale, input_scale))
    elif is_selu(alpha, scale, input_scale):
        aten.selu_.default(self)
    elif is_celu(alpha, scale, input_scale):
        aten.celu_.default(self, alpha)
    else:
        aten.elu_.default(self, alpha, scale, input_scale)


def elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result):
    if not _decomposing():
        return NotImplemented
    return aten.elu_backward.default(grad_output, alpha, scale, input_scale, is_result, self_or_result)


def onnx_symbolic(g, self, alpha, scale, input_scale):
    """fastelu::elu in TorchScript's ONNX export: Elu, Selu or Celu where the coefficients are
    theirs, else the same math in standard ONNX ops."""
    from torch.onnx.symbolic_helper import _maybe_get_const
    alpha, scale, input_scale = (float(_maybe_get_const(v, "f")) for v in (alpha, scale, input_scale))
    if is_selu(alpha, scale, input_scale):
        return g.op("Selu", self, alpha_f=alpha, gamma_f=scale)
    if is_celu(alpha, scale, input_scale) and g.opset >= 12 and self.type().dtype() == torch.float32:
        return g.op("Celu", self, alpha_f=alpha)  # ONNX's Celu takes float32 only
    if input_scale == 1.0:
        out = g.op("Elu", self, alpha_f=alpha)
        return out if scale == 1.0 else g.op("Mul", out, _like(g, scale, self))
    expm1 = g.op("Sub", g.op("Exp", g.op("Mul", self, _like(g, input_scale, self))), _like(g, 1.0, self))
    negative = g.op("Mul", expm1, _like(g, alpha * scale, self))
    positive = g.op("Mul", self, _like(g, scale, self))
    return g.op("Where", g.op("Greater", self, _like(g, 0.0, self)), positive, negative)


def _like(g, value, tensor):
    return g.op("Constant", value_t=torch.tensor(value, dtype=tensor.type().dtype()))


def register_onnx():
    """TorchScript's ONNX exporter: its symbolic for fastelu::elu (elu_ is traced as elu and a
    copy_, csrc/ops.cpp). Called once torch.onnx is imported: importing it costs seconds."""
    torch.onnx.register_custom_op_symbolic("fastelu::elu", onnx_symbolic, 9)
