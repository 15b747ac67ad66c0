import json
import os
import subprocess
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_tune_needs_a_gpu():
    r = _run("tune")
    assert r.returncode == 1 and "tune needs a CUDA GPU" in r.stderr


@needs_cuda
def test_tune_writes_the_cache_that_info_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    r = _run("tune", "--rounds", "1")
    assert r.returncode == 0, r.stderr
    path = configs.cache_path(torch.cuda.get_device_name())
    table = json.loads(path.read_text())
    assert sorted(table) == ["2", "4", "8"]
    assert all(len(v) == len(configs.BUCKETS) + 1 and all(tuple(c) in configs.CANDIDATES for c in v)
               for v in table.values())
    info = _run("info")
    assert str(path) in info.stdout, info.stdout
