"""The 16-bit backward rows of bench_elu.py alone (2**24 and 2**28, float16 and bfloat16), as
markdown rows: copy (the three-stream add), eager, torch.compile, fastelu, in GB/s.

    python benchmarks/bench_backward.py
"""
import torch

from bench_elu import bench_case

for dtype in (torch.float16, torch.bfloat16):
    for e in (24, 28):
        g = bench_case(f"2**{e}", (2**e,), dtype, "backward")["gbs"]
        print(f"| backward {str(dtype)[6:]} | 2**{e} | {g['copy']:.0f} | {g['eager']:.0f} | {g['compile']:.0f} | "
              f"{g['ours']:.0f} | {100 * g['ours'] / g['copy']:.1f}% | {g['ours'] / g['eager']:.2f} | "
              f"{g['ours'] / g['compile']:.2f} |", flush=True)
