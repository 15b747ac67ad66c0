"""The seed's problem (4096 x 393216 float32) and 2**28 without KernelBench's harness: copy_, F.elu,
elu_op.elu and fastelu's C++ launch in each of several (BLOCK, num_warps), on torch.rand and
torch.randn inputs; do_bench medians (L2 flushed), best of 3 interleaved rounds, ms.

    python benchmarks/studies/seed_problem_sweep.py
"""
import os
import sys

import torch
import torch.nn.functional as F
from triton.testing import do_bench

import elu_op
# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import launch

SHAPES = ((512, 4), (1024, 4), (1024, 8), (2048, 8), (4096, 8), (256, 2), (2048, 4))

for n in (4096 * 393216, 2**28):
    for draw in (torch.rand, torch.randn):
        x = draw(n, device="cuda")
        out = torch.empty_like(x)
        fns = {"copy_": lambda: out.copy_(x), "F.elu": lambda: F.elu(x), "elu_op.elu": lambda: elu_op.elu(x)}
        for b, w in SHAPES:
            fns[f"{b}/{w}"] = lambda b=b, w=w: launch(out, x, None, b, w)
        times = {k: [] for k in fns}
        for _ in range(3):
            for k, f in fns.items():
                times[k].append(do_bench(f, warmup=5, rep=60, return_mode="median"))
        print(f"| {n} | {draw.__name__} | " + " | ".join(f"{min(v):.3f}" for v in times.values()) + " |", flush=True)
