"""Command line: python -m elu_op {info,check,tune,bench}."""
import argparse
import platform
import sys

import torch
import triton

from . import configs, functional, ops


def _device():
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def info(args):
    dev = _device()
    print(f"fastelu   python {platform.python_version()}  torch {torch.__version__}  triton {triton.__version__}")
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        print(f"device    {p.name} (sm_{p.major}{p.minor}, {p.multi_processor_count} SMs)")
        index = dev.index
    else:
        mode = "Triton interpreter" if ops.INTERPRET else "PyTorch's CPU elu (set TRITON_INTERPRET=1 for Triton)"
        print(f"device    cpu: {mode}")
        index = -1
    table, source = configs.describe(index)
    print(f"configs   {source}")
    bounds = [f"<= 2**{b.bit_length() - 1}" for b in configs.BUCKETS] + ["larger"]
    for itemsize, name in ((4, "float32"), (2, "16-bit"), (8, "float64")):
        cells = "  ".join(f"{b}: {blk}/{w}w" for b, (blk, w) in zip(bounds, table[itemsize]))
        print(f"  {name:8s} {cells}")


def check(args):
    """Every op on the available device against a float64 reference; exit 1 on any failure."""
    dev = _device()
    if dev.type == "cpu" and not ops.INTERPRET:
        print("note: no GPU and TRITON_INTERPRET is not 1, so this checks PyTorch's CPU path, not the kernel")
    tol = {torch.float32: 4e-7, torch.float64: 1e-15, torch.float16: 1e-3, torch.bfloat16: 8e-3}
    n = 2**20 + 7 if dev.type == "cuda" else 4099
    failed = 0
    print(f"{'op':14s} {'dtype':9s} {'max rel err':>12s}  {'limit':>8s}  result")
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        x = torch.randn(n, device=dev, dtype=torch.float64).mul_(4).to(dtype)
        g = torch.randn(n, device=dev, dtype=dtype)
        xd, gd = x.double(), g.double()
        y = functional.elu(x, 1.0)
        cases = [
            ("elu", y, torch.nn.functional.elu(xd)),
            ("selu", functional.selu(x), torch.nn.functional.selu(xd)),
            ("celu", functional.celu(x, 0.5), torch.nn.functional.celu(xd, 0.5)),
            ("elu_", functional.elu(x.clone(), 1.0, inplace=True), torch.nn.functional.elu(xd)),
            ("elu_backward", torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x),
             torch.ops.aten.elu_backward(gd, 1.0, 1.0, 1.0, False, xd)),
            ("elu_backward*", torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, True, y),
             torch.ops.aten.elu_backward(gd, 1.0, 1.0, 1.0, True, y.double())),
        ]
        for name, got, ref in cases:
            err = ((got.double() - ref).abs() / ref.abs().clamp_min(1e-3)).max().item()
            ok = err <= tol[dtype] and got.dtype == dtype
            failed += not ok
            print(f"{name:14s} {str(dtype)[6:]:9s} {err:12.3e}  {tol[dtype]:8.1e}  {'pass' if ok else 'FAIL'}")
    print("elu_backward* is the gradient from the saved result (is_result=True).")
    print("all passed" if not failed else f"{failed} FAILED")
    sys.exit(1 if failed else 0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m elu_op", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="device, versions and the launch configurations in use")
    sub.add_parser("check", help="run every op against a float64 reference and print a pass/fail table")
    args = parser.parse_args(argv)
    {"info": info, "check": check}[args.command](args)
