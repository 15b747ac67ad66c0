"""How exact are float32 results, fastelu's beside stock's on the same device, in ulps of the result?

The reference is aten's formula in float64 on the float32 coefficients and the float32 product
x*input_scale aten forms (as tests/test_exhaustive.py); the error is |result - reference| over the
spacing of float32 at the result. Runs on CUDA, or on the CPU under TRITON_INTERPRET=1.
Usage: python benchmarks/studies/ulp_f32.py [--n N] [--out DIR]
"""
import argparse
import datetime
import os
import sys

import torch
import triton

import elu_op

# benchmarks/, for common.py
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import save

CASES = {"elu": (1.0, 1.0, 1.0), "elu alpha 0.4": (0.4, 1.0, 1.0), "selu": (elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE, 1.0),
         "celu alpha 2.5": (2.5, 1.0, 0.4)}
RANGES = {"[-20, -1)": (-20.0, -1.0), "[-1, -0.35)": (-1.0, -0.35), "[-0.35, -1e-3)": (-0.35, -1e-3)}


def ulp_errors(got, want):
    spacing = torch.nextafter(got.abs(), torch.tensor(float("inf"), device=got.device)) - got.abs()
    return ((got.double() - want).abs() / spacing.double()).cpu()


def reference(x, g, alpha, scale, input_scale):
    f32 = lambda v: torch.tensor(v, dtype=torch.float32).item()  # noqa: E731
    neg, ipt = f32(f32(alpha) * f32(scale)), f32(input_scale)
    t = (x * ipt).double()
    if g is None:
        return torch.expm1(t) * neg
    return g.double() * ipt * neg * torch.exp(t)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1 << 24)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    rows = ["| case | direction | inputs | fastelu max | stock max | fastelu > 0.5 ulp | stock > 0.5 ulp | fastelu farther | stock farther |",
            "|---|---|---|---|---|---|---|---|---|"]
    for case, coefs in CASES.items():
        for direction in ("forward", "backward"):
            for name, (lo, hi) in RANGES.items():
                x = torch.empty(args.n, device=device).uniform_(lo, hi)
                g = None if direction == "forward" else torch.randn(args.n, device=device)
                want = reference(x, g, *coefs)
                if g is None:
                    mine, stock = torch.ops.fastelu.elu(x, *coefs), torch.ops.aten.elu(x, *coefs)
                else:
                    mine = torch.ops.fastelu.elu_backward(g, *coefs, False, x)
                    stock = torch.ops.aten.elu_backward(g, *coefs, False, x)
                a, b = ulp_errors(mine, want), ulp_errors(stock, want)
                rows.append(f"| {case} | {direction} | {name} | {a.max():.3f} | {b.max():.3f} | {(a > 0.5).sum()} | "
                            f"{(b > 0.5).sum()} | {(a > b).sum()} | {(b > a).sum()} |")
                print(rows[-1], flush=True)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU interpreted"
    head = (f"# float32 errors in ulps, fastelu beside stock, {gpu}\n\n{datetime.date.today()}, torch "
            f"{torch.__version__}, triton {triton.__version__}; {args.n} uniform inputs a range, gradients "
            "standard normal; `benchmarks/studies/ulp_f32.py`.\n\n")
    if args.out:
        save(args.out, gpu, "_ulp_f32.md", head + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
