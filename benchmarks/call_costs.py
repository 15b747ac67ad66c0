"""Where the microseconds of a small call go: each step of fastelu's hot path timed alone.

Wall time per call of 3000 back-to-back calls (best of 3) on a 4096-element float32 CUDA tensor,
the method of bench_elu.py's per-call table. A step that launches a kernel can be bound by the
GPU's launch rate rather than the CPU; the 1-block launch shows that floor.

    python benchmarks/call_costs.py [--out DIR]
"""
import argparse
import datetime
import os
import sys

import torch
import torch.nn.functional as F
import triton

import elu_op
from bench_elu import launcher_calls, per_call_us
from common import save
from elu_op import functional
from elu_op.ops import _C


def steps():
    x = torch.randn(4096, device="cuda")
    out = torch.empty_like(x)
    launchers, one_block = launcher_calls(x, out), launcher_calls(x, out, one_block=True)
    module, torch_module = elu_op.FastELU(), torch.nn.ELU()
    return {
        "F.elu (eager)": lambda: F.elu(x),
        "torch._C._nn.elu(x, out=out) (eager, no allocation)": lambda: torch._C._nn.elu(x, out=out),
        "torch.empty_like(x)": lambda: torch.empty_like(x),
        "functional._check": lambda: functional._check("elu", x, 1.0),
        "torch.compiler.is_compiling()": torch.compiler.is_compiling,
        "Triton's ordinary launch (elu_kernel[grid], output given)": launchers["triton"],
        "C++ launch (output given)": launchers["cpp"],
        "C++ launch, 1 block": one_block["cpp"],
        "elu_op.elu": lambda: elu_op.elu(x),
        "torch.nn.ELU module (eager)": lambda: torch_module(x),
        "elu_op.FastELU module": lambda: module(x),
        "torch.ops.fastelu.elu": lambda: torch.ops.fastelu.elu(x),
        "torch.ops.fastelu.elu.default": lambda: torch.ops.fastelu.elu.default(x),
        "torch.ops.aten.elu (eager through torch.ops)": lambda: torch.ops.aten.elu(x),
        "the op through the dispatcher, from C++ (what elu_op.elu calls)": lambda: _C.elu(x, 1.0, 1.0, 1.0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    rounds = [{k: per_call_us(f) for k, f in steps().items()} for _ in range(3)]
    lines = "\n".join(f"| {k} | " + " | ".join(f"{r[k]:.2f}" for r in rounds) + " |" for k in rounds[0])
    text = (f"# Per-call costs on {props.name}\n\n{datetime.date.today()}, torch {torch.__version__}, triton "
            f"{triton.__version__}. us per call, 4096 float32 elements, three runs of the whole table.\n\n"
            f"| step | run 1 | run 2 | run 3 |\n|---|---|---|---|\n{lines}\n")
    save(args.out, props.name, "_calls.md", text)


if __name__ == "__main__":
    main()
