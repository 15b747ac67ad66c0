"""ELU-heavy models with and without fastelu, eager and compiled; and the fusion cases.

Models (synthetic data, no downloads): a SELU MLP and a small ELU CNN. Each is timed for
inference and for a training step (forward, backward, SGD step), eager, eager+patch, compile,
compile+patch, in float32 and under bf16 autocast. Then the fusion cases of issue 4: a pointwise
chain around the activation, and an MLP block, compiled with F.elu, elu_op.elu (aten's elu under
compile: fused) and torch.ops.fastelu.elu (the opaque Triton kernel). Medians of do_bench.

    python benchmarks/bench_model.py [--out DIR]
    python benchmarks/bench_model.py --memory [--out DIR]   (what a training step holds per ELU)
"""
import argparse
import datetime
import os
import re

import torch
import torch._functorch.config
import torch._inductor.config
import torch.nn as nn
import torch.nn.functional as F
import triton
from triton.testing import do_bench

import elu_op
from common import result_path, save, save_rows


def selu_mlp():
    layers = []
    for _ in range(6):
        layers += [nn.Linear(2048, 2048), nn.SELU()]
    return nn.Sequential(*layers, nn.Linear(2048, 10)), (4096, 2048)


def elu_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ELU(), nn.Conv2d(64, 64, 3, padding=1), nn.ELU(),
        nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1), nn.ELU(), nn.Conv2d(128, 128, 3, padding=1),
        nn.ELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    ).to(memory_format=torch.channels_last), (64, 3, 64, 64)


def time_model(make, patch, compiled, bf16, train):
    torch.manual_seed(0)
    model, shape = make()
    model = model.cuda()
    if patch:
        elu_op.patch(model)
    x = torch.randn(shape, device="cuda")
    if x.dim() == 4:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (shape[0],), device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
            if not train:
                with torch.no_grad():
                    return model(x)
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    fn = torch.compile(step) if compiled else step
    for _ in range(3):
        fn()
    return do_bench(fn, warmup=25, rep=200, return_mode="median")


def fusion_cases():
    rows = []
    x = torch.randn(2**27, device="cuda", dtype=torch.bfloat16)
    acts = {"F.elu": F.elu, "elu_op.elu": elu_op.elu, "torch.ops.fastelu.elu": torch.ops.fastelu.elu}
    for name, act in acts.items():
        chain = torch.compile(lambda t, act=act: t + act(t * 0.5 + 0.1))
        alone = torch.compile(lambda t, act=act: act(t))
        rows.append(("t + act(t*0.5+0.1), bf16 2**27", name, do_bench(lambda: chain(x), return_mode="median")))
        rows.append(("act(t) alone, bf16 2**27", name, do_bench(lambda: alone(x), return_mode="median")))
    h = torch.randn(8192, 4096, device="cuda", dtype=torch.bfloat16)
    w1 = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64
    w2 = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64
    for name, act in acts.items():
        block = torch.compile(lambda t, act=act: act(t @ w1) @ w2)
        rows.append(("MLP block act(h@w1)@w2, bf16 8192x4096", name, do_bench(lambda: block(h), return_mode="median")))
    return rows


# ---- training memory: what a step holds per ELU --------------------------------------------------

def memory_mlp(blocks):
    layers = []
    for _ in range(blocks):
        layers += [nn.Linear(4096, 4096, bias=False), nn.ELU()]
    return nn.Sequential(*layers), (8192, 4096)


def memory_convnet():
    layers = []
    for _ in range(6):
        layers += [nn.BatchNorm2d(128), nn.ELU(), nn.Conv2d(128, 128, 3, padding=1, bias=False)]
    return nn.Sequential(*layers).to(memory_format=torch.channels_last), (64, 128, 128, 128)


MEMORY_MODELS = {"MLP 8 x [Linear 4096 -> ELU], batch 8192": lambda: memory_mlp(8),
                 "MLP 16 x [Linear 4096 -> ELU], batch 8192": lambda: memory_mlp(16),
                 "ConvNet 6 x [BatchNorm -> ELU -> Conv 128ch], 64x128x128x128": memory_convnet}
# variant -> (patch, save, in place, compiled)
MEMORY_VARIANTS = {"stock": (False, None, False, False), "stock in place": (False, None, True, False),
                   "fastelu": (True, None, False, False), "fastelu save='output'": (True, "output", False, False),
                   "compile, stock": (False, None, False, True), "compile, fastelu": (True, None, False, True),
                   "compile, fastelu without recompute": (True, None, False, True)}


