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
    assert "elu_op/csrc/launch.cpp" in names and "elu_op/csrc/fastelu.h" in names and "elu_op/build.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    for line in ("License: MIT", "Requires-Dist: torch>=2.9", "Requires-Dist: triton>=3.5", "Requires-Dist: ninja"):
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


def test_an_unwritable_build_directory_is_named_with_the_way_out(tmp_path):
    # A read-only home, say: the warning says so and names FASTELU_CACHE, not a missing compiler.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**os.environ, "FASTELU_CACHE": str(blocker / "cache")}
    code = "import torch, elu_op; x = torch.randn(100); assert torch.equal(elu_op.elu(x), torch.nn.functional.elu(x))"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "could not build its C++ part" in run.stderr and "set FASTELU_CACHE to a writable directory" in run.stderr
    assert "C++ compiler" not in run.stderr


def test_an_import_during_another_processs_build_waits_for_it(tmp_path, monkeypatch):
    # A second rank of a job starting while the first links the module sees a file that does not
    # load yet: it must wait for the build, not fall back to aten's elu.
    import fcntl
    monkeypatch.setenv("FASTELU_CACHE", str(tmp_path))
    path = pathlib.Path(build.directory())
    path.mkdir(parents=True)
    library = path / (build.name() + ".so")
    library.write_bytes(b"")  # the linker's output, just created
    code = "import elu_op, sys; print(elu_op.ops.OFF); sys.exit(elu_op.build.C is None)"
    with open(path / "fastelu.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # "another process" is building
        waiting = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, cwd=ROOT)
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=15)  # past its imports, it waits on the lock
        from elu_op.build import C as _C
        library.write_bytes(pathlib.Path(_C.__file__).read_bytes())  # the build finishes
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0 and out.strip() == "None", err[-3000:]
    assert "compiling" not in err and "could not build" not in err


# A compiler that answers the version checks and fails every compile with one error line.
_FAILING_COMPILER = """#!/bin/sh
case " $* " in *" -c "*) echo "launch.cpp:1:1: error: simulated compile failure" >&2; exit 1;; esac
exec c++ "$@"
"""


def test_a_failed_build_is_remembered_until_the_compiler_changes_or_build_is_run(tmp_path):
    compiler = tmp_path / "failing-c++"
    compiler.write_text(_FAILING_COMPILER)
    compiler.chmod(0o755)
    env = {**os.environ, "FASTELU_CACHE": str(tmp_path / "cache"), "CXX": str(compiler)}

    def run(*args):
        return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)

    importing = ("-c", "import elu_op")
    first, second = run(*importing), run(*importing)
    for r in (first, second):  # the warning quotes the compiler's first error
        assert r.returncode == 0 and "could not build its C++ part (launch.cpp:1:1: error: simulated" in r.stderr
    assert "compiling its C++ part" in first.stderr and "compiling its C++ part" not in second.stderr
    compiler.write_text(_FAILING_COMPILER + "# upgraded\n")  # another compiler: tried again
    assert "compiling its C++ part" in run(*importing).stderr
    verbose = run("-m", "elu_op", "build", "--verbose")  # tries again, and shows what the compiler said
    assert verbose.returncode == 1 and "compiling its C++ part" in verbose.stderr
    assert "FAILED:" in verbose.stderr and "building the C++ part failed: launch.cpp:1:1: error" in verbose.stderr
    check = run("-m", "elu_op", "check")
    assert check.returncode == 1
    assert "C++ part could not be built" in check.stdout and "checked PyTorch's elu" in check.stdout
    assert "python -m elu_op build --verbose" in check.stdout


def test_build_when_built_says_where_without_building_again():
    r = subprocess.run([sys.executable, "-m", "elu_op", "build"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.startswith("built ") and "compiling" not in r.stderr, r.stderr


def test_a_built_module_loads_without_cpp_extension():
    # Importing torch.utils.cpp_extension takes time, and logs a CUDA_HOME line where a CUDA
    # toolkit has no GPU: only a build needs it.
    code = "import sys, elu_op; assert elu_op.build.C is not None; print('torch.utils.cpp_extension' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    assert "CUDA_HOME" not in r.stderr


def test_sources_compile_without_warnings():
    # An invalid escape sequence, say, which Python warns of at every fresh compile of the file.
    import warnings
    for path in sorted(p for folder in ("elu_op", "tests", "benchmarks") for p in (ROOT / folder).rglob("*.py")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(path.read_text(), str(path), "exec")
