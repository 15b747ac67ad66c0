"""The 16-bit rows of bench_elu.py alone, at 2**24 and 2**28, as markdown rows: copy (copy_, or
the three-stream add for the backward), eager, torch.compile and fastelu in GB/s.

    python benchmarks/studies/bench_16bit.py [forward|backward ...] [--dtypes fp16,bf16]
"""
import argparse
import os
import sys

# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_elu import bench_case
from common import DTYPES

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("modes", nargs="*", default=["forward", "backward"])
ap.add_argument("--dtypes", default="fp16,bf16")
args = ap.parse_args()
for mode in args.modes:
    for name in args.dtypes.split(","):
        for e in (24, 28):
            g = bench_case(f"2**{e}", (2**e,), DTYPES[name], mode)["gbs"]
            print(f"| {mode} {name} | 2**{e} | {g['copy']:.0f} | {g['eager']:.0f} | {g['compile']:.0f} | "
                  f"{g['ours']:.0f} | {100 * g['ours'] / g['copy']:.1f}% | {g['ours'] / g['eager']:.2f} | "
                  f"{g['ours'] / g['compile']:.2f} |", flush=True)
