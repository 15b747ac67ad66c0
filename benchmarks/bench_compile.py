"""Compiled graphs: fastelu's routes against stock torch.compile of F.elu, on one CUDA GPU.

Routes: stock (F.elu), elu_op.elu (the Python API, also what patched models call),
torch.ops.fastelu.elu (the named op), and F.elu under elu_op.enable(); beside them the same graph
without the activation ("no act": t.clone() for act(t), t + (0.5t + 0.1) for the chain), which
moves the same bytes. Each graph is compiled with static shapes and replayed from a CUDA graph, so
that the compiled call's CPU time stays out of do_bench's GPU time; each figure is the mean of the
middle 60% of interleaved rounds of do_bench medians (L2 flushed). Forward + backward is
torch.autograd.grad of the graph's output with a random gradient.

    python benchmarks/bench_compile.py [--dtypes bf16,fp16,fp32] [--sizes 20,24,27] [--models] [--out DIR]
"""
import argparse
import contextlib
import datetime

import torch
import torch.nn as nn
import torch.nn.functional as F
import triton
from common import DTYPES, graphed, results_dir, save, save_rows, time_all

import elu_op

ROUTES = {
    "stock": (F.elu, contextlib.nullcontext),
    "elu_op.elu": (elu_op.elu, contextlib.nullcontext),
    "torch.ops.fastelu.elu": (lambda t: torch.ops.fastelu.elu(t, 1.0, 1.0, 1.0), contextlib.nullcontext),
    "F.elu + enable()": (F.elu, elu_op.enabled),
}
GRAPHS = {
    "act(t)": (lambda act, t: act(t), lambda t: t.clone()),
    "t + act(0.5t + 0.1)": (lambda act, t: t + act(0.5 * t + 0.1), lambda t: t + (0.5 * t + 0.1)),
}


def compiled_case(fn, x, backward, **compile_kwargs):
    """A CUDA-graph replay of the compiled fn (forward, or forward and backward) on x."""
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, dynamic=False, **compile_kwargs)
    if not backward:
        return graphed(lambda: compiled(x))
    xg = x.detach().requires_grad_()
    g = torch.randn_like(x)
    return graphed(lambda: torch.autograd.grad(compiled(xg), xg, g))


def pointwise_rows(dtypes, sizes, rounds):
    rows = []
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for exp in sizes:
            x = torch.randn(2**exp, device="cuda", dtype=dtype)
            for graph, (with_act, without) in GRAPHS.items():
                for backward in (False, True):
                    if backward and graph == "act(t)":
                        continue
                    fns = {}
                    for route, (act, context) in ROUTES.items():
                        with context():
                            fns[route] = compiled_case(lambda t, act=act: with_act(act, t), x, backward)
                    fns["no act"] = compiled_case(without, x, backward)
                    t = time_all(fns, rounds)
                    rows.append((graph, "fwd+bwd" if backward else "fwd", dtype_name, exp, t))
                    print(_line(rows[-1]), flush=True)
    return rows


def _line(row):
    graph, mode, dtype, exp, t = row
    cells = " | ".join(f"{t[r] * 1000:.1f} ({t['stock'] / t[r]:.2f}x)" for r in ROUTES)
    return f"| {graph} | {mode} | {dtype} | 2**{exp} | {cells} | {t['no act'] * 1000:.1f} | " \
           f"{100 * t['no act'] / min(t[r] for r in ROUTES if r != 'stock'):.1f}% |"


def elu_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ELU(), nn.Conv2d(64, 64, 3, padding=1), nn.ELU(),
        nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1), nn.ELU(), nn.Conv2d(128, 128, 3, padding=1),
        nn.ELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    ).cuda().to(memory_format=torch.channels_last)


def model_rows(rounds):
    rows = []
    h = torch.randn(8192, 4096, device="cuda", dtype=torch.bfloat16)
    w1 = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64
    w2 = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64
    fns = {}
    for route, (act, context) in ROUTES.items():
        with context():
            fns[route] = compiled_case(lambda t, act=act: act(t @ w1) @ w2, h, False)
    rows.append(("MLP block act(h@w1)@w2, bf16 8192x4096", "fwd", time_all(fns, rounds)))
    x = torch.randn(64, 3, 64, 64, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), device="cuda")
    fns = {}
    for route, patch, context in (("stock", False, contextlib.nullcontext), ("patched (elu_op)", True,
                                                                              contextlib.nullcontext),
                                  ("F.elu + enable()", False, elu_op.enabled)):
        torch.manual_seed(0)
        model = elu_cnn()
        if patch:
            elu_op.patch(model)
        params = list(model.parameters())
        with context():
            torch._dynamo.reset()
            compiled = torch.compile(model)

            def step(compiled=compiled, params=params):
                return torch.autograd.grad(F.cross_entropy(compiled(x), y), params)

            step()
            fns[route] = graphed(step)  # the GPU's time: the step's own CPU time varies by 40% between runs
    rows.append(("ELU CNN training step, fp32 64x3x64x64", "fwd+bwd", time_all(fns, rounds)))
    x = torch.randn(2**24, device="cuda", dtype=torch.bfloat16)
    fns = {}
    for route, (act, context) in (("stock", ROUTES["stock"]), ("elu_op.elu", ROUTES["elu_op.elu"])):
        with context():
            torch._dynamo.reset()
            f = torch.compile(lambda t, act=act: t + act(0.5 * t + 0.1), mode="reduce-overhead")
            for _ in range(3):
                f(x)
            fns[route] = lambda f=f: f(x)
    rows.append(('t + act(0.5t + 0.1), bf16 2**24, mode="reduce-overhead"', "fwd", time_all(fns, rounds)))
    for row in rows:
        print(row, flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", default="bf16,fp16,fp32")
    ap.add_argument("--sizes", default="20,24,27")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", action="store_true", help="also the MLP block, CNN step and reduce-overhead rows")
    ap.add_argument("--out", default=results_dir())
    args = ap.parse_args()
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    dtypes = args.dtypes.split(",")
    rows = pointwise_rows(dtypes, [int(s) for s in args.sizes.split(",")], args.rounds)
    save_rows(args.out, props.name, "compile", [
        {"graph": graph, "mode": mode, "dtype": dtype, "log2": exp, **{f"{k}_us": round(1e3 * v, 2) for k, v in t.items()}}
        for graph, mode, dtype, exp, t in rows])
    text = [f"# torch.compile with fastelu on {props.name}", "",
            f"{datetime.date.today()}, torch {torch.__version__}, triton {triton.__version__}. Microseconds (ratio "
            f"to stock compile of F.elu in the same run); graphs compiled with static shapes and replayed from a CUDA "
            f"graph; mean of the middle 60% of {args.rounds} interleaved rounds of do_bench medians. `no act`: the "
            f"same graph without the activation (the same bytes moved); `% of no act`: its time over the best "
            f"fastelu route's.", "",
            "| graph | mode | dtype | elements | " + " | ".join(ROUTES) + " | no act | % of no act |",
            "|---|---|---|---|" + "---|" * len(ROUTES) + "---|---|"] + [_line(r) for r in rows]
    if args.models:
        text += ["", "| graph | mode | route: ms (ratio to stock) |", "|---|---|---|"]
        for graph, mode, t in model_rows(args.rounds):
            first = next(iter(t.values()))
            text.append(f"| {graph} | {mode} | " + ", ".join(f"{r}: {v:.3f} ({first / v:.2f}x)" for r, v in t.items())
                        + " |")
    save(args.out, props.name, f"_compile_{'_'.join(dtypes)}.md", "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
