"""The kernels behind the 2**24 16-bit forward figures, once each, for Nsight Compute.

    ncu --profile-from-start off --clock-control none --metrics <list> python benchmarks/studies/ncu_kernels.py

Profiled, in this order (warm-up and input generation are outside the profiled range): copy_ fp16
2**24, fastelu fp16 2**24, eager F.elu fp16 2**24, fastelu fp16 2**28, fastelu fp32 2**24.
"""
import torch
import torch.nn.functional as F

import elu_op

cases = []
for n, dtype in ((2**24, torch.float16), (2**28, torch.float16), (2**24, torch.float32)):
    x = torch.randn(n, device="cuda", dtype=dtype)
    cases.append((x, torch.empty_like(x)))
(x16, y16), (x16_big, _), (x32, _) = cases
runs = [lambda: y16.copy_(x16), lambda: elu_op.elu(x16), lambda: F.elu(x16), lambda: elu_op.elu(x16_big),
        lambda: elu_op.elu(x32)]
for run in runs:  # warm-up: compiles, caches
    run()
torch.cuda.synchronize()
torch.cuda.profiler.start()
for run in runs:
    run()
torch.cuda.synchronize()
torch.cuda.profiler.stop()
