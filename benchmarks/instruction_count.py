"""SASS instructions per element of elu_kernel, by dtype and direction, compiled for a GPU without
one (Triton's ptxas and cuobjdump do it on the CPU). On a GPU where 16-bit ELU is compute-bound
(the H200), instructions per byte moved tell which kernels can reach copy speed.

The figure is the whole kernel's instruction count over the elements of its copies of the block:
the unmasked copy, which runs for every full block, and the masked one, which runs for the tail
block only and adds scalar loads and stores (about 1.5 instructions an element to the mean). Read
the rows against each other.

    python benchmarks/instruction_count.py [arch, default 90] [BLOCK, default 1024] [num_warps, default 2]
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from elu_op.kernel import elu_kernel

arch, block, warps = (int(a) for a in (sys.argv[1:] + ["90", "1024", "2"][len(sys.argv) - 1:])[:3])
cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
print(f"sm_{arch}, BLOCK {block}, {warps} warps, triton {triton.__version__}\n")
print("| kernel | instructions per element | per byte moved | most common |\n|---|---|---|---|")
for dtype, size in (("fp16", 2), ("bf16", 2), ("fp32", 4)):
    for backward in (False, True):
        signature = dict(out_ptr=f"*{dtype}", x_ptr=f"*{dtype}", g_ptr=f"*{dtype}", n="i32", negcoef="fp64",
                         scale="fp64", input_scale="fp64", BLOCK="constexpr", BACKWARD="constexpr",
                         IS_RESULT="constexpr", INT64="constexpr", NORMAL_EXP="constexpr")
        # float16 with ELU's coefficients takes its cheaper math, as the launch decides
        constants = dict(BLOCK=block, BACKWARD=backward, IS_RESULT=False, INT64=False, NORMAL_EXP=dtype == "fp16")
        # 16-byte aligned pointers, as Triton specialises for the tensors fastelu launches on
        aligned = {(i,): [["tt.divisibility", 16]] for i in range(3)}
        compiled = triton.compile(ASTSource(elu_kernel, signature, constexprs=constants, attrs=aligned),
                                  target=GPUTarget("cuda", arch, 32), options=dict(num_warps=warps, enable_fp_fusion=True))
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(compiled.asm["cubin"])
            f.flush()
            sass = subprocess.run([cuobjdump, "-sass", f.name], capture_output=True, text=True, check=True).stdout
        ops = [op.split(".")[0] for op in re.findall(r"/\*[0-9a-f]{4}\*/\s+(?:@!?P\d\s+)?([A-Z0-9_.]+)", sass)]
        # the kernel's two copies of the block (unmasked, masked), each over block / threads
        # elements a thread
        elements = 2 * block // (32 * warps)
        per_element = len(ops) / elements
        streams = 3 if backward else 2
        top = ", ".join(f"{k} {v / elements:.1f}" for k, v in collections.Counter(ops).most_common(6))
        print(f"| {dtype} {'backward' if backward else 'forward'} | {per_element:.1f} | "
              f"{per_element / (streams * size):.1f} | {top} |")
