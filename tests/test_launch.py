"""The launch path: the Triton internals that the C++ launch relies on, checked on the installed
triton (so that a new triton that changes them fails here, not on a user's GPU), what happens where
they do not hold, and the C++ module's registrations and decisions (its launches on a GPU are
tested in test_gpu.py)."""
import os
import pathlib
import re
import struct
import subprocess
import sys

import pytest
import torch
import triton

from elu_op import configs, launch
from elu_op import coefficients as C
from elu_op.build import C as _C
from elu_op.kernel import arguments


# Compiles elu_kernel for a GPU without one (PTX and ptxas come with Triton), in a process of its
# own: under TRITON_INTERPRET=1 the kernel is not compilable.
_COMPILE = """
import sys, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton import knobs
from elu_op import launch
from elu_op.kernel import compile_signature, elu_kernel
# what launch.hook_lists reads: the lists of Triton's launch hooks
print(type(knobs.runtime.launch_enter_hook.calls).__name__, type(knobs.runtime.launch_exit_hook.calls).__name__)
for arch, dtype, n_type, cols in ((89, "*fp32", "i32", 0), (90, "*bf16", "i64", 0), (90, "*fp16", "i32", 256)):
    constants = dict(BLOCK=512, BACKWARD=arch == 90, IS_RESULT=False, INT64=n_type == "i64", NORMAL_EXP=False,
                     UNIT_INPUT=False, COLS=cols, DIMS=2, UNIT=3, ALIGN=8, TRANS=2 if cols else 0)
    compiled = triton.compile(ASTSource(elu_kernel, compile_signature(dtype, n_type), constexprs=constants),
                              target=GPUTarget("cuda", arch, 32), options=dict(num_warps=4))
    md = compiled.metadata
    # what launch.handed reads (function is set when the kernel is loaded onto a GPU)
    assert hasattr(compiled, "function") and md.num_ctas == 1 and md.num_warps == 4 and md.shared >= 0
    print(launch.parameter_plan(compiled.asm["ptx"]), md.global_scratch_size, md.profile_scratch_size)
"""


def test_triton_internals_the_cpp_launch_relies_on():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).parent.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    # n's width, then the two scratch pointers Triton appends, null here: no scratch needed
    assert run.stdout.split("\n")[:4] == ["list list", "(False, 2) 0 0", "(True, 2) 0 0", "(False, 2) 0 0"]


_FLOAT64_PTX = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from elu_op.kernel import PARAMS, compile_signature, elu_kernel
for backward in (False, True):
    constants = {name: default for name, kind, default in PARAMS if kind == "constexpr"}
    constants.update(BLOCK=256, BACKWARD=backward)
    compiled = triton.compile(ASTSource(elu_kernel, compile_signature("*fp64"), constexprs=constants),
                              target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4))
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
    wanted = [C.LOG2E, C.LN2_HI_F64, C.LN2_LO_F64, *C.Q_F64]
    missing = [v for v in wanted if struct.pack(">d", v).hex().upper() not in constants]
    assert not missing, missing


_TRANSPOSED_LOADS = r"""
import re, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from elu_op.kernel import compile_signature, elu_kernel
for dims in (2, 3, 4):
    for unit in (5, 7):  # x transposed, and with unit: its row stride 1 and its other strides aligned
        constants = dict(BLOCK=4096, BACKWARD=True, IS_RESULT=False, INT64=False, NORMAL_EXP=False,
                         UNIT_INPUT=True, COLS=64, DIMS=dims, UNIT=unit, ALIGN=8, TRANS=2)
        source = ASTSource(elu_kernel, compile_signature("*bf16"), constexprs=constants,
                           attrs={(i,): [["tt.divisibility", 16]] for i in range(3)})  # as aligned tensors give
        ptx = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4)).asm["ptx"]
        print(dims, unit, len(re.findall(r"ld\.global\.v4\.b32", ptx)), len(re.findall(r"ld\.global\.b16", ptx)))
"""


