"""Per-call cost at 4096 float32 elements: each entry point against PyTorch's (median of
interleaved rounds), then where the microseconds go, each step of fastelu's hot path timed alone
(wall time per call of 3000 back-to-back calls, best of 3). A step that launches a kernel can be
bound by the GPU's launch rate rather than the CPU; the 1-block launch shows that floor.

    python benchmarks/call_costs.py [--out DIR]
"""
import argparse
import datetime
import os
import statistics

import torch
import torch.nn.functional as F
import triton

import elu_op
from bench_elu import launcher_calls, per_call_us
from common import save, save_rows
from elu_op import functional
from elu_op.build import C as _C


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


def entry_points():
    """(PyTorch's call, fastelu's) for each way in: the per-call comparison."""
    x = torch.randn(4096, device="cuda")
    g = torch.randn_like(x)
    scratch = x.clone()
    xg = x.clone().requires_grad_()
    module, torch_module = elu_op.FastELU(), torch.nn.ELU()

    return {
        "function": (lambda: F.elu(x), lambda: elu_op.elu(x)),
        "torch.ops": (lambda: torch.ops.aten.elu(x), lambda: torch.ops.fastelu.elu(x)),
        "module": (lambda: torch_module(x), lambda: module(x)),
        "selu": (lambda: F.selu(x), lambda: elu_op.selu(x)),
        "in place": (lambda: F.elu(scratch, inplace=True), lambda: elu_op.elu(scratch, inplace=True)),
        "forward, input requires grad": (lambda: F.elu(xg), lambda: elu_op.elu(xg)),
        "forward + backward": (lambda: F.elu(xg).backward(g), lambda: elu_op.elu(xg).backward(g)),
        "F.elu under enable()": (lambda: F.elu(x), "enabled"),
        # Compiled: what remains a call is Dynamo's guards, the compiled code's wrapper and the launch
        # (or a CUDA graph's replay); separate lambdas, so that each has its own code and guards.
        "compiled t + act(0.5t + 0.1)": _compiled(lambda t: t + F.elu(0.5 * t + 0.1),
                                                  lambda t: t + elu_op.elu(0.5 * t + 0.1), x),
        'the same, mode="reduce-overhead"': _compiled(lambda t: t + F.elu(0.5 * t + 0.1),
                                                      lambda t: t + elu_op.elu(0.5 * t + 0.1), x,
                                                      mode="reduce-overhead"),
        "compiled module": _compiled(torch_module, module, x),
    }


def _compiled(theirs, ours, x, **kwargs):
    fns = []
    for fn in (theirs, ours):
        compiled = torch.compile(fn, **kwargs)
        for _ in range(3):  # compiled, then (reduce-overhead) recorded as a CUDA graph
            compiled(x)
        fns.append(lambda compiled=compiled: compiled(x))
    return tuple(fns)


def compare(rounds=7, calls=2000):
    """Median per-call us of PyTorch and fastelu for each entry point, in interleaved rounds."""
    cases = entry_points()
    times = {k: ([], []) for k in cases}
    for _ in range(rounds):
        for k, (theirs, ours) in cases.items():
            times[k][0].append(per_call_us(theirs, calls=calls, rounds=1))
            if ours == "enabled":  # the same F.elu call, with fastelu's kernels behind aten's
                elu_op.enable()
                times[k][1].append(per_call_us(theirs, calls=calls, rounds=1))
                elu_op.disable()
            else:
                times[k][1].append(per_call_us(ours, calls=calls, rounds=1))
    rows, data = [], []
    for k, (theirs, ours) in times.items():
        a, b = statistics.median(theirs), statistics.median(ours)
        rows.append(f"| {k} | {a:.2f} | {b:.2f} | {b / a:.3f} |")
        data.append({"entry point": k, "elements": 4096, "dtype": "fp32", "pytorch_us": round(a, 3),
                     "fastelu_us": round(b, 3)})
    return "\n".join(rows), data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    comparison, data = compare()
    save_rows(args.out, props.name, "calls", data)
    rounds = [{k: per_call_us(f) for k, f in steps().items()} for _ in range(3)]
    lines = "\n".join(f"| {k} | " + " | ".join(f"{r[k]:.2f}" for r in rounds) + " |" for k in rounds[0])
    text = (f"# Per-call costs on {props.name}\n\n{datetime.date.today()}, torch {torch.__version__}, triton "
            f"{triton.__version__}. us per call, 4096 float32 elements, three runs of the whole table.\n\n"
            f"## Each entry point against PyTorch's\n\nMedian us per call over 7 interleaved rounds of 2000 "
            f"calls each.\n\n| entry point | PyTorch | fastelu | ratio |\n|---|---|---|---|\n{comparison}\n\n"
            f"## Each step of the hot path alone\n\n"
            f"| step | run 1 | run 2 | run 3 |\n|---|---|---|---|\n{lines}\n")
    save(args.out, props.name, "_calls.md", text)


if __name__ == "__main__":
    main()
