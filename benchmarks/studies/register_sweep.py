"""The 16-bit kernels at one large size under ptxas's register cap (Triton's maxnreg): each launch
shape as compiled, capped at 32 and at 40, beside copy_ (torch.add for the backward), and a
one-path kernel (the same math, without the masked copy of the block or float16's guarded math)
as the bound. Launched through Triton, not fastelu's C++, so that the cap can vary.

    python benchmarks/studies/register_sweep.py [log2 of elements, default 27]
"""
import sys

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

from elu_op import kernel as K
from elu_op.kernel import arguments, elu_kernel

SHAPES = ((1024, 2), (1024, 4), (2048, 4), (2048, 8), (4096, 8))


@triton.jit
def one_path(out_ptr, x_ptr, g_ptr, negcoef, poscoef, negiptcoef, BLOCK: tl.constexpr, BACKWARD: tl.constexpr):
    # forward: NORMAL's math (for bfloat16 too), backward: the guarded exp; float32 scalars
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs).to(tl.float32)
    if BACKWARD:
        g = tl.load(g_ptr + offs).to(tl.float32)
        y = tl.where(x <= 0, g * negiptcoef * negcoef * K.exp(x * negiptcoef, K.SHORT), g * poscoef)
    else:
        y = tl.where(x >= 0, x * poscoef, K.scaled_expm1(x * negiptcoef, negcoef))
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty))


def gbs(f, n, streams):
    return streams * 2 * n / min(do_bench(f, rep=100) for _ in range(2)) / 1e6


n = 2**int(sys.argv[1]) if len(sys.argv) > 1 else 2**27
print("| dtype | mode | BLOCK/warps | copy GB/s | as compiled | at most 32 | at most 40 | one path |\n"
      "|---|---|---|---|---|---|---|---|")
for dtype, backward in ((torch.float16, False), (torch.bfloat16, True), (torch.float16, True), (torch.bfloat16, False)):
    x = torch.randn(n, device="cuda", dtype=dtype)
    g = torch.randn_like(x)
    out = torch.empty_like(x)
    streams = 3 if backward else 2
    copy = gbs((lambda: torch.add(x, g, out=out)) if backward else (lambda: out.copy_(x)), n, streams)
    for b, w in SHAPES:
        cells = []
        for cap in (None, 32, 40):
            def call(b=b, w=w, cap=cap):
                args = arguments(out, x, g, negcoef=1.0, BLOCK=b, BACKWARD=backward,
                                 NORMAL_EXP=dtype == torch.float16, UNIT_INPUT=True)
                return elu_kernel[(n // b,)](**args, num_warps=w, maxnreg=cap)
            compiled = call()
            speed = gbs(call, n, streams)
            spills = f", {compiled.n_spills} spilled" if compiled.n_spills else ""
            cells.append(f"{speed:.0f} ({100 * speed / copy:.1f}%; {compiled.n_regs} regs{spills})")
        speed = gbs(lambda b=b, w=w: one_path[(n // b,)](out, x, g, 1.0, 1.0507, 1.0, BLOCK=b, BACKWARD=backward,
                                                         num_warps=w), n, streams)
        cells.append(f"{speed:.0f} ({100 * speed / copy:.1f}%)")
        print(f"| {str(dtype)[6:]} | {'backward' if backward else 'forward'} | {b}/{w} | {copy:.0f} | "
              + " | ".join(cells) + " |", flush=True)
