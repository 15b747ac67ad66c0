"""Property-based tests: fastelu against PyTorch on whatever hypothesis can draw.

Budget: FASTELU_EXAMPLES examples per property (CI's interpreter run uses the default; the device
run raises it).
"""
import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import elu_op

EXAMPLES = int(os.environ.get("FASTELU_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
INT = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
       torch.float64: torch.int64}
coef = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, elu_op.functional.SELU_ALPHA]),
                 st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False))


def _specials(dtype):
    info = torch.finfo(dtype)
    return [0.0, -0.0, float("nan"), float("inf"), float("-inf"), info.tiny, -info.tiny, info.tiny / 8,
            -info.tiny / 8, info.max, -info.max, info.max / 3, -1e-7, 1e-7, -30.0, -88.0, 700.0]


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 8]), min_size=0, max_size=5))
    n = 1
    for s in shape:
        n *= s
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(n, generator=gen, dtype=torch.float64) * draw(st.sampled_from([1e-3, 1.0, 4.0, 40.0]))
    if n:
        specials = torch.tensor(_specials(dtype), dtype=torch.float64)
        k = draw(st.integers(0, min(n, 6)))
        idx = torch.randint(0, n, (k,), generator=gen)
        base[idx] = specials[torch.randint(0, len(specials), (k,), generator=gen)]
    x = base.to(dtype).reshape(shape).to(DEVICE)
    layout = draw(st.sampled_from(["contiguous", "transpose", "slice", "expand", "channels_last", "permute"]))
    if layout == "transpose" and x.dim() >= 2:
        x = x.transpose(-1, -2)
    elif layout == "slice" and x.dim() >= 1:
        x = x[..., ::2]
    elif layout == "expand" and x.dim() >= 1 and x.shape[0] == 1:
        x = x.expand(3, *x.shape[1:])
    elif layout == "channels_last" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "permute" and x.dim() >= 2:
        x = x.permute(*reversed(range(x.dim())))
    return x


def _coefs(dtype, alpha, scale, input_scale):
    # aten rounds each coefficient to the compute type, then forms alpha*scale there
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    pos = torch.tensor(scale, dtype=ct)
    return ct, pos, torch.tensor(alpha, dtype=ct) * pos, torch.tensor(input_scale, dtype=ct)


def reference(x, alpha, scale, input_scale):
    """aten's CUDA forward with aten's roundings (coefficients, x*input_scale, overflow of expm1 in
    the compute type), evaluated in float64 after that."""
    ct, pos, neg, ipt = _coefs(x.dtype, alpha, scale, input_scale)
    xc = x.cpu().to(ct)
    e = torch.expm1((xc * ipt).double())
    e = torch.where(e > torch.finfo(ct).max, torch.inf, e)
    return torch.where(xc > 0, xc.double() * pos.double(), e * neg.double())


def backward_reference(g, s, alpha, scale, input_scale, is_result):
    """aten's CUDA elu_backward (CPU's vectorized path sends NaN the other way): the products in the
    compute type, in aten's order (they may underflow, as aten's do), exp from float64."""
    ct, pos, neg, ipt = _coefs(s.dtype, alpha, scale, input_scale)
    sc, gc = s.cpu().to(ct), g.cpu().to(ct)
    if is_result:
        negative = gc * ipt * (sc + neg)
    else:
        negative = gc * ipt * neg * torch.exp((sc * ipt).double()).to(ct)
    return torch.where(sc <= 0, negative, gc * pos).double()


def ulps(got, ref):
    """Distance in units of the last place of got's dtype between got and ref rounded to that dtype."""
    got = got.cpu()
    ref = ref.to(got.dtype)
    a, b = got.view(INT[got.dtype]).long(), ref.view(INT[got.dtype]).long()
    mag = torch.iinfo(INT[got.dtype]).max
    a = torch.where(a < 0, -(a & mag), a)
    b = torch.where(b < 0, -(b & mag), b)
    d = (a - b).abs()
    both_nan = got.isnan() & ref.isnan()
    return torch.where(both_nan, torch.zeros_like(d), torch.where(got.isnan() | ref.isnan(), mag, d))


def assert_within_2_ulp(got, ref):
    d = ulps(got, ref)
    assert d.numel() == 0 or d.max() <= 2, (d.max(), got.dtype)


def same_bits(a, b):
    return a.shape == b.shape and torch.equal(a.cpu().contiguous().view(INT[a.dtype]),
                                              b.cpu().contiguous().view(INT[b.dtype]))


@SETTINGS
@given(x=tensors(), alpha=coef, scale=coef, input_scale=coef)
def test_forward_matches_pytorch(x, alpha, scale, input_scale):
    before = x.clone()
    got = torch.ops.fastelu.elu(x, alpha, scale, input_scale)
    assert same_bits(x, before)  # the input is untouched
    assert got.shape == x.shape and got.dtype == x.dtype
    ref = reference(x, alpha, scale, input_scale)
    assert_within_2_ulp(got, ref)
    # Exact where PyTorch is exact: the positive branch with scale 1, and the special values.
    xc = x.cpu()
    if scale == 1.0:
        keep = xc > 0
        assert same_bits(got.cpu()[keep], xc[keep])
    assert (got.cpu()[xc.isnan()].isnan()).all()
    y = x.clone()
    if torch._debug_has_internal_overlap(y) != 1:
        torch.ops.fastelu.elu_(y, alpha, scale, input_scale)
        assert same_bits(y, got)  # in place computes the same bits


@SETTINGS
@given(x=tensors(), alpha=coef, scale=coef, input_scale=coef, is_result=st.booleans())
def test_backward_matches_pytorch(x, alpha, scale, input_scale, is_result):
    if is_result:
        alpha, input_scale = abs(alpha), abs(input_scale)
        s = torch.ops.fastelu.elu(x, alpha, scale, input_scale)
    else:
        s = x
    g = torch.randn(x.shape, dtype=torch.float64).to(x.dtype).to(DEVICE)
    g_before, s_before = g.clone(), s.clone()
    got = torch.ops.fastelu.elu_backward(g, alpha, scale, input_scale, is_result, s)
    assert same_bits(g, g_before) and same_bits(s, s_before)
    want = backward_reference(g, s, alpha, scale, input_scale, is_result)
    # The reference rounds as aten does, so only exp differs (ours to about one ulp) and the last
    # product's rounding.
    assert_within_2_ulp(got, want)


@SETTINGS
@given(x=tensors(), alpha=st.floats(0.0, 3.0), inplace=st.booleans())
def test_autograd_matches_pytorch(x, alpha, inplace):
    if x.dtype not in (torch.float32, torch.float64) or not x.isfinite().all():
        return
    a = x.detach().clone().requires_grad_()
    b = x.detach().clone().requires_grad_()
    ya = elu_op.elu(a * 1, alpha, inplace=inplace)
    yb = torch.nn.functional.elu(b * 1, alpha, inplace=inplace)
    g = torch.randn(ya.shape, dtype=x.dtype).to(DEVICE)
    ga, = torch.autograd.grad(ya, a, g)
    gb, = torch.autograd.grad(yb, b, g)
    # In place, the gradient comes from the result: result + alpha cancels for x -> -inf, so one ulp
    # of difference in the forward result shows as ~1e-7 absolute.
    torch.testing.assert_close(ga, gb, rtol=2e-6, atol=1e-6)
