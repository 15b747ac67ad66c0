"""The backward whose gradient is laid out as a transpose of the saved view, in each tile shape of
the transposing tile (csrc/launch.cpp's transposed_dim), beside torch.add over the same views,
aten's elu_backward and its compiled form (static shapes, replayed from a CUDA graph).

Views: bench_layouts.py's permuted slice (a contiguous gradient for
`base.view(64, -1, 1024).permute(2, 0, 1)[::2]`: the saved view steps by 2 elements where the
gradient steps by 1), a plain transpose (`base.t()` of a (2**log2 / 16384) x 16384 base) and a
channels_last activation of 64 channels, 32 x 32 (a CNN's, whose gradient comes contiguous).
Times: the median of interleaved rounds of do_bench medians (L2 flushed), us.

    python benchmarks/studies/transpose_tile.py [--log2 24,27] [--rounds 7]
"""
import argparse
import os
import statistics
import sys

import torch
import triton

# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import DTYPES, graphed, launch, time_all

VIEWS = {"permute(2, 0, 1)[::2]": lambda b: b.view(64, -1, 1024).permute(2, 0, 1)[::2], "t()": lambda b: b.t(),
         "channels_last": lambda b: b.view(-1, 32, 32, 64).permute(0, 3, 1, 2)}
# (BLOCK, num_warps) the launch is given; the tile is square up to BLOCK // 4 a side
SHAPES = ((2048, 4), (4096, 4), (4096, 8), (8192, 8), (16384, 8))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2", default="24,27")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}; us, "
          f"median of {args.rounds} rounds; % = torch.add's time / fastelu's")
    print("| view | dtype | elements | add | F.elu | compile | fastelu | % of add | x F.elu | x compile | "
          + " | ".join(f"{b}/{w}" for b, w in SHAPES) + " |")
    print("|---" * (10 + len(SHAPES)) + "|")
    for log2 in (int(v) for v in args.log2.split(",")):
        for name, make in VIEWS.items():
            for dtype in DTYPES.values():
                torch._dynamo.reset()
                s = make(torch.randn(2**log2 // 16384, 16384, device="cuda", dtype=dtype))
                g = torch.randn(s.shape, device="cuda", dtype=dtype)
                out = torch.empty_like(g)
                compiled = torch.compile(lambda a, b: torch.ops.aten.elu_backward(a, 1.0, 1.0, 1.0, False, b),
                                         dynamic=False)
                fns = {"add": lambda: torch.add(s, g),
                       "eager": lambda: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, s),
                       "compile": graphed(lambda: compiled(g, s)),
                       "fastelu": lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, s)}
                for b, w in SHAPES:
                    fns[b, w] = lambda b=b, w=w: launch(out, s, g, b, w)
                t = time_all(fns, args.rounds, statistics.median)
                us = {k: 1000 * v for k, v in t.items()}
                print(f"| `{name}` | {str(dtype)[6:]} | 2**{log2} | {us['add']:.1f} | {us['eager']:.1f} | "
                      f"{us['compile']:.1f} | {us['fastelu']:.1f} | {100 * t['add'] / t['fastelu']:.1f}% | "
                      f"{t['eager'] / t['fastelu']:.2f} | {t['compile'] / t['fastelu']:.2f} | "
                      + " | ".join(f"{us[k]:.1f}" for k in SHAPES) + " |", flush=True)


if __name__ == "__main__":
    main()
