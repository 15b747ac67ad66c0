"""SASS instructions per element of elu_kernel, by dtype and direction, compiled for a GPU without
one (Triton's ptxas and cuobjdump do it on the CPU). On a GPU where 16-bit ELU is compute-bound
(the H200), instructions per byte moved tell which kernels can reach copy speed.

Two figures. "A thread runs": the instructions on the path a thread of a full block takes, entry
to EXIT (every conditional branch falls through there: the unmasked block), over its elements; the
one to read. "Whole kernel": the kernel's instruction count over the elements of its two copies of
the block, the unmasked one and the masked one, which runs for the tail block only and adds scalar
loads and stores.

    python benchmarks/studies/instruction_count.py [arch, default 90] [BLOCK, default 1024] [num_warps, default 2]
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

from elu_op.kernel import PARAMS, compile_signature, elu_kernel


def _full_block_path(sass):
    """Instructions from the entry to EXIT, every conditional branch falling through."""
    at = {int(a, 16): op.strip() for a, op in re.findall(r"/\*([0-9a-f]{4})\*/\s+([^;]*);", sass)}
    pc, count = 0, 1
    while not at[pc].startswith("EXIT"):
        pc = int(re.search(r"0x[0-9a-f]+", at[pc]).group(0), 16) if at[pc].startswith("BRA") else pc + 16
        count += 1
    return count


arch, block, warps = (int(a) for a in (sys.argv[1:] + ["90", "1024", "2"][len(sys.argv) - 1:])[:3])
cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
print(f"sm_{arch}, BLOCK {block}, {warps} warps, triton {triton.__version__}\n")
print("| kernel | a thread runs, per element | per byte moved | whole kernel, per element | most common |\n"
      "|---|---|---|---|---|")
for dtype, size in (("fp16", 2), ("bf16", 2), ("fp32", 4)):
    for backward in (False, True):
        # ELU's coefficients, with the math the launch decides for them, over flat arrays
        constants = {name: default for name, kind, default in PARAMS if kind == "constexpr"}
        constants.update(BLOCK=block, BACKWARD=backward, NORMAL_EXP=dtype == "fp16", UNIT_INPUT=True)
        # 16-byte aligned pointers, as Triton specialises for the tensors fastelu launches on
        aligned = {(i,): [["tt.divisibility", 16]] for i in range(3)}
        compiled = triton.compile(ASTSource(elu_kernel, compile_signature(f"*{dtype}"), constexprs=constants, attrs=aligned),
                                  target=GPUTarget("cuda", arch, 32), options=dict(num_warps=warps, enable_fp_fusion=True))
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(compiled.asm["cubin"])
            f.flush()
            sass = subprocess.run([cuobjdump, "-sass", f.name], capture_output=True, text=True, check=True).stdout
        ops = [op.split(".")[0] for op in re.findall(r"/\*[0-9a-f]{4}\*/\s+(?:@!?P\d\s+)?([A-Z0-9_.]+)", sass)]
        per_thread = block // (32 * warps)
        runs = _full_block_path(sass) / per_thread
        elements = 2 * per_thread
        top = ", ".join(f"{k} {v / elements:.1f}" for k, v in collections.Counter(ops).most_common(6))
        print(f"| {dtype} {'backward' if backward else 'forward'} | {runs:.1f} | "
              f"{runs / ((3 if backward else 2) * size):.1f} | {len(ops) / elements:.1f} | {top} |")
