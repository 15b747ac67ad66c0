"""What a launch shape's grid alone costs at one size: a Triton kernel that only copies (load,
store; unmasked full blocks, as elu_kernel) beside fastelu's forward in the same BLOCK/num_warps
and copy_, 16-bit, interleaved rounds; % of copy_ of the median of each's do_bench medians.
--math: the bfloat16 forward's math instead, in each shape: the identity kernel, fastelu's kernel
with the math it ships (EXP2, the hardware's ex2) and with float16's (NORMAL, no ex2), each replayed
from a CUDA graph (Triton's Python launch costs more than a 10 us kernel).

    python benchmarks/studies/grid_floor.py [log2 of elements, default 24] [--rounds 11] [--math]
"""
import argparse
import os
import statistics
import sys

import torch
import triton
import triton.language as tl

# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import graphed, launch, time_all

from elu_op.launch import run

SHAPES = ((512, 2), (1024, 2), (1024, 4), (2048, 4), (2048, 8), (4096, 8))


@triton.jit
def identity_kernel(out_ptr, x_ptr, n, BLOCK: tl.constexpr):
    start = tl.program_id(0) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    if start + BLOCK <= n:
        tl.store(out_ptr + offs, tl.load(x_ptr + offs))
    else:
        tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log2", nargs="?", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--math", action="store_true")
    args = ap.parse_args()
    n = 2**args.log2
    if args.math:
        return math_rows(n, args)
    print(f"2**{args.log2} elements, {args.rounds} rounds: % of copy_, identity / fastelu in each BLOCK/num_warps")
    for dtype in (torch.bfloat16, torch.float16):
        x = torch.randn(n, device="cuda", dtype=dtype)
        out = torch.empty_like(x)
        fns = {"copy": lambda: out.copy_(x)}
        for b, w in SHAPES:
            fns["identity", b, w] = lambda b=b, w=w: identity_kernel[(triton.cdiv(n, b),)](out, x, n, b, num_warps=w)
            fns["elu", b, w] = lambda b=b, w=w: launch(out, x, None, b, w)
        med = time_all(fns, args.rounds, statistics.median)
        cells = " | ".join(f"{b}/{w} {100 * med['copy'] / med['identity', b, w]:.1f} / "
                           f"{100 * med['copy'] / med['elu', b, w]:.1f}" for b, w in SHAPES)
        print(f"| {str(dtype)[6:]} | copy {4 * n / med['copy'] / 1e6:.0f} GB/s | {cells} |", flush=True)


def math_rows(n, args):
    print(f"2**{args.log2} elements, bfloat16 forward, {args.rounds} rounds: % of copy_, "
          "identity / EXP2 / NORMAL in each BLOCK/num_warps")
    x = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    fns = {"copy": graphed(lambda: out.copy_(x))}
    for b, w in SHAPES:
        fns["identity", b, w] = graphed(lambda b=b, w=w: identity_kernel[(triton.cdiv(n, b),)](out, x, n, b,
                                                                                            num_warps=w))
        for normal in (False, True):
            fns[normal, b, w] = graphed(lambda b=b, w=w, normal=normal: run(out, x, None, n, 1.0, 1.0, 1.0, False,
                                                                            False, normal, True, b, w, False))
    med = time_all(fns, args.rounds, statistics.median)
    cells = " | ".join(f"{b}/{w} " + " / ".join(f"{100 * med['copy'] / med[k, b, w]:.1f}"
                                                for k in ("identity", False, True)) for b, w in SHAPES)
    print(f"| copy {4 * n / med['copy'] / 1e6:.0f} GB/s | {cells} |", flush=True)


if __name__ == "__main__":
    main()
