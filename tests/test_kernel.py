"""Values: the Triton kernel (interpreted on CPU, compiled on GPU) against float64 references."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import DTYPES, assert_close_rel, elu_ref, randn

import elu_op
from elu_op.build import C as _C

SIZES = [1, 7, 1023, 4096, 2**20 + 7]
COEFS = [(1.0, 1.0, 1.0), (elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE, 1.0),
         (0.5, 1.0, 2.0), (-0.7, 1.3, 0.25), (0.0, 2.0, 1.0), (2.0, 1.0, -1.5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_forward_sizes(device, dtype, n):
    x = randn(n, dtype, device)
    assert_close_rel(torch.ops.fastelu.elu(x), elu_ref(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("coefs", COEFS)
def test_forward_coefficients(device, dtype, coefs):
    x = randn(3001, dtype, device)
    got = torch.ops.fastelu.elu(x, *coefs)
    # aten rounds each coefficient to the compute type; tolerate that rounding for float32 and below.
    rtol = 1e-15 if dtype == torch.float64 else max(2e-7 * (1 + abs(coefs[2]) * 16), 4e-7)
    rtol = max(rtol, {torch.float16: 2**-10, torch.bfloat16: 2**-7}.get(dtype, 0))
    assert_close_rel(got, elu_ref(x, *coefs), dtype, rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expm1_accuracy_near_zero(device, dtype):
    # The seed's exp(x) - 1 had relative error 1.0 here; the target is <= 4e-7 for float32.
    x = -torch.logspace(-30, math.log10(20), 200_001, dtype=torch.float64)
    x = x.to(dtype).to(device)
    got = torch.ops.fastelu.elu(x).double().cpu()
    ref = torch.expm1(x.double().cpu())
    rel = ((got - ref).abs() / ref.abs()).max().item()
    assert rel <= (4e-7 if dtype == torch.float32 else 1e-15), rel


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(device, dtype):
    info = torch.finfo(dtype)
    vals = [0.0, -0.0, math.nan, math.inf, -math.inf, info.tiny, -info.tiny, info.tiny / 4, -info.tiny / 4,
            info.max, -info.max, 1e-30, -1e-30, 88.0, -88.0, 700.0, -700.0, -1e-4, 1e-4]
    x = torch.tensor(vals, dtype=torch.float64).to(dtype).to(device)
    for coefs in ((1.0, 1.0, 1.0), (2.0, 1.5, 1.0), (1.0, 1.0, -2.0)):
        assert_close_rel(torch.ops.fastelu.elu(x, *coefs), elu_ref(x, *coefs), dtype)
    # PyTorch's rules: NaN stays NaN, +inf stays +inf, -inf gives -scale*alpha.
    got = torch.ops.fastelu.elu(x, 2.0, 1.5, 1.0).double().cpu()
    assert math.isnan(got[2]) and got[3] == math.inf and got[4] == -3.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("is_result", [False, True])
@pytest.mark.parametrize("coefs", COEFS[:4])
def test_backward(device, dtype, is_result, coefs):
    if is_result and coefs[0] < 0:
        pytest.skip("refused, see test_ops")
    x = randn(4099, dtype, device)
    g = randn(4099, dtype, device, scale=1.0)
    s = torch.ops.fastelu.elu(x, *coefs) if is_result else x
    got = torch.ops.fastelu.elu_backward(g, *coefs, is_result, s)
    # aten's formula in float64 on the same (rounded) inputs
    ref = torch.ops.aten.elu_backward(g.double().cpu(), *coefs, is_result, s.double().cpu())
    # exp(input_scale * x) inherits the float32 rounding of its argument (as aten's does): |t| * eps.
    rtol = {torch.float32: 2e-6, torch.float64: 1e-14, torch.float16: 2**-10, torch.bfloat16: 2**-7}[dtype]
    # From the result, result + alpha*scale cancels as x -> -inf: the float32 rounding of alpha*scale
    # (aten's too) then shows as ~1e-7 absolute, whatever the dtype.
    atol = 1e-6 if is_result and dtype != torch.float64 else 1e-12
    assert_close_rel(got, ref, dtype, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_matches_out_of_place(device, dtype):
    x = randn(5000, dtype, device)
    y = x.clone()
    assert elu_op.elu(y, 0.8, inplace=True) is y
    torch.testing.assert_close(y, torch.ops.fastelu.elu(x, 0.8), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("backward", [False, True])
def test_every_element_written(device, dtype, backward):
    # Straight at the launch, with a poisoned output, at sizes around the block edges.
    for n in (1, 127, 128, 129, 1023, 1024, 1025, 4097):
        x = randn(n, dtype, device)
        g = randn(n, dtype, device) if backward else None
        out = torch.full_like(x, math.nan)
        _C.launch(out, x, g, 1.0, 1.0, 1.0, False, 128, 4)
        assert not out.isnan().any(), n
        # and nothing past n: a poisoned tail stays poisoned
        big = torch.full((n + 64,), math.nan, dtype=dtype, device=device)
        _C.launch(big[:n], x, g, 1.0, 1.0, 1.0, False, 128, 4)
        assert not big[:n].isnan().any() and big[n:].isnan().all()


LAYOUTS = {
    "channels_last": lambda t: t.reshape(4, 6, 5, 7).to(memory_format=torch.channels_last),
    "transposed": lambda t: t.reshape(40, 21).t(),
    "permuted3d": lambda t: t.reshape(6, 20, 7).permute(2, 0, 1),
    "sliced": lambda t: t.reshape(42, 20)[:, ::3],
    "offset": lambda t: t[1:],
    "expanded": lambda t: t[:7].reshape(7, 1).expand(7, 30),
    "zero_d": lambda t: t[0].reshape(()),
    "empty": lambda t: t[:0].reshape(0, 5),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_layouts(device, layout, dtype):
    x = LAYOUTS[layout](randn(840, dtype, device))
    ref = elu_ref(x)
    got = torch.ops.fastelu.elu(x)
    assert_close_rel(got, ref, dtype)
    if x.is_contiguous() or layout in ("channels_last", "transposed", "permuted3d"):
        assert got.stride() == x.stride()  # dense layouts are kept, no copy
    g = randn(x.shape, dtype, device)
    assert_close_rel(torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x),
                     torch.ops.aten.elu_backward(g.double().cpu(), 1.0, 1.0, 1.0, False, x.double().cpu()), dtype)
    if layout != "expanded":  # refused in place, see test_ops
        y = LAYOUTS[layout](randn(840, dtype, device))
        before = y.clone()
        elu_op.elu(y, inplace=True)
        assert_close_rel(y, elu_ref(before), dtype)


def test_inplace_on_a_strided_view_leaves_the_rest(device):
    base = randn((42, 20), torch.float32, device)
    keep = base.clone()
    view = base[:, ::3]
    elu_op.elu(view, inplace=True)
    assert_close_rel(base[:, ::3], elu_ref(keep[:, ::3]), torch.float32)
    mask = torch.ones(20, dtype=torch.bool)
    mask[::3] = False
    assert torch.equal(base[:, mask.to(device)], keep[:, mask.to(device)])


@pytest.mark.parametrize("fn,ref", [(elu_op.elu, F.elu), (elu_op.celu, F.celu)])
def test_functional_alpha(device, fn, ref):
    x = randn(999, torch.float32, device)
    for alpha in (1.0, 0.3, 2, -1.2):
        torch.testing.assert_close(fn(x, alpha), ref(x, alpha), rtol=4e-7, atol=1e-7)


def test_selu_matches_torch(device):
    x = randn(999, torch.float32, device)
    torch.testing.assert_close(elu_op.selu(x), F.selu(x), rtol=4e-7, atol=1e-7)


# ---- regressions: each of these was wrong once ----------------------------------------------------

@pytest.mark.parametrize("dtype,x,input_scale", [(torch.float32, -3.3893e-05, 1.8918e-34),
                                                 (torch.float64, -1e-10, 1e-300)])
def test_expm1_of_a_subnormal_argument_is_exact(device, dtype, x, input_scale):
    # found by hypothesis: x * input_scale subnormal lost its last bits (p halved at k = 0)
    t = torch.tensor([x, -x / 7, x * 3], dtype=dtype, device=device)
    got = torch.ops.fastelu.elu(t, 1.0, 1.0, input_scale)
    want = (t.cpu() * input_scale).where(t.cpu() <= 0, t.cpu())  # expm1(s) rounds to s this small
    assert torch.equal(got.cpu(), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_input_follows_aten_cuda(device, dtype):
    # aten's CUDA kernels: forward branches on x > 0 (NaN -> NaN), backward on x <= 0, so the
    # gradient of a NaN input is grad * scale
    x = torch.tensor([math.nan, -1.0], dtype=dtype, device=device)
    g = torch.tensor([2.0, 2.0], dtype=dtype, device=device)
    assert torch.ops.fastelu.elu(x, 1.0, 1.5, 1.0).isnan()[0]
    for is_result in (False, True):
        assert torch.ops.fastelu.elu_backward(g, 1.0, 1.5, 1.0, is_result, x)[0].item() == 3.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradient_from_result_uses_aten_rounded_coefficient(device, dtype):
    # found by hypothesis on the GPU: result + alpha*scale cancels for x -> -inf, and the compiler
    # fused alpha*scale into an FMA there, unrounded, where aten rounds it: trillions of ulps apart
    alpha, scale = elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE
    x = torch.tensor([-30.0, -20.0, -12.0, -3.0], dtype=dtype, device=device)
    s = torch.ops.fastelu.elu(x, alpha, scale, 1.0)
    g = torch.ones_like(x)
    neg = torch.tensor(alpha, dtype=dtype) * torch.tensor(scale, dtype=dtype)
    want = g.cpu() * (s.cpu() + neg)  # aten: grad * input_scale * (result + negcoef), negcoef rounded
    assert torch.equal(torch.ops.fastelu.elu_backward(g, alpha, scale, 1.0, True, s).cpu(), want)


@pytest.mark.skipif(torch.cuda.is_available(), reason="Triton's interpreter, on the CPU")
def test_interpreter_rounds_as_the_gpu_only_while_fastelu_runs(device, recwarn):
    # Left alone, the interpreter truncates float32 to bfloat16 and flushes bfloat16 subnormals:
    # a quarter of these results were one ulp off. fastelu's launches round as the GPU, with no
    # NumPy warnings for infinities, and leave the interpreter as it was for other Triton code.
    from triton.runtime.interpreter import InterpreterBuilder
    before = InterpreterBuilder.cast_impl, InterpreterBuilder.create_fma
    x = torch.cat([randn(4096, torch.bfloat16, device),
                   torch.tensor([1e-40, -1e-40, -3e-39, float("inf"), -float("inf"), float("nan")],
                                dtype=torch.bfloat16)])
    torch.testing.assert_close(torch.ops.fastelu.elu(x), elu_ref(x).to(torch.bfloat16), rtol=0, atol=0, equal_nan=True)
    assert (InterpreterBuilder.cast_impl, InterpreterBuilder.create_fma) == before
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
