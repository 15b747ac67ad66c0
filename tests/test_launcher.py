"""The direct launcher: its reading of the compiled kernel's parameters and its C function."""
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from elu_op import launcher


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a CUDA driver")
def test_c_launch_builds_and_says_when_there_is_no_driver():
    launch = launcher.c_launch()
    assert launch is not None
    with pytest.raises(RuntimeError, match="libcuda"):
        launch(0, 1, 128, 0, 0, 0, 0, 0, 1, False, 1.0, 1.0, 1.0, 2)


def test_c_launch_checks_its_arguments():
    launch = launcher.c_launch()
    with pytest.raises(TypeError, match="14 arguments"):
        launch(0, 1)
