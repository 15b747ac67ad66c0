import json
import os
import subprocess
import shutil
import sys

import pytest
import torch
from conftest import needs_cuda

from elu_op import configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, **env):
    return subprocess.run([sys.executable, "-m", "elu_op", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=600)


def test_info():
    r = _run("info")
    assert r.returncode == 0, r.stderr
    assert "torch" in r.stdout and "configs" in r.stdout


def test_check_passes():
    r = _run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all passed" in r.stdout
    # bfloat16 rounded to nearest, as GPUs do, also in the CPU's interpreter: half an ulp at most
    bf16 = [float(line.split()[2]) for line in r.stdout.splitlines() if " bfloat16 " in line]
    assert len(bf16) == 6 and max(bf16) <= 2**-8, bf16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
@pytest.mark.parametrize("command", ["tune", "bench"])
def test_gpu_commands_say_they_need_a_gpu(command):
    r = _run(command)
    assert r.returncode == 1 and r.stderr.strip() == f"{command} needs a CUDA GPU"


def test_bench_from_an_installed_package_says_it_needs_a_source_checkout(tmp_path):
    shutil.copytree(os.path.join(ROOT, "elu_op"), tmp_path / "elu_op")  # installed: no benchmarks/ beside it
    r = subprocess.run([sys.executable, "-m", "elu_op", "bench"], capture_output=True, text=True, timeout=600,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1 and "from a source checkout" in r.stderr, r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's info")
def test_info_without_a_gpu_says_which_kernel_runs():
    plain = _run("info", TRITON_INTERPRET="0")
    assert plain.returncode == 0 and "PyTorch's CPU elu" in plain.stdout and "configs" not in plain.stdout
    interpreted = _run("info", TRITON_INTERPRET="1")
    assert "interpreter" in interpreted.stdout and "PyTorch's CPU elu" not in interpreted.stdout


def test_help_says_what_fastelu_is():
    r = _run("--help")
    assert r.returncode == 0 and "ELU, SELU and CELU" in r.stdout


def test_export_kernelbench_writes_where_asked(tmp_path):
    r = subprocess.run([sys.executable, "-m", "elu_op", "export-kernelbench"], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "elu_solution.py").read_text().startswith("# fastelu's ELU kernel")
    assert _run("export-kernelbench", str(tmp_path / "other.py")).returncode == 0 and (tmp_path / "other.py").exists()


@needs_cuda
def test_tune_writes_the_cache_that_info_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTELU_CACHE", str(tmp_path))
    r = _run("tune", "--rounds", "1")
    assert r.returncode == 0, r.stderr
    path = configs.cache_path(torch.cuda.get_device_name())
    table = json.loads(path.read_text())
    assert sorted(table) == ["backward", "forward"] and all(sorted(t) == ["2", "4", "8"] for t in table.values())
    assert all(len(v) == len(configs.BUCKETS) + 1 and all(tuple(c) in configs.CANDIDATES for c in v)
               for t in table.values() for v in t.values())
    info = _run("info")
    assert str(path) in info.stdout, info.stdout
