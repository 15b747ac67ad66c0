"""Jagged nested tensors (``torch.nested.nested_tensor(..., layout=torch.jagged)``): fastelu's ops
run on their values, as PyTorch's own pointwise ops do.

A jagged nested tensor keeps its elements in one dense buffer (``values()``) beside its offsets, so
an elementwise op is the op on that buffer, wrapped with the same offsets: the result has the
input's ragged size (the same nested int, so it combines with the input). The rules below are
torch_dispatch rules of the nested tensor class, below autograd: fastelu's autograd (C++) records
the op on the nested tensor, and its backward meets the rule for elu_backward. Like PyTorch's own
jagged op table, they build the result with the class's private constructor and metadata.
"""
import torch



def _wrap_like(values, like):
    from torch.nested._internal.nested_tensor import NestedTensor
    from torch.nested._internal.ops import extract_kwargs
    return NestedTensor(values, **extract_kwargs(like))


def elu(cls, func, types, args, kwargs):
    return _wrap_like(func(args[0]._values, *args[1:], **kwargs), args[0])


def elu_inplace(cls, func, types, args, kwargs):
    func(args[0]._values, *args[1:], **kwargs)


def elu_backward(cls, func, types, args, kwargs):
    grad, s = args[0], args[5]
    if not (isinstance(grad, cls) and isinstance(s, cls) and grad.shape == s.shape):
        # Values of equal shape from two ragged structures would pair the wrong elements.
        raise ValueError(f"fastelu: grad_output has shape {tuple(grad.shape)} but self_or_result has "
                         f"{tuple(s.shape)}; they must match (nested tensors of one ragged structure)")
    rest = [a._values if a is s else a for a in args[1:]]
    return _wrap_like(func(grad._values, *rest, **kwargs), grad)


def register(lib, rules):
    """rules ({op: rule}, ops.py's table) as the ops' torch_dispatch rules for jagged nested tensors,
    once PyTorch's nested tensor class is loaded."""
    from torch.nested._internal.nested_tensor import NestedTensor
    for op, rule in rules.items():
        torch.library.register_torch_dispatch(f"fastelu::{op}", NestedTensor, rule, lib=lib)
