"""KernelBench's own eval of level1/31_ELU (eval_kernel_against_ref, backend triton, 5 correctness
and 20 timed trials, its reference timed in the same call): kernelbench/elu_solution.py, the seed,
the package (elu_op.elu inside a ModelNew) and, as a control, F.elu itself inside a ModelNew, on
the stock inputs (torch.rand) and on signed ones (torch.randn * 3), candidates interleaved round by
round.

    python benchmarks/studies/kernelbench_eval.py KERNELBENCH_DIR [--rounds 2] [--out DIR]

KERNELBENCH_DIR holds a checkout's src/ and KernelBench/ (ScalingIntelligence/KernelBench). The LLM
clients its utils import (openai, litellm) play no part in eval and are stubbed. The inputs are
drawn on the GPU (the same distributions): drawing 1.6e9 numbers on the CPU takes seconds a trial.
"""
import argparse
import datetime
import pathlib
import sys
import os
import types

import torch
import triton

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import save  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent

# ModelNew around a call: the package's, and PyTorch's own as a control (the harness times the
# candidate before its reference, so the control shows what the order alone does to the ratio).
WRAPPED = '''import torch
import torch.nn as nn
import torch.nn.functional as F
import elu_op


class ModelNew(nn.Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return CALL(x, self.alpha)
'''

SEED_MODEL = '''

class ModelNew(torch.nn.Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return triton_elu(x, alpha=self.alpha)
'''


def load_kernelbench(root):
    for name, attrs in (("openai", ("OpenAI",)), ("litellm", ("completion",))):
        stub = types.ModuleType(name)
        for attr in attrs:
            setattr(stub, attr, None)
        sys.modules.setdefault(name, stub)
    sys.path.insert(0, str(root / "src"))
    from kernelbench.eval import eval_kernel_against_ref
    return eval_kernel_against_ref


def references(root):
    """level1/31_ELU's source, by inputs: the stock torch.rand and signed torch.randn * 3."""
    reference = (root / "KernelBench" / "level1" / "31_ELU.py").read_text()
    stock = "torch.rand(batch_size, dim)"
    assert stock in reference
    return {"torch.rand (stock)": reference.replace(stock, "torch.rand(batch_size, dim, device='cuda')"),
            "torch.randn * 3": reference.replace(stock, "torch.randn(batch_size, dim, device='cuda') * 3")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernelbench", type=pathlib.Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    evaluate = load_kernelbench(args.kernelbench)
    inputs = references(args.kernelbench)
    candidates = {"kernelbench/elu_solution.py": (HERE.parent / "kernelbench" / "elu_solution.py").read_text(),
                  "the seed": (HERE / "studies" / "seed_kernel.py").read_text() + SEED_MODEL,
                  "the package (elu_op.elu)": WRAPPED.replace("CALL", "elu_op.elu"),
                  "control: PyTorch's F.elu itself": WRAPPED.replace("CALL", "F.elu")}
    rows = {(i, c): [] for i in inputs for c in candidates}
    for r in range(args.rounds):
        for i, ref in inputs.items():
            for c, src in candidates.items():
                res = evaluate(ref, src, num_correct_trials=5, num_perf_trials=20, measure_performance=True,
                               backend="triton", device=0)
                ok = res.correctness
                speedup = res.ref_runtime / res.runtime if ok and res.runtime > 0 else float("nan")
                rows[i, c].append((ok, res.runtime, res.ref_runtime, speedup))
                print(f"round {r + 1} | {i} | {c} | correct {ok} | {res.runtime:.3f} ms | ref {res.ref_runtime:.3f} ms "
                      f"| {speedup:.3f}x", flush=True)
                if not ok:
                    print(res.metadata, flush=True)
    lines = []
    for (i, c), runs in rows.items():
        cells = " | ".join(f"{s:.3f}x ({t:.3f}/{ref:.3f} ms)" for _, t, ref, s in runs)
        lines.append(f"| {i} | {c} | {'5/5' if all(ok for ok, *_ in runs) else 'FAILED'} | {cells} | "
                     f"{sum(s for *_, s in runs) / len(runs):.3f}x |")
    props = torch.cuda.get_device_properties(0)
    header = " | ".join(f"round {r + 1}: speedup (ms / ref ms)" for r in range(args.rounds))
    text = (f"# KernelBench level1/31_ELU in KernelBench's own eval on {props.name}\n\n"
            f"{datetime.date.today()}, torch {torch.__version__}, triton {triton.__version__}, KernelBench's "
            f"eval_kernel_against_ref (backend triton, 5 correctness trials, 20 timed trials, cuda_event timing, "
            f"its reference timed in the same call); speedup = reference ms / candidate ms. 4096 x 393216 "
            f"float32. `python benchmarks/studies/kernelbench_eval.py KERNELBENCH_DIR`.\n\n"
            f"| inputs | candidate | correct | {header} | mean |\n|---|---|---|" + "---|" * args.rounds + "---|\n"
            + "\n".join(lines) + "\n")
    save(args.out, props.name, "_kernelbench.md", text)


if __name__ == "__main__":
    main()
