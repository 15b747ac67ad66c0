import os
import sys

import pytest
import torch

# A platform without Triton (macOS, Windows), for tests/test_fallback.py's own runs: importing it fails.
if os.environ.get("FASTELU_TEST_WITHOUT_TRITON") == "1":
    sys.modules["triton"] = None

# Without a GPU the Triton kernels run in Triton's interpreter on CPU tensors; it must be on
# before elu_op (and so the kernels) is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICES = ["cuda"] if torch.cuda.is_available() else ["cpu"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# Largest allowed relative error against a float64 reference: about 1 ulp after rounding to the
# dtype (2**-7 is one ulp of bfloat16's 8 significant bits near a power of two).
RTOL = {torch.float32: 4e-7, torch.float64: 1e-15, torch.float16: 2**-10, torch.bfloat16: 2**-7}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def elu_ref(x, alpha=1.0, scale=1.0, input_scale=1.0):
    """float64 reference of the forward."""
    xd = x.double()
    return torch.where(xd > 0, xd * scale, torch.expm1(xd * input_scale) * (alpha * scale))


def assert_close_rel(got, ref, dtype, rtol=None, atol=0.0):
    """got (of dtype) is within rtol of the float64 reference rounded to dtype (inf where it overflows)."""
    rtol = RTOL[dtype] if rtol is None else rtol
    assert got.dtype == dtype
    assert got.shape == ref.shape
    ref = ref.double().cpu().to(dtype).double()
    torch.testing.assert_close(got.double().cpu(), ref, rtol=rtol, atol=atol, equal_nan=True)


def randn(shape, dtype, device, scale=4.0):
    """Fresh random normal data, spread so that both branches and the far negative tail are hit."""
    return (torch.randn(shape, dtype=torch.float64) * scale).to(dtype).to(device)
