"""fastelu: ELU, SELU and CELU for NVIDIA GPUs as Triton kernels behind torch.library.

This command shows the device and launch configurations, checks every op against a float64
reference, tunes launch configurations for this GPU, runs the benchmark, and exports the kernel in
KernelBench's one-file format."""
import argparse
import platform
import sys

import torch

from . import build as builder
from . import configs, functional, ops


def _device():
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _triton_version():
    try:
        import triton
    except ImportError:
        return "not installed"
    return triton.__version__


def info(args):
    dev = _device()
    print(f"fastelu   python {platform.python_version()}  torch {torch.__version__}  triton {_triton_version()}")
    if ops.OFF:
        print(f"kernels   off: {ops.OFF}; the ops run PyTorch's own elu (the same results as torch.nn.functional)"
              + ("" if ops.knobs is None else "; python -m elu_op build --verbose retries the build"))
        return
    print(f"c++       {builder.C.__file__}")
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        print(f"device    {p.name} (sm_{p.major}{p.minor}, {p.multi_processor_count} SMs)")
        index = dev.index
    elif ops.INTERPRET:
        print("device    cpu: the Triton kernel in Triton's interpreter")
        index = -1
    else:
        print("device    cpu: PyTorch's CPU elu (no GPU; TRITON_INTERPRET=1 runs the Triton kernel interpreted)")
        return
    table, source = configs.describe(index)
    print(f"configs   {source}")
    bounds = [f"<= 2**{b.bit_length() - 1}" for b in configs.BUCKETS] + ["larger"]
    for direction in configs.DIRECTIONS:
        for itemsize, name in ((4, "float32"), (2, "16-bit"), (8, "float64")):
            cells = "  ".join(f"{b}: {blk}/{w}w" for b, (blk, w) in zip(bounds, table[direction][itemsize]))
            print(f"  {direction:8s} {name:8s} {cells}")
    for (dtype, direction), cap in configs.MAX_REGISTERS.items():
        print(f"  {dtype} {direction}: at most {cap} registers a thread (configs.MAX_REGISTERS)")


def check(args):
    """Every op on the available device against a float64 reference; exit 1 on any failure."""
    dev = _device()
    if dev.type == "cpu" and not ops.INTERPRET and not ops.OFF:
        # The interpreter must be on before the kernels are defined: run again in a process that has it.
        import os
        import subprocess
        print("no GPU: checking the Triton kernel on the CPU under TRITON_INTERPRET=1", flush=True)
        sys.exit(subprocess.call([sys.executable, "-m", "elu_op", "check"],
                                 env={**os.environ, "TRITON_INTERPRET": "1"}))
    if ops.OFF:
        print(f"fastelu's kernels are off ({ops.OFF}), so its ops run PyTorch's own elu: this checks that "
              f"fallback, not fastelu's kernels.", flush=True)
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
    if ops.OFF:  # one verdict: whatever the table says, fastelu's kernels were not checked
        hint = ("Triton runs on Linux (pip install triton); elsewhere fastelu's ops are PyTorch's own." if ops.knobs is None
                else "Install a C++ compiler (g++ or clang++), then run python -m elu_op build --verbose, which builds "
                     "it or shows why it cannot.")
        print(f"FAILED: fastelu's kernels are off ({ops.OFF}), so the table above checked PyTorch's elu. {hint}")
        sys.exit(1)
    print("all passed" if not failed else f"{failed} FAILED")
    sys.exit(1 if failed else 0)


def _needs_kernels(command):
    if ops.OFF:
        sys.exit(f"{command}: fastelu's kernels are off ({ops.OFF})")


def tune(args):
    _needs_kernels("tune")
    if not torch.cuda.is_available():
        sys.exit("tune needs a CUDA GPU")
    from . import tuning
    name = torch.cuda.get_device_name()
    table = tuning.tune(args.rounds)
    path = configs.save_table(name, table)
    configs.forget()
    print(f"saved {path}")
    for direction, sizes in table.items():
        for itemsize, best in sizes.items():
            print(f"  {direction:8s} {itemsize}-byte: " + "  ".join(f"{b}/{w}w" for b, w in best))


def build(args):
    if builder.C is not None:  # importing elu_op built it, or found it built
        print(f"built {builder.C.__file__}")
        return
    try:
        module = builder.load(force=True)
    except builder.BuildError as e:
        if args.verbose:
            print(e.output, file=sys.stderr)
        sys.exit(f"fastelu: building the C++ part failed: {e}" + ("" if args.verbose else " (--verbose shows all)"))
    print(f"built {module.__file__}")


def bench(args):
    import os
    import runpy
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench_elu.py")
    if not os.path.exists(script):  # an installed package has no benchmarks/
        sys.exit("bench runs benchmarks/bench_elu.py from a source checkout of fastelu, which this install is not: "
                 "clone the repository and run `python -m elu_op bench` there")
    _needs_kernels("bench")
    if not torch.cuda.is_available():
        sys.exit("bench needs a CUDA GPU")
    sys.argv = [script, *args.rest]
    runpy.run_path(script, run_name="__main__")


def export_kernelbench(args):
    import pathlib
    if ops.knobs is None:
        sys.exit("export-kernelbench: Triton is not installed, and the exported file is Triton code")

    from . import kernelbench
    print(f"wrote {kernelbench.export(pathlib.Path(args.path))}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m elu_op", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="device, versions and the launch configurations in use")
    sub.add_parser("check", help="run every op against a float64 reference and print a pass/fail table")
    t = sub.add_parser("tune", help="measure launch configurations on this GPU and cache the best")
    t.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per candidate (default 5)")
    c = sub.add_parser("build", help="compile the C++ part for this torch now (otherwise done on first import)")
    c.add_argument("--verbose", action="store_true", help="show the compiler's output if it fails")
    b = sub.add_parser("bench", help="run benchmarks/bench_elu.py (arguments pass through)")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    k = sub.add_parser("export-kernelbench", help="write the kernel in KernelBench's one-file format")
    k.add_argument("path", nargs="?", default="elu_solution.py", help="where (default: ./elu_solution.py)")
    args = parser.parse_args(argv)
    {"info": info, "check": check, "tune": tune, "build": build, "bench": bench,
     "export-kernelbench": export_kernelbench}[args.command](args)
