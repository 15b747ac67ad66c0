"""What the benchmark scripts share: dtypes, CUDA-graph replay, interleaved timing rounds, results files."""
import datetime
import json
import os
import shlex
import sys

import torch
from triton.testing import do_bench

from elu_op.tuning import middle_mean  # the mean of the middle 60%, as tune uses it

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def results_dir():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def graphed(fn):
    """fn captured in a CUDA graph: replaying it runs fn's kernels without fn's Python."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capturing stream, as capture wants
        fn()
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def time_all(fns, rounds, summary=middle_mean):
    """{key: summary of do_bench medians (ms)} over rounds, every fn of fns once a round in turn."""
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(do_bench(fn, warmup=10, rep=50, return_mode="median"))
    return {k: summary(v) for k, v in times.items()}


def result_path(out_dir, gpu, suffix):
    """out_dir/<gpu, made file-safe><suffix>, out_dir created if need be."""
    os.makedirs(out_dir, exist_ok=True)
    return os.path.join(out_dir, "".join(c if c.isalnum() else "_" for c in gpu) + suffix)


def save_rows(out_dir, gpu, name, rows):
    """Write rows (dicts) as the data of one benchmark on one GPU, to out_dir/<gpu>_<name>.json; each
    row carries what made it: the GPU, torch, triton, the date and the command."""
    import triton
    meta = {"gpu": gpu, "torch": torch.__version__, "triton": triton.__version__,
            "date": datetime.date.today().isoformat(),
            "command": shlex.join(["python", os.path.relpath(sys.argv[0]), *sys.argv[1:]])}
    with open(result_path(out_dir, gpu, f"_{name}.json"), "w") as f:
        json.dump([{**meta, **row} for row in rows], f, indent=1)
        f.write("\n")


def save(out_dir, gpu, suffix, text):
    """Write a results file (see result_path) and print it."""
    with open(result_path(out_dir, gpu, suffix), "w") as f:
        f.write(text)
    print(text)


# ---- the benchmarks' one hook into fastelu's internals -------------------------------------------

def launch(out, x, g=None, block=0, warps=0, alpha=1.0, is_result=False):
    """fastelu's C++ launch of its kernel alone: over dense, equally laid out out, x (and g, for the
    backward), in a given (BLOCK, num_warps) or, with block 0, the device table's. No checks, no
    allocation; out may be x."""
    import elu_op
    elu_op.build.C.launch(out, x, g, alpha, 1.0, 1.0, is_result, block, warps)


def plan(x, backward=False):
    """(BLOCK, num_warps) that fastelu launches with for a tensor like x."""
    import elu_op
    return elu_op.build.C.plan(x.get_device(), x.element_size(), x.numel(), backward)[:2]
