"""Cost against size, 2**10 to 2**30 elements: fastelu beside copy_, F.elu and torch.compile.

For each direction (forward; backward, whose copy peer is torch.add(x, g, out=y), the same three
streams), dtype (fp32, bf16, fp16) and size (every power of two from 2**10 to 2**30, and the odd
sizes 999,983, 3*2**20+5, 10,000,019 and 2**24+1): the median of triton.testing.do_bench (L2
flushed) of each implementation, in interleaved rounds in one process; a row's figure is the median
over rounds, and its spread the range of fastelu's time over copy_'s, round by round.
torch.compile with static shapes (a kernel per size, as a model with fixed shapes gets),
replayed from a CUDA graph so that its per-call CPU time stays out of the GPU time. Random normal
inputs. --graphs replays every implementation from a CUDA graph: the kernels alone, without the
launches' jitter, which at 5-20 us a call moves a round by 5-10% (files named <gpu>_sizes_graphs).

Writes benchmarks/results/<gpu>_sizes.json (every round, written as rows come), <gpu>_sizes.md
(the table) and <gpu>_sizes.png (the curves); --plot writes the table and curves again from a
JSON file, on any machine (matplotlib: pip install -e ".[bench]"). Given several (a run split
over calls of a lent machine, say by direction), it joins their rows, of one GPU and the same
torch and triton, into <gpu>_sizes.json/.md/.png in --out.

    python benchmarks/bench_sizes.py [--directions forward,backward] [--dtypes fp32,bf16,fp16]
                                     [--log2 10-30] [--rounds 5] [--graphs] [--out DIR]
    python benchmarks/bench_sizes.py --plot benchmarks/results/NVIDIA_H200_sizes.json
    python benchmarks/bench_sizes.py --plot forward/NVIDIA_H200_sizes.json backward/NVIDIA_H200_sizes.json
"""
import argparse
import datetime
import json
import os
import platform
import statistics

ODD = (999_983, 3 * 2**20 + 5, 10_000_019, 2**24 + 1)
IMPLS = ("copy", "eager", "compile", "fastelu")
NAMES = {"copy": "copy_ (the ceiling)", "eager": "F.elu (eager)", "compile": "torch.compile(F.elu)",
         "fastelu": "fastelu"}
COLOURS = {"eager": "tab:orange", "compile": "tab:green", "fastelu": "tab:blue"}


def sizes(log2):
    """The powers of two from 2**FIRST to 2**LAST (log2 "FIRST-LAST") and the odd sizes between."""
    first, last = (int(v) for v in log2.split("-"))
    return sorted({2**e for e in range(first, last + 1)} | {n for n in ODD if 2**first <= n <= 2**last})


def case(n, dtype, direction, rounds, graphs=False):
    """{impl: [ms per round]} for one size, dtype and direction."""
    import torch
    import torch.nn.functional as F
    from common import graphed
    from triton.testing import do_bench

    import elu_op

    torch._dynamo.reset()  # a static-shape kernel per size; else the second size recompiles as dynamic
    x = torch.randn(n, device="cuda", dtype=dtype)
    y = torch.empty_like(x)
    if direction == "forward":
        compiled = torch.compile(lambda t: F.elu(t), dynamic=False)
        fns = {"copy": lambda: y.copy_(x), "eager": lambda: F.elu(x), "compile": lambda: compiled(x),
               "fastelu": lambda: elu_op.elu(x)}
    else:
        g = torch.randn_like(x)
        compiled = torch.compile(lambda a, b: torch.ops.aten.elu_backward(a, 1.0, 1.0, 1.0, False, b), dynamic=False)
        fns = {"copy": lambda: torch.add(x, g, out=y),
               "eager": lambda: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x),
               "compile": lambda: compiled(g, x),
               "fastelu": lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)}
    fns = {k: graphed(fn) if graphs or k == "compile" else fn for k, fn in fns.items()}
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(do_bench(fn, warmup=5, rep=30, return_mode="median"))
    return times