def memory_row(make, dtype, variant):
    """(held MiB after the forward, peak MiB over the step, step ms) of one training step (forward,
    backward), the model's parameters and input already on the GPU."""
    patch, save, inplace, compiled = MEMORY_VARIANTS[variant]
    torch.manual_seed(0)
    model, shape = make()
    model = model.to("cuda", dtype)
    for m in model.modules():
        if isinstance(m, nn.ELU):
            m.inplace = inplace
    if patch:
        elu_op.patch(model, save=save)
    x = torch.randn(shape, device="cuda", dtype=dtype)
    if x.dim() == 4:
        x = x.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    # fastelu's compiled graphs saving each ELU's result, as before the recompute existed
    recompute = elu_op.set_recompute(not variant.endswith("without recompute"))

    def step():
        forward(x).float().square().mean().backward()
        for p in model.parameters():
            p.grad = None

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = forward(x)
    held = torch.cuda.memory_allocated() - base
    out.float().square().mean().backward()
    for p in model.parameters():
        p.grad = None
    del out
    peak = torch.cuda.max_memory_allocated() - base
    ms = do_bench(step, warmup=5, rep=50, return_mode="median")
    torch._dynamo.reset()
    elu_op.set_recompute(recompute)
    return held / 2**20, peak / 2**20, ms


def memory(args, props):
    # Every variant compiled afresh, its compile time out of the step's
    torch._inductor.config.fx_graph_cache = False
    torch._functorch.config.enable_autograd_cache = False
    rows, data = [], []
    for mname, make in MEMORY_MODELS.items():
        for dtype in (torch.bfloat16, torch.float16) + ((torch.float32,) if "8 x" in mname else ()):
            for variant in MEMORY_VARIANTS:
                if not re.search(args.only, f"{mname} {str(dtype)[6:]} {variant}"):
                    continue
                held, peak, ms = memory_row(make, dtype, variant)
                data.append({"model": mname, "dtype": str(dtype)[6:], "variant": variant,
                             "held_mib": round(held, 1), "peak_mib": round(peak, 1), "step_ms": round(ms, 4)})
                rows.append(f"| {mname} | {str(dtype)[6:]} | {variant} | {held:.0f} | {peak:.0f} | {ms:.2f} |")
                print(rows[-1], flush=True)
        save_rows(args.out, props.name, "memory", data)  # after each model: a run cut short keeps what it measured
        _memory_table(args, props, rows)


def _memory_table(args, props, rows):
    text = (f"# Training memory on {props.name}\n\n{datetime.date.today()}, torch {torch.__version__}, triton "
            f"{triton.__version__}, `benchmarks/bench_model.py --memory`. One training step (forward, backward "
            f"of a mean of squares), parameters and input already on the GPU. held: MiB allocated after the "
            f"forward beyond before it (what the step keeps for its backward, the output included); peak: the "
            f"step's peak beyond that same start; step: median ms of do_bench. ELUs out of place unless "
            f"'in place'; compiled graphs with torch.compile's defaults.\n\n"
            f"| model | dtype | variant | held MiB | peak MiB | step ms |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    with open(result_path(args.out, props.name, "_memory.md"), "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--memory", action="store_true", help="only the training-memory table")
    ap.add_argument("--only", default="", help="--memory: the rows whose 'model dtype variant' this regex matches")
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    if args.memory:
        memory(args, props)
        return
    lines = [f"# Models and fusion on {props.name}\n",
             f"{datetime.date.today()}, torch {torch.__version__}, triton {triton.__version__}. Median ms of "
             f"triton.testing.do_bench; all rows of a table from the same run.\n",
             "| model | precision | step | eager | eager+patch | compile | compile+patch |",
             "|---|---|---|---|---|---|---|"]
    for mname, make in (("SELU MLP 6x2048, batch 4096", selu_mlp), ("ELU CNN 4 conv, 64x3x64x64", elu_cnn)):
        for bf16 in (False, True):
            for train in (False, True):
                t = [time_model(make, p, c, bf16, train) for c in (False, True) for p in (False, True)]
                lines.append(f"| {mname} | {'bf16 autocast' if bf16 else 'fp32'} | "
                             f"{'train step' if train else 'inference'} | " + " | ".join(f"{v:.3f}" for v in t) + " |")
                print(lines[-1], flush=True)
                torch._dynamo.reset()
    lines += ["", "## Fusion inside compiled graphs (ms)", "", "| graph | activation | ms |", "|---|---|---|"]
    for graph, name, v in fusion_cases():
        lines.append(f"| {graph} | {name} | {v:.3f} |")
        print(lines[-1], flush=True)
    save(args.out, props.name, "_models.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