def test_transposed_tensor_loads_vectors_along_its_rows():
    # A 64 x 64 bfloat16 tile over 128 threads: 4 16-byte loads a thread for each tensor loaded in
    # vectors, in the full tiles' code and again in the masked edge tiles'. The transposed x comes
    # in vectors too once the kernel may claim its row stride of 1 and its alignment: in the edge
    # tiles as well where the rows wrap (three dimensions or more: their count is then a multiple
    # of a vector), not over two; checks the installed triton.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).parent.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", _TRANSPOSED_LOADS], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    counts = {tuple(map(int, line.split()[:2])): tuple(map(int, line.split()[2:])) for line in run.stdout.splitlines()}
    for dims in (2, 3, 4):
        assert counts[dims, 5] == (8, 64), counts  # g in vectors; x one element a load
        assert counts[dims, 7] == ((12, 32) if dims == 2 else (16, 0)), counts


def _ptx(*params):
    return ".visible .entry elu_kernel(\n" + ",\n".join(f"\t.param {p} elu_kernel_param_{i}"
                                                      for i, p in enumerate(params)) + "\n)\n{\n}\n"


PTR = ".u64 .ptr .global .align 1"
SIZES = (".u64",) * 16  # elu_kernel's sizes and strides


def test_parameter_plan_refuses_other_parameter_lists():
    assert launch.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f64", ".f64", ".f64", *SIZES)) == (False, 0)
    # an appended integer (as a sanitizer adds), a float32 scalar, a missing pointer, a 32-bit stride
    assert launch.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f64", ".f64", ".f64", *SIZES, PTR, ".u64")) is None
    assert launch.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f32", ".f64", ".f64", *SIZES)) is None
    assert launch.parameter_plan(_ptx(PTR, PTR, ".u32", ".f64", ".f64", ".f64", *SIZES)) is None
    assert launch.parameter_plan(_ptx(PTR, PTR, PTR, ".u32", ".f64", ".f64", ".f64", *SIZES[1:], ".u32")) is None


class _Compiled:  # what a compiled kernel looks like to launch.handed
    def __init__(self, ptx, **metadata):
        self.asm = {"ptx": ptx}
        self.function = 1234
        self.metadata = type("Metadata", (), {"num_ctas": 1, "num_warps": 4, "shared": 0, **metadata})()


def test_handed_over_kernels_and_the_ones_kept_by_triton(recwarn):
    params = (PTR, PTR, PTR, ".u64", ".f64", ".f64", ".f64", *SIZES, PTR, PTR)
    assert launch.handed(_Compiled(_ptx(*params))) == (1234, 128, 0, 2, True)
    # needs scratch memory or a cluster: Triton's launcher, as an ordinary case (no warning)
    assert launch.handed(_Compiled(_ptx(*params), global_scratch_size=64)) is None
    assert launch.handed(_Compiled(_ptx(*params), num_ctas=2)) is None
    assert not recwarn.list


def test_a_triton_whose_internals_differ_gets_one_warning(monkeypatch):
    monkeypatch.setattr(launch, "_warned", set())
    odd = _Compiled(_ptx(PTR, PTR, ".u32", ".f64", ".f64", ".f64"))
    with pytest.warns(RuntimeWarning, match="Triton's own launcher makes every launch"):
        assert launch.handed(odd) is None
    broken = _Compiled(_ptx(PTR, PTR, PTR, ".u32", ".f64", ".f64", ".f64", *SIZES))
    del broken.asm
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert launch.handed(broken) is None  # warned once already
        assert launch.handed(odd) is None
    monkeypatch.setattr(launch, "_warned", set())
    with pytest.warns(RuntimeWarning, match="not reported to profilers"):
        assert launch.hook_lists(object()) == (None, None)


def test_cpp_kernels_are_the_ones_registered():
    keys = {"elu": ("CompositeExplicitAutograd", "Autograd"),
            "elu_": ("CompositeExplicitAutograd", "Autograd", "ADInplaceOrView"),
            "elu_backward": ("CompositeExplicitAutograd", "Autograd")}
    for name, wanted in keys.items():
        dump = torch._C._dispatch_dump(f"fastelu::{name}")
        for key in wanted:
            assert any(line.split(":")[0] in (key, key + "[alias]") and "csrc/ops.cpp" in line
                       for line in dump.splitlines()), (name, key)
        # No kernel for a device itself: torch.export decomposes the ops only where there is none.
        for device in ("CPU", "CUDA"):
            assert not torch._C._dispatch_has_kernel_for_dispatch_key(f"fastelu::{name}", device), (name, device)
    # what both paths share is Python's (ops.py): tracing elu_ as elu and a copy, say
    assert torch._C._dispatch_has_kernel_for_dispatch_key("fastelu::elu_", "Tracer")


