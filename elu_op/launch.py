"""The launches of elu_kernel that the C++ (csrc/launch.cpp) leaves to Triton's own launcher.

The C++ decides every launch (configuration, offset width, coefficients) and makes it itself with
cuLaunchKernel. It calls run() here for the rest: the first launch of each compiled kernel (Triton
compiles it, and run() hands it back for the C++ to launch from then on), CPU tensors under
TRITON_INTERPRET=1, tensors that are not 16-byte aligned (Triton compiles another kernel for
them), and every launch while a profiler hooks Triton's launches.

Triton's launcher (CompiledKernel.run) is generic: a Python wrapper, then a C function that parses
some twenty arguments, makes a CUDA context current and calls cuLaunchKernelEx; at 4096 elements it
was most of a call (benchmarks/studies/results/NVIDIA_H200_calls.md). elu_kernel has one fixed parameter list, so the C++
passes exactly that list, once handed() has checked that the compiled kernel's is that list. Those
checks rely on Triton internals (the PTX text, CompiledKernel's fields): where they do not hold,
one warning, and Triton's launcher keeps every launch. tests/test_launch.py checks them on the
installed triton.
"""
import os
import re
import threading
import warnings

from triton.runtime.interpreter import InterpretedFunction

from .configs import MAX_REGISTERS
from .interpreter import faithful
from .kernel import PARAMS, elu_kernel

# One PTX kernel parameter: its type and whether it is a pointer.
_PARAM = re.compile(r"\.param\s+\.(\w+)(\s+\.ptr)?")
# elu_kernel's runtime parameters (kernel.PARAMS) as Triton lowers them, then whatever pointers
# Triton appends. n's width is the one group.
_PTX_KINDS = {"ptr": "ptr", "int": "[usb](32|64)", "f64": "f64", "i64": "[usb]64"}
_EXPECTED = re.compile(" ".join(_PTX_KINDS[kind] for _, kind, _ in PARAMS if kind != "constexpr") + "((?: ptr)*)")

_warned = set()
# Under TRITON_INTERPRET=1 (read when kernel.py was imported) Triton interprets elu_kernel, for CUDA
# tensors too (it copies them to the host and back): nothing compiled to hand to the C++.
INTERPRETED = isinstance(elu_kernel, InterpretedFunction)
# Triton's interpreter keeps a launch's state (its grid, the tl functions it patches) in globals,
# so interpreted launches from several threads would mix: one at a time, each with the
# interpreter rounding as the GPU does (interpreter.py). GPU launches never wait.
_interpreting = threading.Lock()


def _unlock_in_child():
    # A fork copies the lock as it is: held, if another thread was launching, by a thread that does
    # not exist in the child, whose launches would then wait for ever.
    global _interpreting
    _interpreting = threading.Lock()


os.register_at_fork(after_in_child=_unlock_in_child)


def run(args, grid, warps):
    """Launch elu_kernel through Triton in `grid` programs of `warps` warps: args holds its
    parameters by name (kernel.PARAMS). Returns handed(the compiled kernel), None where it was
    interpreted."""
    # The register caps were measured on flat arrays, where they pay; a view's tiles keep more.
    registers = None if args["COLS"] else MAX_REGISTERS.get((str(args["x_ptr"].dtype).removeprefix("torch."),
                                                             "backward" if args["BACKWARD"] else "forward"))
    # FMA contraction asked for by name: the polynomials are written for one FMA per term, and
    # Triton 3.10 turns it off by default.
    def launch():
        return elu_kernel[(grid,)](**args, num_warps=warps, maxnreg=registers, enable_fp_fusion=True)

    if not INTERPRETED:
        return handed(launch())
    with _interpreting, faithful():
        launch()
    return None


def parameter_plan(ptx):
    """(n is 64-bit, number of appended pointers) for elu_kernel's PTX, or None if its parameters
    are not the ones the C++ passes."""
    start = ptx.index(".entry")
    params = ptx[ptx.index("(", start):ptx.index(")", start)]
    kinds = " ".join("ptr" if ptr else kind for kind, ptr in _PARAM.findall(params))
    match = _EXPECTED.fullmatch(kinds)
    if match is None:
        return None
    return match.group(1) == "64", match.group(2).count("ptr")


def handed(compiled):
    """(CUfunction, threads, shared memory, appended pointers, n is 64-bit) for the C++ to launch
    this compiled elu_kernel with, or None where it must stay with Triton's launcher."""
    try:
        md = compiled.metadata
        if (getattr(md, "global_scratch_size", 0) or getattr(md, "profile_scratch_size", 0) or md.num_ctas != 1
                or getattr(md, "launch_cooperative_grid", False) or getattr(md, "launch_pdl", False)):
            return None  # needs what the C++ does not pass: an ordinary case, no warning
        plan = parameter_plan(compiled.asm["ptx"])
        if plan is None:
            raise ValueError("the PTX parameters are not kernel.PARAMS's runtime ones")
        n64, extra = plan
        return int(compiled.function), md.num_warps * 32, int(md.shared), extra, n64
    except Exception as e:  # noqa: BLE001 - any mismatch with this triton's internals
        _warn_once("kernels", f"its compiled kernels are not what fastelu's C++ launch expects ({e}), so Triton's own "
                   f"launcher makes every launch (correct, but slower per call)")
        return None


def _warn_once(kind, what):
    if kind not in _warned:
        _warned.add(kind)
        import triton
        warnings.warn(f"fastelu, triton {triton.__version__}: {what}", RuntimeWarning, stacklevel=3)


def hook_lists(runtime):
    """The lists of Triton's launch-enter and launch-exit hooks, which the C++ watches: while a
    profiler hooks launches, they go through Triton's launcher, which reports them."""
    lists = tuple(getattr(getattr(runtime, name, None), "calls", None)
                  for name in ("launch_enter_hook", "launch_exit_hook"))
    if not all(isinstance(calls, list) for calls in lists):
        _warn_once("hooks", "its launch hooks are not lists of calls, so the launches fastelu makes from C++ are not "
                   "reported to profilers that hook Triton's launches")
        return None, None
    return lists