def summary(row):
    """The row's medians, GB/s and ratios, and the spread of fastelu's time over copy_'s."""
    streams = 2 if row["direction"] == "forward" else 3
    med = {k: statistics.median(v) for k, v in row["ms"].items()}
    gbs = {k: streams * row["n"] * row["itemsize"] / v / 1e6 for k, v in med.items()}
    per_round = [c / f for c, f in zip(row["ms"]["copy"], row["ms"]["fastelu"])]
    return med, gbs, (100 * min(per_round), 100 * max(per_round))


def label(n):
    return f"2**{n.bit_length() - 1}" if n & (n - 1) == 0 else f"{n:,}"


def table(data):
    lines = ["| direction | dtype | elements | copy us | F.elu us | compile us | fastelu us | copy GB/s | "
             "fastelu GB/s | % of copy (rounds' range) | x F.elu | x compile |", "|" + "---|" * 12]
    for row in data["rows"]:
        med, gbs, (lo, hi) = summary(row)
        lines.append(
            f"| {row['direction']} | {row['dtype']} | {label(row['n'])} | {1000 * med['copy']:.2f} | "
            f"{1000 * med['eager']:.2f} | {1000 * med['compile']:.2f} | {1000 * med['fastelu']:.2f} | "
            f"{gbs['copy']:.0f} | {gbs['fastelu']:.0f} | {100 * med['copy'] / med['fastelu']:.1f}% ({lo:.1f}-{hi:.1f}) | "
            f"{med['eager'] / med['fastelu']:.2f} | {med['compile'] / med['fastelu']:.2f} |")
    return "\n".join(lines) + "\n"


def percent(rows, impl):
    """impl's speed as a % of copy_'s, row by row."""
    return [100 * statistics.median(r["ms"]["copy"]) / statistics.median(r["ms"][impl]) for r in rows]


