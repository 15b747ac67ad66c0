"""The C++ launch path: the compiled kernel's parameters as launcher.py reads them, and the C++
module's registrations and checks (its launches are tested on the GPU, in test_gpu.py)."""
import os
import pathlib
import re
import struct
import subprocess
import sys

import pytest
import torch

from elu_op import _C, launcher
from elu_op import coefficients as C


# Compiles elu_kernel for a GPU without one (PTX and ptxas come with Triton), in a process of its
# own: under TRITON_INTERPRET=1 the kernel is not compilable.
_COMPILE = """
import sys, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from elu_op import launcher
from elu_op.kernel import elu_kernel
for arch, dtype, n_type in ((89, "*fp32", "i32"), (90, "*bf16", "i64")):
    signature = dict(out_ptr=dtype, x_ptr=dtype, g_ptr=dtype, n=n_type, negcoef="fp64", scale="fp64",
                     input_scale="fp64", BLOCK="constexpr", BACKWARD="constexpr", IS_RESULT="constexpr",
                     INT64="constexpr")
    constants = dict(BLOCK=512, BACKWARD=arch == 90, IS_RESULT=False, INT64=n_type == "i64")
    compiled = triton.compile(ASTSource(elu_kernel, signature, constexprs=constants),
                              target=GPUTarget("cuda", arch, 32), options=dict(num_warps=4))
    md = compiled.metadata
    print(launcher.parameter_plan(compiled.asm["ptx"]), md.global_scratch_size, md.profile_scratch_size)
"""


def test_parameter_plan_of_the_real_kernel():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).parent.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    # n's width, then the two scratch pointers Triton appends, null here: no scratch needed
    assert run.stdout.split("\n")[:2] == ["(False, 2) 0 0", "(True, 2) 0 0"]


_FLOAT64_PTX = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from elu_op.kernel import elu_kernel
signature = dict(out_ptr="*fp64", x_ptr="*fp64", g_ptr="*fp64", n="i32", negcoef="fp64", scale="fp64",
                 input_scale="fp64", BLOCK="constexpr", BACKWARD="constexpr", IS_RESULT="constexpr", INT64="constexpr")
for backward in (False, True):
    compiled = triton.compile(ASTSource(elu_kernel, signature, constexprs=dict(BLOCK=256, BACKWARD=backward,
                              IS_RESULT=False, INT64=False)), target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4))
    print(compiled.asm["ptx"])
"""


def test_float64_math_keeps_float64_constants():
    # regression: with triton 3.6, tl.fma took Python-float constants as float32, so float64 results
    # were off by 5e-9 on the GPU (the interpreter did not show it); checks the installed triton
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).parent.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", _FLOAT64_PTX], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    constants = {c[2:] for c in re.findall(r"0d[0-9A-F]{16}", run.stdout)}
    constants |= {f"{int(c, 16) ^ (1 << 63):016X}" for c in constants}  # negated ones too
    wanted = [C.LOG2E, C.LN2_HI_F64, C.LN2_LO_F64, *C.INV_FACTORIAL[1:1 + C.TERMS_F64]]
    missing = [v for v in wanted if struct.pack(">d", v).hex().upper() not in constants]
    assert not missing, missing


def _ptx(*params):
    return ".visible .entry elu_kernel(\n" + ",\n".join(f"\t.param {p} elu_kernel_param_{i}"
                                                      for i, p in enumerate(params)) + "\n)\n{\n}\n"


PTR = ".u64 .ptr .global .align 1"


def test_parameter_plan_refuses_other_parameter_lists():
    assert launcher.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f64", ".f64", ".f64")) == (False, 0)
    # an appended integer (as a sanitizer adds), a float32 scalar, a missing pointer
    assert launcher.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f64", ".f64", ".f64", PTR, ".u64")) is None
    assert launcher.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f32", ".f64", ".f64")) is None
    assert launcher.parameter_plan(_ptx(PTR, PTR, ".u32", ".f64", ".f64", ".f64")) is None


def test_cpp_kernels_are_the_ones_registered():
    for name, keys in (("elu", ("CUDA", "Autograd")), ("elu_", ("CUDA", "Autograd", "ADInplaceOrView")),
                       ("elu_backward", ("CUDA", "Autograd"))):
        dump = torch._C._dispatch_dump(f"fastelu::{name}")
        for key in keys:
            assert any(line.startswith(key) and "fastelu.cpp" in line for line in dump.splitlines()), (name, key)


def test_cpp_launch_leaves_what_it_has_no_kernel_for_to_python():
    x = torch.randn(100)
    assert _C.launch(x, x, None, 1.0, 1.0, 1.0, False) is False  # a CPU tensor: never launched from C++
    assert _C.launch(x, x, x, 1.0, 1.0, 1.0, True) is False


def test_register_kernel_checks_its_key():
    with pytest.raises(RuntimeError, match="bad key"):
        _C.register_kernel(0, torch.int32, 4096, 0, 512, 0, 0, 128, 0, 2, False)
    with pytest.raises(RuntimeError, match="bad key"):
        _C.register_kernel(0, torch.float32, 4096, 3, 512, 0, 0, 128, 0, 2, False)
    # more appended pointers than the C++ passes: left to Triton's launcher
    assert _C.register_kernel(0, torch.float32, 4096, 0, 512, 0, 0, 128, 0, 9, False) is False
