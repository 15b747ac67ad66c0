"""What importing fastelu costs on this machine (no GPU needed): `import torch`, the first
`import elu_op` (which compiles the C++ part into an empty cache), and a cached `import elu_op`,
each the median of fresh processes, with the ratios to `import torch` timed in the same run.

    python benchmarks/studies/import_time.py [--runs 5] [--source DIR] [--label TEXT] [--out DIR]

--source times another checkout of fastelu (an older commit in a git worktree, say), imported
from there through PYTHONPATH, with the same Python and torch.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import triton

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(code, env, cwd):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", default=ROOT, help="the fastelu checkout to import (default: this one)")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "studies", "results"))
    args = parser.parse_args()
    base = {**os.environ, "PYTHONPATH": os.path.abspath(args.source), "TRITON_INTERPRET": "0"}
    times = {"import torch": [], "first import elu_op (compiles)": [], "cached import elu_op": []}
    # Run from an empty directory: `python -c` puts the working directory first on sys.path, where
    # a checkout would shadow --source.
    with tempfile.TemporaryDirectory() as cache:
        for run in range(args.runs):  # interleaved, so that a slow spell of the machine hits all three
            times["import torch"].append(timed("import torch", base, cache))
            fresh = {**base, "FASTELU_CACHE": os.path.join(cache, str(run))}
            times["first import elu_op (compiles)"].append(timed("import elu_op", fresh, cache))
            times["cached import elu_op"].append(timed("import elu_op", fresh, cache))
    torch_s = statistics.median(times["import torch"])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    where = subprocess.run([sys.executable, "-c", "import elu_op; print(elu_op.__file__)"], env=base,
                           cwd=tempfile.gettempdir(), capture_output=True, text=True).stdout.strip()
    lines = [f"## {args.label}: {datetime.date.today()}, {cpu}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, torch {torch.__version__}, triton {triton.__version__}", "",
             f"Median of {args.runs} fresh processes each (wall time of `python -c ...`), importing {where}.", "",
             "| what | median s | x import torch | runs (s) |", "|---|---|---|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} | {median / torch_s:.2f} | "
                     f"{' '.join(f'{v:.2f}' for v in values)} |")
    text = "\n".join(lines) + "\n\n"
    path = os.path.join(args.out, "cpu_import_times.md")
    with open(path, "a") as f:
        f.write(text)
    print(text, f"appended to {path}", sep="")


if __name__ == "__main__":
    main()
