"""Inductor's pointwise autotuning in a compiled graph, beside the activation's math: for the
float32 graph t + act(0.5t + 0.1), the kernel that Inductor generates (with stock F.elu and with
fastelu) timed under each of Inductor's two candidate launches for it, beside copy_, and which
candidate fresh compiles pick (each compile with empty caches, so each autotunes anew).

    python benchmarks/studies/inductor_picks.py [--sizes 24,25,27] [--compiles 8] [--rounds 5] [--out DIR]
"""
import argparse
import collections
import datetime
import importlib.util
import os
import re
import sys
import tempfile

import torch
import torch.nn.functional as F
import triton
# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import save, time_all
from torch._inductor import codecache, utils

import elu_op

ACTS = {"stock": F.elu, "fastelu": elu_op.elu}
CANDIDATES = ((1024, 4), (512, 8))  # (XBLOCK, num_warps): Inductor's two for a large 1-d pointwise kernel
fresh_cache = getattr(utils, "fresh_cache", None) or utils.fresh_inductor_cache


def compile_fresh(act, x):
    """Compile and run t + act(0.5t + 0.1) on x with empty caches: (its one Triton kernel's source,
    the (XBLOCK, num_warps) that Inductor's autotuning picked)."""
    torch._dynamo.reset()
    with fresh_cache():
        codecache.PyCodeCache.cache_clear()
        fn = torch.compile(lambda t: t + act(0.5 * t + 0.1), fullgraph=True, dynamic=False)
        code = "\n".join(utils.run_and_get_code(fn, x)[1])
        mods = codecache.PyCodeCache.modules
        kernels = {id(k): k for m in (mods.values() if isinstance(mods, dict) else mods)
                   for name, k in vars(m).items() if name.startswith("triton_") and hasattr(k, "launchers")}
    (kernel,) = kernels.values()
    (launcher,) = kernel.launchers
    source = re.search(r"async_compile\.triton\('\w+', '''(.*?)'''", code, re.S).group(1)
    return source, (launcher.config.kwargs["XBLOCK"], launcher.config.num_warps)


def as_jit(source):
    """The generated kernel as a plain triton.jit function (Inductor's autotuning decorator dropped),
    loaded from a file, since Triton reads a kernel's source."""
    source = re.sub(r"@triton_heuristics\.\w+\(.*?\)\n@triton\.jit", "@triton.jit", source, flags=re.S)
    f = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
    f.write(source)
    f.close()
    spec = importlib.util.spec_from_file_location("generated", f.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, re.search(r"def (triton_\w+)", source).group(1))


def row(exp, compiles, rounds):
    n = 2**exp
    x = torch.randn(n, device="cuda")
    y = torch.empty_like(x)
    picks = {route: collections.Counter() for route in ACTS}
    fns = {"copy_": lambda: y.copy_(x)}
    for route, act in ACTS.items():
        for _ in range(compiles):
            source, pick = compile_fresh(act, x)
            picks[route][pick] += 1
        kernel = as_jit(source)
        for xblock, warps in CANDIDATES:
            fns[route, xblock, warps] = (lambda k=kernel, b=xblock, w=warps: k[(n // b,)](x, y, n, XBLOCK=b,
                                                                                        num_warps=w))
    us = {k: t * 1000 for k, t in time_all(fns, rounds).items()}
    cells = [f"{us['copy_']:.1f}"] + [f"{us[r, b, w]:.1f} ({100 * us['copy_'] / us[r, b, w]:.0f}%)"
                                     for r in ACTS for b, w in CANDIDATES]
    cells += [", ".join(f"{b}/{w}: {c}" for (b, w), c in sorted(picks[r].items(), reverse=True)) for r in ACTS]
    line = f"| 2**{exp} | " + " | ".join(cells) + " |"
    print(line, flush=True)
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="24,25,27")
    ap.add_argument("--compiles", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    heads = [f"{r} {b}/{w}" for r in ACTS for b, w in CANDIDATES] + [f"{r} picks" for r in ACTS]
    text = [f"# Inductor's pointwise autotuning on {props.name}", "",
            f"{datetime.date.today()}, torch {torch.__version__}, triton {triton.__version__}. "
            f"`python benchmarks/studies/inductor_picks.py --compiles {args.compiles} --rounds {args.rounds}`: float32 "
            f"t + act(0.5t + 0.1). Microseconds (% of copy_), mean of the middle 60% of {args.rounds} interleaved "
            f"rounds of do_bench medians; the kernel as Inductor generates it, launched with each of its two "
            f"candidates (XBLOCK/num_warps); picks: what {args.compiles} compiles with empty caches chose.", "",
            "| elements | copy_ | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    text += [row(int(e), args.compiles, args.rounds) for e in args.sizes.split(",")]
    save(args.out, props.name, "_inductor_picks.md", "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