def test_the_cpp_decides_sizes_from_the_device_table():
    table = configs.table(-1)
    for backward, direction in ((False, "forward"), (True, "backward")):
        for itemsize in (2, 4, 8):
            for n in (1, 2**16, 2**16 + 1, 2**20 + 1, 2**24, 2**24 + 1, 2**30):
                block, warps, width = _C.plan(-1, itemsize, n, backward)
                expected = table[direction][itemsize][sum(n > b for b in configs.BUCKETS)]
                assert (block, warps, width) == (*expected, 0)
    block = _C.plan(-1, 2, 2**31)[0]
    # offsets: int32 while the last block stays below 2**31, then int64, then a 64-bit n as well
    assert [_C.plan(-1, 2, n)[2] for n in (2**31 - 1 - block, 2**31 - block, 2**31 - 1, 2**31)] == [0, 1, 1, 2]


def test_the_backward_launches_with_the_backward_table(monkeypatch):
    # Distinct forward and backward tables: each op must ask for its own, the C++ fast path too.
    def table(block):
        return {s: ((block, 2),) * (len(configs.BUCKETS) + 1) for s in configs.ITEMSIZES}
    monkeypatch.setattr(configs, "describe", lambda index: ({"forward": table(512), "backward": table(256)}, "test"))
    runs = []
    run = launch.run
    monkeypatch.setattr(launch, "run", lambda args, *a: runs.append(args["BLOCK"]) or run(args, *a))
    _C.forget()
    try:
        assert _C.plan(-1, 4, 1000)[:2] == (512, 2) and _C.plan(-1, 4, 1000, backward=True)[:2] == (256, 2)
        x, g = torch.randn(1000), torch.randn(1000)
        if os.environ.get("TRITON_INTERPRET") == "1":
            torch.ops.fastelu.elu(x, 1.0, 1.0, 1.0)
            torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)
            assert runs == [512, 256]
    finally:
        monkeypatch.undo()
        _C.forget()
    assert _C.plan(-1, 4, 1000, backward=True) == configs.table(-1)["backward"][4][0] + (0,)


def test_negcoef_is_formed_as_aten_does():
    assert _C.negcoef(0.1, 3.0, True) == 0.1 * 3.0
    f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]  # noqa: E731
    assert _C.negcoef(0.1, 3.0, False) == f32(f32(0.1) * f32(3.0))
    assert _C.negcoef(1e300, 1.0, False) == float("inf")


def test_the_cpp_decides_float16s_cheaper_math(monkeypatch):
    # coefficients.NORMAL: float16 only, not for the gradient from the result, and only where the
    # float32-rounded alpha*scale and input_scale lie within 2**+-MODERATE (positive, and a positive
    # scale, for the forward)
    lo, hi = 2.0**-C.MODERATE, 2.0**C.MODERATE

    def normal(alpha, scale=1.0, input_scale=1.0, backward=False, is_result=False, float16=True):
        return _C.normal(float16, backward, is_result, alpha, scale, input_scale)
    assert normal(1.0) and normal(1.6732632423543772, 1.0507009873554805) and normal(0.5, 1.0, 2.0)
    assert not normal(1.0, float16=False) and not normal(1.0, backward=True, is_result=True)
    assert normal(lo) and normal(hi) and normal(1.0, 1.0, lo) and normal(1.0, 1.0, hi)
    assert not normal(lo / 2) and not normal(hi * 2) and not normal(1.0, 1.0, lo / 2) and not normal(1.0, 1.0, hi * 2)
    assert normal(lo * (1 - 2.0**-30)) and normal(2.0**20, 2.0**20) and not normal(2.0**21, 2.0**20)  # float32's
    for bad in (0.0, float("nan"), float("inf")):
        assert not normal(bad) and not normal(1.0, 1.0, bad) and not normal(bad, backward=True)
    # signs: the forward wants them positive, the backward takes their sizes
    for alpha, scale, input_scale in ((-1.0, 1.0, 1.0), (1.0, -1.0, 1.0), (1.0, 1.0, -1.0), (-1.0, -1.0, 1.0)):
        assert not normal(alpha, scale, input_scale) and normal(alpha, scale, input_scale, backward=True)
    # ...and each launch passes its decision on
    runs = []
    run = launch.run
    monkeypatch.setattr(launch, "run", lambda args, *a: runs.append(args["NORMAL_EXP"]) or run(args, *a))
    _C.forget()
    if os.environ.get("TRITON_INTERPRET") == "1":
        x = torch.randn(64, dtype=torch.float16)
        for alpha in (1.0, lo / 2):
            torch.ops.fastelu.elu(x, alpha, 1.0, 1.0)
            torch.ops.fastelu.elu_backward(x, alpha, 1.0, 1.0, False, x)
            torch.ops.fastelu.elu_backward(x, alpha, 1.0, 1.0, True, x)
        torch.ops.fastelu.elu(x.float(), 1.0, 1.0, 1.0)
        assert runs == [True, True, False, False, False, False, False]
    monkeypatch.undo()
    _C.forget()


