"""Every candidate launch configuration at sizes 2**16-2**24 (or those asked for), beside copy_
and eager PyTorch, and how far one kernel's timing moves between interleaved do_bench calls.

Calls of a few microseconds are where a better configuration and noise are hard to tell apart;
this shows which is which. --graphs replays every implementation from a CUDA graph, which leaves
the Python launch (and its jitter) out of the time. Writes benchmarks/studies/results/<gpu>_configs.md and
prints it.

    python benchmarks/studies/config_sweep.py [--out DIR] [--rounds N] [--dtypes fp32,bf16] [--log2 16-24]
                                              [--name configs] [--graphs]
"""
import argparse
import datetime
import os
import sys

import torch
import torch.nn.functional as F
import triton
from triton.testing import do_bench

import elu_op
# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import DTYPES, graphed, launch, middle_mean, plan, save
from elu_op import configs

# One-warp shapes beside tune's: small grids where a few microseconds are the whole call.
CANDIDATES = [(256, 1), (256, 2), (512, 1), (1024, 1)] + configs.CANDIDATES


def sweep_case(n, dtype, backward, rounds, graphs):
    x = torch.randn(n, device="cuda", dtype=dtype)
    g = torch.randn_like(x) if backward else None
    out = torch.empty_like(x)
    fns = {f"{b}/{w}": (lambda b=b, w=w: launch(out, x, g, b, w))
           for b, w in CANDIDATES}
    if backward:
        fns.update(fastelu=lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x),
                   copy=lambda: torch.add(x, g, out=out),
                   eager=lambda: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x))
    else:
        fns.update(fastelu=lambda: elu_op.elu(x), copy=lambda: out.copy_(x), eager=lambda: F.elu(x))
    for fn in fns.values():
        fn()
    if graphs:
        fns = {k: graphed(fn) for k, fn in fns.items()}
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(1000 * do_bench(fn, warmup=10, rep=25, return_mode="median"))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--log2", default="16-24", help="the sizes' powers of two, FIRST-LAST")
    ap.add_argument("--name", default="configs", help="the results file: <gpu>_NAME.md")
    ap.add_argument("--graphs", action="store_true", help="time each implementation replayed from a CUDA graph")
    args = ap.parse_args()
    first, last = (int(v) for v in args.log2.split("-"))
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    lines = [f"# Launch configurations, sizes 2**{first}-2**{last}, on {props.name}", "",
             f"{datetime.date.today()}, torch {torch.__version__}, triton {triton.__version__}. Microseconds, each "
             f"the mean of the middle 60% of {args.rounds} interleaved rounds of a do_bench median (L2 flushed)"
             f"{', each implementation replayed from a CUDA graph' if args.graphs else ''}. "
             f"`spread`: how far one implementation's round medians moved, (max - min) / mean, for fastelu's "
             f"kernel and for copy_ (torch.add(x, g, out=y) for the backward). `config`: the one fastelu uses; "
             f"`best`: the fastest of {len(CANDIDATES)} candidates and in how many rounds it was the fastest.", "",
             "| mode | dtype | elements | fastelu | spread | copy_ | spread | config | config us | best | best us "
             "| fastest in | eager |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rounds_at_last = []  # how the rounds move, shown at the largest size
    every = []  # each candidate's time, for a retuning decision between two of them
    for dtype in (DTYPES[name] for name in args.dtypes.split(",")):
        for backward in (False, True):
            for e in range(first, last + 1):
                t = sweep_case(2**e, dtype, backward, args.rounds, args.graphs)
                mean = {k: middle_mean(v) for k, v in t.items()}
                spread = {k: 100 * (max(v) - min(v)) / mean[k] for k, v in t.items()}
                cands = [k for k in t if "/" in k]
                best = min(cands, key=mean.get)
                won = sum(min(cands, key=lambda k: t[k][i]) == best for i in range(args.rounds))
                mine = "%d/%d" % plan(torch.empty(2**e, device="cuda", dtype=dtype))
                mode = "backward" if backward else "forward"
                lines.append(f"| {mode} | {str(dtype)[6:]} | 2**{e} | {mean['fastelu']:.2f} | {spread['fastelu']:.0f}% "
                             f"| {mean['copy']:.2f} | {spread['copy']:.0f}% | {mine} | {mean[mine]:.2f} | {best} | "
                             f"{mean[best]:.2f} | {won}/{args.rounds} | {mean['eager']:.2f} |")
                print(lines[-1], flush=True)
                every.append(f"{mode} {str(dtype)[6:]} 2**{e}: " + " ".join(f"{k} {mean[k]:.2f}" for k in cands))
                if e == last:
                    rounds_at_last += [f"{mode} {str(dtype)[6:]} {k}: " + " ".join(f"{v:.2f}" for v in t[k])
                                       for k in ("copy", "fastelu")]
    lines += ["", f"Round by round at 2**{last} (us):", "", "```", *rounds_at_last, "```",
              "", "Every candidate (us):", "", "```", *every, "```"]
    save(args.out, props.name, f"_{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
