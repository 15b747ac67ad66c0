"""Launch shapes for the 16-bit kernels at one large size, beside copy_ (torch.add for backward).

    python benchmarks/studies/shape_sweep.py [log2 of elements, default 27]
"""
import os
import sys

import torch
from triton.testing import do_bench

# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import launch
from elu_op import configs

n = 2**int(sys.argv[1]) if len(sys.argv) > 1 else 2**27
shapes = [(256, 2), (512, 1)] + configs.CANDIDATES
print("| dtype | mode | copy GB/s | " + " | ".join(f"{b}/{w}" for b, w in shapes) + " |")
for dtype in (torch.bfloat16, torch.float16):
    for backward in (False, True):
        x = torch.randn(n, device="cuda", dtype=dtype)
        g = torch.randn_like(x) if backward else None
        out = torch.empty_like(x)
        streams = 3 if backward else 2
        copy = (lambda: torch.add(x, g, out=out)) if backward else (lambda: out.copy_(x))
        fns = {"copy": copy}
        for b, w in shapes:
            fns[b, w] = lambda b=b, w=w: launch(out, x, g, b, w)
        best = {k: min(do_bench(f, warmup=10, rep=40, return_mode="median") for _ in range(2)) for k, f in fns.items()}
        gbs = {k: streams * n * 2 / v / 1e6 for k, v in best.items()}
        print(f"| {str(dtype)[6:]} | {'backward' if backward else 'forward'} | {gbs['copy']:.0f} | "
              + " | ".join(f"{gbs[s]:.0f}" for s in shapes) + " |", flush=True)
