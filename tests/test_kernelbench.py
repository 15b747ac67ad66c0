"""kernelbench/elu_solution.py: generated from the package's kernel, in the seed's format, correct."""
import ast
import importlib.util
import pathlib

import pytest
import torch
import torch.nn.functional as F
from conftest import needs_cuda

from elu_op import kernelbench


def _load():
    spec = importlib.util.spec_from_file_location("elu_solution", kernelbench.PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_file_is_what_the_generator_writes():
    assert kernelbench.PATH.read_text() == kernelbench.render(), "run: python -m elu_op export-kernelbench kernelbench/elu_solution.py"


def test_format():
    tree = ast.parse(pathlib.Path(kernelbench.PATH).read_text())
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import torch", "import torch.nn as nn", "import triton", "import triton.language as tl"]
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert names[-1] == "ModelNew" and "triton_elu" in names
    kernel = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "elu_kernel")
    assert [ast.unparse(d).split("(")[0] for d in kernel.decorator_list] == ["triton.autotune", "triton.jit"]
    assert not {"get_inputs", "get_init_inputs"} & set(names)
    assert "__main__" not in pathlib.Path(kernelbench.PATH).read_text()


@pytest.mark.parametrize("shape", [(1,), (37, 1023), (4, 3, 17)])
def test_matches_torch_small(device, shape):
    module = _load()
    if device.type == "cpu":  # the interpreter cannot time autotune candidates: pin one
        module.elu_kernel.configs = module.elu_kernel.configs[:1]
    x = torch.randn(shape, device=device)
    torch.testing.assert_close(module.ModelNew(0.7)(x), F.elu(x, 0.7), rtol=4e-7, atol=1e-7)


@needs_cuda
def test_matches_torch_on_the_seed_problem():
    module = _load()
    x = torch.randn(4096, 393216, device="cuda")
    torch.testing.assert_close(module.ModelNew()(x), F.elu(x), rtol=4e-7, atol=1e-7)
