"""Packaging and the C++ build: a pure-Python wheel, a build per torch version, and a machine where
the C++ cannot be built (fastelu's ops then run aten's elu, with one warning, never wrongly)."""
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest
import torch

from elu_op import build

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("PIP_NO_INDEX") == "1", reason="build isolation needs a package index")
def test_wheel_is_pure_python_and_carries_the_cpp_source(tmp_path):
    # Under pip's build isolation, as `pip wheel .` and `pip install .` build.
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")  # no ABI tag: one wheel for every torch
    names = zipfile.ZipFile(wheel).namelist()
    assert "elu_op/csrc/fastelu.cpp" in names and "elu_op/build.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    for line in ("License: MIT", "Requires-Dist: torch>=2.11", "Requires-Dist: triton>=3.6", "Requires-Dist: ninja"):
        assert line in metadata, line


def test_one_build_per_torch_version_and_source():
    path = pathlib.Path(build.directory())
    assert build.name() in path.parts and torch.__version__.split("+")[0].replace(".", "_") in build.name()
    from elu_op.build import C as _C
    assert pathlib.Path(_C.__file__).parent == path


_WITHOUT_COMPILER = """
import warnings, torch, torch.nn.functional as F
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import elu_op
messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
assert len(messages) == 1 and "could not build its C++ part" in messages[0], messages
x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
assert torch.equal(elu_op.elu(x, 0.5), F.elu(x, 0.5))
assert torch.equal(torch.ops.fastelu.elu(x, 1.0, 2.0, 0.5), torch.ops.aten.elu(x, 1.0, 2.0, 0.5))
(g,) = torch.autograd.grad(elu_op.selu(x).sum(), x)
assert torch.equal(g, torch.autograd.grad(F.selu(x).sum(), x)[0])
t = torch.randn_like(x)
assert torch.equal(torch.func.jvp(elu_op.elu, (x.detach(),), (t,))[1], torch.func.jvp(F.elu, (x.detach(),), (t,))[1])
assert torch.autograd.gradgradcheck(lambda v: elu_op.celu(v, 0.7), (x[:10].detach().requires_grad_(),))
y = x.detach().clone()
elu_op.elu(y, inplace=True)
assert torch.equal(y, F.elu(x.detach()))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    elu_op.enable()
assert not elu_op.is_enabled() and "enable() changes nothing" in str(caught[0].message)
print("ok")
"""


def test_without_a_compiler_the_ops_are_atens_with_one_warning(tmp_path):
    env = {**os.environ, "FASTELU_CACHE": str(tmp_path), "CXX": str(tmp_path / "no-such-compiler"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", _WITHOUT_COMPILER], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
