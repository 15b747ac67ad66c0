"""Why PyTorch's own F.elu scores about 0.93x against itself in KernelBench's eval on the H200.

eval_kernel_against_ref times the candidate (phase 1), then its reference (phase 2), each with
KernelBench's timing function: 3 warm-up calls, torch.cuda.empty_cache(), then 1 + 20 trials, each
after an L2 flush, the mean of the 20 scored. Two probes:

- eval: the GPU time of every trial in both phases (and the host time of every call: a cudaMalloc
  inside a timed call would show there), for F.elu as the candidate (the control), for the
  package, and with the order swapped (the package as the reference, F.elu the candidate);
- freed: F.elu, the package and a clone through KernelBench's timing function after allocating,
  filling and freeing (empty_cache) N GiB, with nvidia-smi sampling the clocks every 20 ms.

    python benchmarks/studies/kernelbench_phases.py KERNELBENCH_DIR
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import elu_op
# benchmarks/, for common.py and the benchmarks
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from kernelbench_eval import WRAPPED, load_kernelbench, references


def eval_phases(root):
    evaluate = load_kernelbench(root)
    from kernelbench import timing
    reference = references(root)["torch.rand (stock)"]
    phases = []
    timing_function = timing.get_timing_function

    def recording(method):
        time_it = timing_function(method)

        def wrapper(kernel_fn, args, **kw):
            host = []

            def call(*a):
                t0 = time.perf_counter()
                out = kernel_fn(*a)
                host.append(1e3 * (time.perf_counter() - t0))
                return out
            gpu = time_it(call, args, **kw)
            phases.append((gpu, host))
            return gpu
        return wrapper
    timing.get_timing_function = recording
    control = WRAPPED.replace("CALL", "F.elu")
    runs = {"control (F.elu as the candidate)": (reference, control),
            "the package": (reference, WRAPPED.replace("CALL", "elu_op.elu")),
            "swapped (the package as the reference, F.elu the candidate)":
                ("import elu_op\n" + reference.replace("F.elu(x, alpha=self.alpha)", "elu_op.elu(x, self.alpha)"),
                 control)}
    for label, (ref, candidate) in runs.items():
        phases.clear()
        res = evaluate(ref, candidate, num_correct_trials=5, num_perf_trials=20, measure_performance=True,
                       backend="triton", device=0)
        print(f"\n{label}: correct {res.correctness}, candidate {res.runtime} ms, reference {res.ref_runtime} ms, "
              f"speedup {res.ref_runtime / res.runtime:.3f}x")
        for name, (gpu, host) in zip(("phase 1 (candidate)", "phase 2 (reference)"), phases):
            print(f"  {name} GPU ms: {' '.join(f'{t:.2f}' for t in gpu)}")
            print(f"  {' ' * len(name)} host ms of each call (3 warm-up, 1 discarded, 20): "
                  f"{' '.join(f'{t:.2f}' for t in host)}")


def after_freeing():
    from kernelbench.timing import time_execution_with_cuda_event
    samples = tempfile.NamedTemporaryFile("w+", suffix=".csv")
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem", "--format=csv,noheader,nounits",
                            "-lms", "20"], stdout=samples, stderr=subprocess.DEVNULL)
    x = torch.rand(4096, 393216, device="cuda")
    time.sleep(1)
    print("\nKernelBench's timing function, 4096 x 393216 float32, GPU ms of the 20 scored trials:")
    cases = [("F.elu", F.elu, 0), ("F.elu", F.elu, 0), ("elu_op.elu", elu_op.elu, 0)]
    cases += [(name, fn, gib) for gib in (6, 18, 36) for name, fn in (("F.elu", F.elu), ("elu_op.elu", elu_op.elu))]
    cases += [("clone", torch.clone, 18)]
    for name, fn, gib in cases:
        if gib:
            blocks = [torch.empty(2**28, device="cuda").fill_(1.0) for _ in range(gib)]
            torch.cuda.synchronize()
            blocks.clear()
            torch.cuda.empty_cache()
        times = time_execution_with_cuda_event(fn, [x], num_trials=20, verbose=False, device=0)
        print(f"  {name:10s} after freeing {gib:2d} GiB: mean {sum(times) / len(times):.3f} | "
              + " ".join(f"{t:.2f}" for t in times))
    smi.terminate()
    smi.wait()
    samples.seek(0)
    clocks = [tuple(int(v) for v in line.split(",")) for line in samples if line.strip()]
    busy = [c for c in clocks if c[0] > 1000]
    print(f"  nvidia-smi while busy: SM {min(c[0] for c in busy)}-{max(c[0] for c in busy)} MHz, "
          f"memory {min(c[1] for c in busy)}-{max(c[1] for c in busy)} MHz ({len(busy)} of {len(clocks)} samples)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernelbench", type=pathlib.Path)
    args = ap.parse_args()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    eval_phases(args.kernelbench)
    after_freeing()


if __name__ == "__main__":
    main()
