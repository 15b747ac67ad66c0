"""ELU-heavy models with and without fastelu, eager and compiled; and the fusion cases.

Models (synthetic data, no downloads): a SELU MLP and a small ELU CNN. Each is timed for
inference and for a training step (forward, backward, SGD step), eager, eager+patch, compile,
compile+patch, in float32 and under bf16 autocast. Then the fusion cases of issue 4: a pointwise
chain around the activation, and an MLP block, compiled with F.elu, elu_op.elu (aten's elu under
compile: fused) and torch.ops.fastelu.elu (the opaque Triton kernel). Medians of do_bench.

    python benchmarks/bench_model.py [--out DIR]
"""
import argparse
import datetime
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import triton
from triton.testing import do_bench

import elu_op
from common import save


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
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
