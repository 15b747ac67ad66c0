import os

import numpy as np
import pytest
import torch

# Without a GPU the Triton kernels run in Triton's interpreter on CPU tensors; it must be on
# before elu_op (and so the kernels) is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _faithful_bfloat16_casts():
    """The interpreter converts float32 to bfloat16 by truncation, where GPUs round to nearest
    even, and bfloat16 to float32 with subnormals and NaN mangled: make it convert as the hardware
    does (torch's conversions), so that bfloat16 results can be checked to the last bit on the CPU."""
    import triton.language as tl
    from triton.runtime import interpreter

    cast = interpreter.InterpreterBuilder.cast_impl

    def cast_impl(self, src, dst_type):
        if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
            rounded = torch.from_numpy(np.ascontiguousarray(src.data)).to(torch.bfloat16)
            return interpreter.TensorHandle(rounded.view(torch.int16).numpy().view(np.uint16), dst_type.scalar)
        if src.dtype.scalar == tl.bfloat16 and dst_type.scalar == tl.float32:  # exact: the same bits, widened
            return interpreter.TensorHandle((src.data.astype(np.uint32) << 16).view(np.float32), dst_type.scalar)
        return cast(self, src, dst_type)

    interpreter.InterpreterBuilder.cast_impl = cast_impl


if os.environ.get("TRITON_INTERPRET") == "1":
    _faithful_bfloat16_casts()

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
