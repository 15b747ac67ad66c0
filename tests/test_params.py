"""elu_kernel's launch parameters are declared once (kernel.PARAMS): everything that spells them
again, in Python or C++, is checked here against that declaration."""
import ast
import inspect
import os
import pathlib
import re

import pytest
import torch

pytest.importorskip("triton")

import triton.language as tl  # noqa: E402

from elu_op import kernel, kernelbench, launch  # noqa: E402
from elu_op.build import C as _C  # noqa: E402

NAMES = [name for name, _, _ in kernel.PARAMS]
PACKAGE = pathlib.Path(kernel.__file__).parent


def test_the_kernel_signature_is_the_declaration():
    annotations = {"ptr": inspect.Parameter.empty, "int": inspect.Parameter.empty, "f64": tl.float64,
                   "i64": tl.int64, "constexpr": tl.constexpr}
    signature = inspect.signature(kernel.elu_kernel.fn).parameters
    assert list(signature) == NAMES
    for name, kind, _ in kernel.PARAMS:
        assert signature[name].annotation == annotations[kind], name


def test_the_cpp_passes_the_declared_parameters_in_order():
    # Args::each and Spec::each (csrc/fastelu.h): the names Triton is passed, and the order of the
    # driver's parameter list, whose types the PTX check (launch.parameter_plan) ties to PARAMS.
    assert _C.parameters() == NAMES


def _ptx(params):
    return ".visible .entry elu_kernel(\n" + ",\n".join(f"\t.param {p} elu_kernel_param_{i}"
                                                       for i, p in enumerate(params)) + "\n)\n{\n}\n"


def test_the_ptx_check_follows_the_declaration():
    ptx_types = {"ptr": ".u64 .ptr .global .align 1", "int": ".u32", "f64": ".f64", "i64": ".u64"}
    params = [ptx_types[kind] for _, kind, _ in kernel.PARAMS if kind != "constexpr"]
    assert launch.parameter_plan(_ptx(params)) == (False, 0)
    swapped = params[:4] + [params[7]] + params[5:7] + [params[4]] + params[8:]  # an integer for a float64
    assert launch.parameter_plan(_ptx(swapped)) is None


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                    reason="launches the kernel (a GPU, or CPU tensors under TRITON_INTERPRET=1)")
def test_a_launch_reaches_triton_with_every_parameter_by_name(monkeypatch):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seen = []
    run = launch.run
    monkeypatch.setattr(launch, "run", lambda args, grid, warps: seen.append(list(args)) or run(args, grid, warps))
    _C.forget()  # else a kernel the C++ holds launches without launch.run
    try:
        x = torch.randn(4, 6, device=device)
        torch.ops.fastelu.elu(x, 1.0, 1.0, 1.0)
        torch.ops.fastelu.elu_backward(x.t(), 1.0, 1.0, 1.0, False, x.t().contiguous())
    finally:
        monkeypatch.undo()
        _C.forget()
    assert seen == [NAMES, NAMES]


def test_arguments_fills_the_flat_defaults_and_refuses_unknown_names():
    x = torch.randn(8)
    args = kernel.arguments(x, x, negcoef=1.0, BLOCK=64)
    assert list(args) == NAMES and args["g_ptr"] is x and args["n"] == 8 and args["ALIGN"] == 1
    assert "BLOCK" not in kernel.arguments(x, x, negcoef=1.0)  # an autotuner's
    with pytest.raises(TypeError, match="no parameters \\['BLOK'\\]"):
        kernel.arguments(x, x, negcoef=1.0, BLOK=64)


def test_the_kernelbench_file_carries_the_declaration():
    source = kernelbench.render()
    declared = pathlib.Path(kernel.__file__).read_text()
    for name in ("LAYOUT", "PARAMS"):
        text = re.search(rf"^{name} = .*?(?=\n\S)", declared, re.S | re.M).group(0)
        assert text in source, name
    assert "def arguments(" in source and "do_not_specialize=[name for name, kind, _ in PARAMS" in source


def _python_functions():
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                a = node.args
                count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                jit = any("triton.jit" in ast.unparse(d) for d in getattr(node, "decorator_list", []))
                yield f"{path.name}:{node.lineno}", count, jit


def _cpp_functions():
    # Definitions and lambdas: a parameter list followed by a body. Commas inside <...> (templates)
    # are not parameters.
    for path in sorted((PACKAGE / "csrc").glob("*.cpp")):
        text = path.read_text()
        for match in re.finditer(r"\(([^(){};]*)\)\s*(?:const\s*)?(?:override\s*)?(?:->[^{;]*)?\{", text):
            params = re.sub(r"<[^<>]*>", "", match.group(1)).strip()
            if params and not re.search(r"\b(if|for|while|switch)\s*$", text[:match.start()]):
                yield f"{path.name}:{text.count(chr(10), 0, match.start()) + 1}", params.count(",") + 1


def test_no_function_but_the_kernels_takes_more_than_ten_parameters():
    python = [where for where, count, jit in _python_functions() if count > 10 and not jit]
    cpp = [where for where, count in _cpp_functions() if count > 10]
    assert not python and not cpp, python + cpp


def test_each_cpp_file_is_one_job_of_at_most_300_lines():
    # fastelu.h names each file's job; none grows back into several
    files = sorted(p.name for p in (PACKAGE / "csrc").glob("*.cpp"))
    header = (PACKAGE / "csrc" / "fastelu.h").read_text()
    assert files == ["checks.cpp", "launch.cpp", "layouts.cpp", "module.cpp", "ops.cpp", "outputs.cpp"]
    for name in files:
        assert f"//   {name}" in header, name
        assert (PACKAGE / "csrc" / name).read_text().count("\n") <= 300, name