def test_an_input_scale_of_one_is_taken_as_a_constant(monkeypatch):
    # Decided by the C++ on input_scale as the kernel rounds it: float32 for every dtype but float64.
    runs = []
    run = launch.run
    monkeypatch.setattr(launch, "run", lambda args, *a: runs.append((args["x_ptr"].dtype, args["input_scale"], args["UNIT_INPUT"])) or run(args, *a))
    _C.forget()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    near = 1 + 2.0**-30  # 1 in float32, not in float64
    for dtype in (torch.float16, torch.float32, torch.float64):
        x = torch.randn(64, dtype=dtype, device=device)
        for input_scale in (1.0, near, 2.0):
            _C.forget()  # else a kernel the C++ holds for the same decision launches without launch.run
            torch.ops.fastelu.elu(x, 1.0, 1.0, input_scale)
            torch.ops.fastelu.elu_backward(x, 1.0, 1.0, input_scale, False, x)
    monkeypatch.undo()
    _C.forget()
    assert len(runs) == 18 and all(u == (s == 1.0 or (s == near and d != torch.float64)) for d, s, u in runs)
    # ...and the constant gives the same bits as the runtime 1, for every value class
    special = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-40, -1e-40, -1e-8, -0.3,
                            -20.0, -1000.0, 3.0, 65504.0, -65504.0], dtype=torch.float64)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        x = torch.cat([special.to(dtype), torch.randn(1000, dtype=dtype) * 4]).to(device)
        g = torch.randn_like(x)
        for backward, is_result in ((False, False), (True, False), (True, True)):
            normal = _C.normal(dtype == torch.float16, backward, is_result, 1.3, 1.1, 1.0)
            outs = []
            for unit_input in (False, True):
                out = torch.full_like(x, 7.0)
                args = arguments(out, x, g if backward else None, negcoef=_C.negcoef(1.3, 1.1, dtype == torch.float64),
                                 scale=1.1, BLOCK=256, BACKWARD=backward, IS_RESULT=is_result, NORMAL_EXP=normal,
                                 UNIT_INPUT=unit_input)
                launch.run(args, triton.cdiv(x.numel(), 256), 4)
                outs.append(out)
            assert torch.equal(outs[0].view(-1).cpu().view(torch.uint8), outs[1].view(-1).cpu().view(torch.uint8))


def test_kernels_are_compiled_under_the_register_caps(monkeypatch):
    options = {}

    class Kernel:
        def __getitem__(self, grid):
            return lambda **kwargs: options.setdefault(kwargs["x_ptr"].dtype, kwargs)
    monkeypatch.setattr(launch, "elu_kernel", Kernel())
    for backward in (False, True):
        options.clear()
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            x = torch.ones(8, dtype=dtype)
            launch.run(arguments(x, x, x if backward else None, negcoef=1.0, BLOCK=1024, BACKWARD=backward), 1, 2)
        capped = {d for d, o in options.items() if o["maxnreg"] == 32}
        assert capped == ({torch.bfloat16} if backward else {torch.float16})
        assert all(o["maxnreg"] in (None, 32) for o in options.values())
    assert all(o["num_warps"] == 2 and o["enable_fp_fusion"] for o in options.values())
