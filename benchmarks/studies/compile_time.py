"""Where the first import's compile time goes: each C++ unit of elu_op/csrc/, and a unit that
includes nothing but one header, each compiled alone (one process, one core) with the flags
torch.utils.cpp_extension gives fastelu's build.

    python benchmarks/studies/compile_time.py [--runs 3] [--old FILE.cpp ...] [--out DIR]

--old adds other units to time, such as the single fastelu.cpp of an older commit.
Answer (2026-12-03, 2 cores, torch 2.13): benchmarks/studies/results/cpu_import_times.md.
"""
import argparse
import datetime
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch.utils import cpp_extension

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADERS = ["ATen/core/Tensor.h", "torch/library.h", "torch/csrc/autograd/VariableTypeUtils.h",
           "torch/csrc/utils/pybind.h", "torch/extension.h"]


def flags():
    include = [f"-isystem{p}" for p in cpp_extension.include_paths()]
    python = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
                            capture_output=True, text=True).stdout.strip()
    return ["-DTORCH_EXTENSION_NAME=probe", "-DTORCH_API_INCLUDE_EXTENSION_H", *include, f"-isystem{python}",
            "-fPIC", "-std=c++20", "-O2", "-g0"]


def compile_seconds(source, runs, cxx_flags, workdir):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([os.environ.get("CXX", "c++"), *cxx_flags, "-c", str(source), "-o",
                        os.path.join(workdir, "probe.o")], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old", nargs="*", default=[])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "studies" / "results"))
    args = parser.parse_args()
    cxx_flags = flags()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for header in HEADERS:
            unit = pathlib.Path(workdir, "header.cpp")
            unit.write_text(f"#include <{header}>\n")
            rows.append((f"`#include <{header}>` alone", compile_seconds(unit, args.runs, cxx_flags, workdir)))
        for source in sorted((ROOT / "elu_op" / "csrc").glob("*.cpp")) + [pathlib.Path(p) for p in args.old]:
            rows.append((f"`{source.name}`" + ("" if source.parent == ROOT / "elu_op" / "csrc" else f" ({source})"),
                         compile_seconds(source, args.runs, cxx_flags, workdir)))
    lines = [f"## Compile time of each unit and header: {datetime.date.today()}, {os.cpu_count()} cores, torch "
             f"{torch.__version__}, {os.environ.get('CXX', 'c++')} -O2", "",
             f"`benchmarks/studies/compile_time.py`: each compiled alone, median of {args.runs}.", "",
             "| unit | s |", "|---|---|"] + [f"| {name} | {seconds:.1f} |" for name, seconds in rows]
    text = "\n".join(lines) + "\n\n"
    with open(os.path.join(args.out, "cpu_import_times.md"), "a") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
