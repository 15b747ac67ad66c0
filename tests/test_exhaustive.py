"""Every float16 and every bfloat16 input through the kernel (interpreted on CPU, compiled on GPU).

The rule, per element: the result is aten's result on the same device, or the correctly rounded
value of the exact result (NaN where that is NaN). The exact result is aten's formula evaluated in
float64 on the float32 coefficients and the float32 product x*input_scale that aten forms.

Gradients take one exception: where the exact value lies within float32's own rounding error
(AMBIGUOUS, relative) of a 16-bit rounding midpoint, a float32 computation cannot decide the
rounding, and either neighbour is accepted. grad * coefficient * exp(t) rounds three times in
float32; even with exp correctly rounded, aten's order of products misrounds 0 to 3 of the 65,536
float16 inputs per gradient value here, and fastelu does on others. bfloat16 never comes that close.
"""
import pytest
import torch
from conftest import DEVICES

import elu_op

SELU_ALPHA, SELU_SCALE = elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE
# The last three straddle the bounds of float16's cheaper math (coefficients.NORMAL): its clamp,
# under a large input_scale, and past them, the guarded math (a large alpha; for the forward, a
# negative one).
CASES = {"elu": (1.0, 1.0, 1.0), "elu alpha 0.3": (0.3, 1.0, 1.0), "selu": (SELU_ALPHA, SELU_SCALE, 1.0),
         "celu alpha 0.5": (0.5, 1.0, 2.0), "celu alpha 1.7": (1.7, 1.0, 1 / 1.7),
         "celu alpha 2**-20": (2.0**-20, 1.0, 2.0**20), "elu alpha 2**41": (2.0**41, 1.0, 1.0),
         "elu alpha -0.5": (-0.5, 1.0, 1.0)}
GRADS = (1.0, -0.6875, 3.3)


def every(dtype, device):
    return torch.arange(-2**15, 2**15, dtype=torch.int32).to(torch.int16).view(dtype).to(device)


def _f32(v):
    return torch.tensor(v, dtype=torch.float32).double()


def exact(x, g, alpha, scale, input_scale, backward):
    pos, neg, ipt = _f32(scale), _f32(alpha) * _f32(scale), _f32(input_scale)
    neg = neg.float().double()  # aten forms alpha*scale in float32
    xd = x.cpu().double()
    t = (x.cpu().float() * ipt.float()).double()
    if not backward:
        return torch.where(xd > 0, xd * pos, torch.expm1(t) * neg)
    gd = g.cpu().double()
    return torch.where(xd <= 0, gd * ipt * neg * torch.exp(t), gd * pos)


AMBIGUOUS = 2.0**-22  # three float32 roundings and exp's error


def check(got, aten, exact_value, ambiguous=0.0):
    got, aten, want = got.cpu(), aten.cpu(), exact_value.to(got.dtype)
    bits = lambda t: t.view(torch.int16)  # noqa: E731
    ok = (bits(got) == bits(aten)) | (bits(got) == bits(want)) | (got.isnan() & want.isnan())
    if ambiguous:
        # either neighbour of a midpoint that the exact value lies within `ambiguous` of
        below, above = (exact_value * (1 - ambiguous)).to(got.dtype), (exact_value * (1 + ambiguous)).to(got.dtype)
        ok |= (bits(got) == bits(below)) | (bits(got) == bits(above))
    bad = (~ok).nonzero().flatten()
    assert bad.numel() == 0, (f"{bad.numel()} inputs break the rule, e.g. result {got[bad[:3]].tolist()}, "
                              f"aten {aten[bad[:3]].tolist()}, correctly rounded {want[bad[:3]].tolist()}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", CASES)
def test_forward_every_input(device, dtype, case):
    coefs = CASES[case]
    x = every(dtype, device)
    got = torch.ops.fastelu.elu(x, *coefs)
    check(got, torch.ops.aten.elu(x, *coefs), exact(x, None, *coefs, backward=False))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", CASES)
def test_backward_every_input(device, dtype, case):
    coefs = CASES[case]
    x = every(dtype, device)
    for value in GRADS:
        g = torch.full_like(x, value)
        got = torch.ops.fastelu.elu_backward(g, *coefs, False, x)
        check(got, torch.ops.aten.elu_backward(g, *coefs, False, x), exact(x, g, *coefs, backward=True), AMBIGUOUS)
