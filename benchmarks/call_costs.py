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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import elu_op  # noqa: E402
from bench_elu import launcher_calls, per_call_us  # noqa: E402
from common import save  # noqa: E402
from elu_op import configs, functional, kernel, ops  # noqa: E402


def steps():
    x = torch.randn(4096, device="cuda")
    out = torch.empty_like(x)
    n = x.numel()
    block, warps = configs.lookup(0, 4, n)
    launchers, one_block = launcher_calls(x, out), launcher_calls(x, out, one_block=True)
    module, torch_module = elu_op.FastELU(), torch.nn.ELU()
    return {
        "F.elu (eager)": lambda: F.elu(x),
        "torch._C._nn.elu(x, out=out) (eager, no allocation)": lambda: torch._C._nn.elu(x, out=out),
        "torch.empty_like(x)": lambda: torch.empty_like(x),
        "functional._check": lambda: functional._check("elu", x, 1.0),
        "torch.compiler.is_compiling()": torch.compiler.is_compiling,
        "ops.check_dtype(x)": lambda: ops.check_dtype(x),
        "ops._is_dense(x)": lambda: ops._is_dense(x),
        "configs.lookup": lambda: configs.lookup(0, 4, n),
        "kernel.negcoef": lambda: kernel.negcoef(1.0, 1.0, False),
        "torch._C._cuda_getCurrentRawStream": lambda: torch._C._cuda_getCurrentRawStream(0),
        "two data_ptr()": lambda: (out.data_ptr(), x.data_ptr()),
        "Triton's launcher (CompiledKernel.run)": launchers["triton"],
        "C++ launch (_C.launch, output given)": launchers["cpp"],
        "C++ launch, 1 block": one_block["cpp"],
        "kernel.launch (output given)": lambda: kernel.launch(out, x, None, n, 1.0, 1.0, 1.0, False, block, warps, 0),
        "ops._run (output given)": lambda: ops._run(out, x, None, 1.0, 1.0, 1.0, False),
        "ops._elu_triton": lambda: ops._elu_triton(x),
        "elu_op.elu": lambda: elu_op.elu(x),
        "torch.nn.ELU module (eager)": lambda: torch_module(x),
        "elu_op.FastELU module": lambda: module(x),
        "torch.ops.fastelu.elu": lambda: torch.ops.fastelu.elu(x),
        "torch.ops.fastelu.elu.default": lambda: torch.ops.fastelu.elu.default(x),
        "torch.ops.aten.elu (eager through torch.ops)": lambda: torch.ops.aten.elu(x),
        "_C.elu (the op through the dispatcher, from C++)": lambda: elu_op._C.elu(x, 1.0, 1.0, 1.0),
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
