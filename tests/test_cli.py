import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "elu_op", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=600)


def test_info():
    r = _run("info")
    assert r.returncode == 0, r.stderr
    assert "torch" in r.stdout and "configs" in r.stdout


def test_check_passes():
    r = _run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all passed" in r.stdout
