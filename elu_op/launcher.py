"""Handing compiled kernels to fastelu's C++ (csrc/fastelu.cpp), which launches them itself.

Triton's launcher (CompiledKernel.run) is generic: a Python wrapper that sets up scratch buffers,
then a C function that parses some twenty arguments by format string, makes a CUDA context
current and calls cuLaunchKernelEx. At 4096 elements it was most of fastelu's call on the H100
(benchmarks/results/). fastelu's kernel has one fixed parameter list and uses none of that, so the
C++ calls cuLaunchKernel with exactly that list, once this module has checked that the compiled
kernel's parameters are that list.
"""
import re

from . import _C

# One PTX kernel parameter: its type and whether it is a pointer.
_PARAM = re.compile(r"\.param\s+\.(\w+)(\s+\.ptr)?")
# elu_kernel's parameters as Triton lowers them: out, x, g, n (32 or 64 bits), the three float64
# scalars, then whatever pointers Triton appends.
_EXPECTED = re.compile(r"ptr ptr ptr [usb](32|64) f64 f64 f64((?: ptr)*)")


def parameter_plan(ptx):
    """(n is 64-bit, number of appended pointers) for elu_kernel's PTX, or None if its
    parameters are not the ones the C++ passes."""
    start = ptx.index(".entry")
    params = ptx[ptx.index("(", start):ptx.index(")", start)]
    kinds = " ".join("ptr" if ptr else kind for kind, ptr in _PARAM.findall(params))
    match = _EXPECTED.fullmatch(kinds)
    if match is None:
        return None
    return match.group(1) == "64", match.group(2).count("ptr")


def register(compiled, device, dtype, n, mode, block, width):
    """Let the C++ launch this compiled elu_kernel for sizes like n (mode: 0 forward, 1 backward
    from the input, 2 from the result; width: kernel.width). Kernels that need scratch memory,
    clusters or special launch attributes, or whose parameters are not as expected, stay with
    Triton's launcher."""
    md = compiled.metadata
    if (getattr(md, "global_scratch_size", 0) or getattr(md, "profile_scratch_size", 0) or md.num_ctas != 1
            or getattr(md, "launch_cooperative_grid", False) or getattr(md, "launch_pdl", False)):
        return
    plan = parameter_plan(compiled.asm["ptx"])
    if plan is not None:
        wide, extra = plan
        _C.register_kernel(device, dtype, n, mode, block, width, compiled.function, md.num_warps * 32, md.shared,
                           extra, wide)