def plot(data, path):
    """A panel per direction and dtype; in each, one colour per implementation, as % of copy_
    (the black line at 100%): powers of two joined, the odd sizes as crosses beside them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directions = [d for d in ("forward", "backward") if any(r["direction"] == d for r in data["rows"])]
    dtypes = [t for t in ("fp32", "bf16", "fp16") if any(r["dtype"] == t for r in data["rows"])]
    low = min(min(percent(data["rows"], impl)) for impl in ("eager", "compile", "fastelu"))
    fig, axes = plt.subplots(len(directions), len(dtypes), figsize=(5 * len(dtypes), 3.8 * len(directions)),
                             sharex=True, sharey=True, squeeze=False)
    for i, direction in enumerate(directions):
        for j, dtype in enumerate(dtypes):
            ax = axes[i][j]
            rows = sorted((r for r in data["rows"] if r["direction"] == direction and r["dtype"] == dtype),
                          key=lambda r: r["n"])
            powers = [r for r in rows if r["n"] & (r["n"] - 1) == 0]
            odd = [r for r in rows if r["n"] & (r["n"] - 1)]
            ax.axhline(100, color="black", linewidth=1.2, label=NAMES["copy"])
            for impl in ("eager", "compile", "fastelu"):
                ax.plot([r["n"] for r in powers], percent(powers, impl), marker="o", markersize=3,
                        color=COLOURS[impl], label=NAMES[impl], linewidth=2 if impl == "fastelu" else 1.2)
                ax.plot([r["n"] for r in odd], percent(odd, impl), "x", markersize=6, color=COLOURS[impl],
                        label="odd sizes, each colour its own" if impl == "fastelu" else None)
            ax.set_xscale("log", base=2)
            ax.set_xlim(2**9.5, 2**30.5)
            ax.set_xticks([2**e for e in range(10, 31, 2)])
            ax.set_ylim(max(0, 10 * (low // 10) - 5), 125)
            ax.grid(True, alpha=0.3)
            ax.set_title(f"{direction}, {dtype}")
            if i == len(directions) - 1:
                ax.set_xlabel("elements")
            if j == 0:
                ax.set_ylabel("% of copy_ bandwidth (higher is faster)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=5, frameon=False, fontsize=9)
    how = ", every implementation replayed from a CUDA graph" if data.get("graphs") else ""
    fig.suptitle(f"{data['gpu']}, torch {data['torch']}, triton {data['triton']}, {data['date']}{how}", y=0.005,
                 va="bottom", fontsize=9)
    fig.tight_layout(rect=(0, 0.03, 1, 0.94))
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--directions", default="forward,backward")
    ap.add_argument("--dtypes", default="fp32,bf16,fp16")
    ap.add_argument("--log2", default="10-30", help="the sizes' powers of two, FIRST-LAST (and the odd sizes between)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--graphs", action="store_true", help="every implementation replayed from a CUDA graph")
    ap.add_argument("--out", default=None)
    ap.add_argument("--plot", metavar="JSON", nargs="+",
                    help="only write the table and curves: beside this JSON file, or of these joined, in --out")
    args = ap.parse_args()
    if args.plot:  # a run's JSON, also one cut short: its table and curves
        if len(args.plot) == 1:
            with open(args.plot[0]) as f:
                write(json.load(f), args.plot[0].removesuffix(".json"))
            return
        data = join(args.plot)  # named as each run named its file: <gpu>_sizes.json
        out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
        os.makedirs(out, exist_ok=True)
        base = os.path.join(out, os.path.basename(args.plot[0]).removesuffix(".json"))
        with open(base + ".json", "w") as f:
            json.dump(data, f)
        write(data, base)
        return

    import torch
    import triton
    from common import DTYPES, result_path, results_dir
    torch.manual_seed(0)
    gpu = torch.cuda.get_device_name()
    data = dict(gpu=gpu, torch=torch.__version__, triton=triton.__version__, python=platform.python_version(),
                date=str(datetime.date.today()), rounds=args.rounds, graphs=args.graphs, rows=[])
    base = result_path(args.out or results_dir(), gpu, "_sizes_graphs" if args.graphs else "_sizes")
    for direction in args.directions.split(","):
        for name in args.dtypes.split(","):
            for n in sizes(args.log2):
                dtype = DTYPES[name]
                ms = case(n, dtype, direction, args.rounds, args.graphs)
                data["rows"].append(dict(direction=direction, dtype=name, n=n, itemsize=dtype.itemsize, ms=ms))
                print(table(dict(rows=data["rows"][-1:])).splitlines()[-1], flush=True)
                with open(base + ".json", "w") as f:  # every row, so that a run cut short keeps what it measured
                    json.dump(data, f)
    write(data, base)


def join(paths):
    """One run's data from several runs' JSON files: their rows, in order, where two runs measured
    the same direction, dtype and size the later file's row (a region measured again, say with more
    rounds); the GPU, torch and triton must agree (a mixture would not be one curve), the dates and
    rounds are listed."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    for key in ("gpu", "torch", "triton", "graphs"):
        values = [str(run.get(key, False)) for run in runs]  # runs before --graphs launched eagerly
        if len(set(values)) > 1:
            raise SystemExit(f"bench_sizes: these runs differ in {key} ({', '.join(values)}); "
                             f"join runs of one GPU, torch, triton and way of launching only")
    rows = {}
    for run in runs:
        for row in run["rows"]:
            row.setdefault("date", run["date"])  # each row keeps the day it was measured
            key = row["direction"], row["dtype"], row["n"]
            if key in rows:
                print(f"bench_sizes: {' '.join(map(str, key))}: the later run's row")
            rows[key] = row
    data = {**runs[0], "rows": list(rows.values())}
    for key in ("date", "rounds", "python"):
        data[key] = " / ".join(dict.fromkeys(str(run[key]) for run in runs))
    return data


def write(data, base):
    """base.md (the table) and base.png (the curves, where matplotlib is there) from a run's data."""
    script = "benchmarks/bench_sizes.py" + (" --graphs" if data.get("graphs") else "")
    head = (f"# Cost against size on {data['gpu']}\n\n{data['date']}, torch {data['torch']}, triton "
            f"{data['triton']}, python {data['python']}; {script}, {data['rounds']} interleaved rounds (its "
            f"docstring says how). Times are medians over rounds; the range is fastelu's % of copy in its best "
            f"and worst round.\n\n")
    with open(base + ".md", "w") as f:
        f.write(head + table(data))
    print(table(data))
    try:
        plot(data, base + ".png")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
