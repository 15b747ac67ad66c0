"""Tuning: time every candidate launch configuration on this GPU, per element size and size bucket.

`python -m elu_op tune` saves the winners to the tuning cache (configs.py), which then takes
precedence over the tuned tables and the rule.
"""
import statistics
import sys

import torch

from . import build, configs


def middle_mean(values):
    """Mean of the middle 60% of values: a timing's mean with the odd outlier dropped."""
    k = len(values) // 5
    return statistics.mean(sorted(values)[k:len(values) - k])


def tune(rounds):
    """{direction: {itemsize: best (BLOCK, num_warps) per size bucket}} for the current GPU."""
    from triton.testing import do_bench
    name = torch.cuda.get_device_name()
    sizes = [2**16, 2**20, 2**24, 2**27]  # one per bucket (the last one stands for everything larger)
    dtypes = {2: torch.bfloat16, 4: torch.float32, 8: torch.float64}
    steps, done = len(configs.DIRECTIONS) * len(dtypes) * len(sizes) * rounds * len(configs.CANDIDATES), 0
    table = {}
    for direction in configs.DIRECTIONS:
        table[direction] = {}
        for itemsize, dtype in dtypes.items():
            best = []
            for n in sizes:
                x = torch.randn(n, device="cuda", dtype=dtype)
                g = torch.randn_like(x) if direction == "backward" else None
                out = torch.empty_like(x)
                # A do_bench median moves between calls by up to 10% at small sizes (see
                # benchmarks/studies/config_sweep.py): interleaved rounds spread that drift over all candidates.
                timings = {c: [] for c in configs.CANDIDATES}
                for _ in range(rounds):
                    for block, warps in configs.CANDIDATES:
                        def call():
                            build.C.launch(out, x, g, 1.0, 1.0, 1.0, False, block, warps)
                        timings[block, warps].append(do_bench(call, warmup=10, rep=40, return_mode="median"))
                        done += 1
                        if sys.stderr.isatty():
                            bar = "#" * (30 * done // steps)
                            print(f"\rtuning {name} [{bar:30s}] {done}/{steps}", end="", file=sys.stderr, flush=True)
                best.append(min(timings, key=lambda c: middle_mean(timings[c])))
            table[direction][itemsize] = tuple(best)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return table
