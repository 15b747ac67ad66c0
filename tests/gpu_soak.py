"""Soak run on a GPU (a script, not part of the pytest suite): python tests/gpu_soak.py [calls].

Mixes sizes, dtypes, layouts, in place, backward and autograd over many calls, checks a sample of
results against PyTorch as it goes and every result of the last round, and that GPU memory comes
back to where it started. Prints a summary and exits 1 on any failure.
"""
import random
import sys
import time

import torch
import torch.nn.functional as F

import elu_op

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
TOL = {torch.float32: 4e-7, torch.float64: 1e-15, torch.float16: 2**-10, torch.bfloat16: 2**-8}


def one_call(rng, check):
    dtype = rng.choice(DTYPES)
    n = rng.choice([1, 7, 127, 1024, 4097, 65536, 2**20 + 7])
    x = torch.randn(n, device="cuda", dtype=dtype) * 4
    if rng.random() < 0.2 and n > 16:
        x = x[1:][::2]  # unaligned and strided
    alpha = rng.choice([1.0, 0.5, 1.7])
    kind = rng.choice(["forward", "inplace", "backward", "autograd", "selu", "celu"])
    if kind == "forward":
        got, want = elu_op.elu(x, alpha), F.elu(x.double(), alpha)
    elif kind == "selu":
        got, want = elu_op.selu(x), F.selu(x.double())
    elif kind == "celu":
        got, want = elu_op.celu(x, alpha), F.celu(x.double(), alpha)
    elif kind == "inplace":
        y = x.clone()
        elu_op.elu(y, alpha, inplace=True)
        got, want = y, F.elu(x.double(), alpha)
    elif kind == "backward":
        g = torch.randn_like(x)
        got = torch.ops.fastelu.elu_backward(g, alpha, 1.0, 1.0, False, x)
        want = torch.ops.aten.elu_backward(g.double(), alpha, 1.0, 1.0, False, x.double())
    else:  # autograd through the in-place op, against PyTorch's own in-place autograd
        if dtype not in (torch.float32, torch.float64):
            x = x.float()
        xg, xr = x.detach().requires_grad_(), x.detach().requires_grad_()
        elu_op.elu(xg * 1, alpha, inplace=True).sum().backward()
        F.elu(xr * 1, alpha, inplace=True).sum().backward()
        got, want = xg.grad, xr.grad.double()
    if not check:
        return True
    err = ((got.double() - want).abs() / want.abs().clamp_min(1e-2)).max().item()
    # Gradients from the result cancel (result + alpha) for x -> -inf: one ulp of the forward
    # result shows there, in PyTorch as here.
    ok = err <= max(TOL[got.dtype], 1e-4 if kind == "autograd" else 0)
    if not ok:
        print(f"  {kind} {dtype} n={n} alpha={alpha}: max error {err:.3e}", flush=True)
    return ok


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(0)
    torch.cuda.synchronize()
    start_mem = torch.cuda.memory_allocated()
    failures = checked = 0
    t0 = time.time()
    for i in range(calls):
        check = i % 50 == 0 or i >= calls - 200
        ok = one_call(rng, check)
        checked += check
        failures += not ok
        if not ok:
            print(f"call {i}: wrong result", flush=True)
    torch.cuda.synchronize()
    end_mem = torch.cuda.memory_allocated()
    print(f"soak: {calls} calls in {time.time() - t0:.0f} s, {checked} checked against PyTorch, "
          f"{failures} wrong; GPU memory allocated before {start_mem} B, after {end_mem} B")
    sys.exit(1 if failures or end_mem != start_mem else 0)


if __name__ == "__main__":
    main()
