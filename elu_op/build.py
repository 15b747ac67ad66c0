"""Builds fastelu's C++ part (csrc/fastelu.cpp) against the torch in use, and loads it.

The C++ is tied to one torch's ABI, so it is compiled here, on first use, rather than at install
time: the package itself is pure Python, and one wheel serves every torch it supports. Each torch
version (and Python) gets its own build in the cache, so switching torch rebuilds once. It needs
a C++ compiler and nothing else: the kernels are Triton's, launched through the CUDA driver, so
no CUDA toolkit is involved and a CPU-only torch builds it too.
"""
import hashlib
import os
import pathlib
import re
import sys
import warnings

import torch

SOURCE = pathlib.Path(__file__).with_name("csrc") / "fastelu.cpp"

# The loaded module, the one place every other file takes it from: set by load_or_warn(), which
# ops.py calls once it has defined the ops' schemas (loading registers their kernels). None before
# that, and where the C++ could not be built.
C = None


def name():
    """The module's name: one per torch version, since each is built against one."""
    return "fastelu_torch_" + re.sub(r"\W", "_", torch.__version__)


def directory():
    """Where the build lives: $FASTELU_CACHE, else ~/.cache/fastelu, then per Python, torch and
    source text (so that a new fastelu never loads an old build)."""
    root = os.environ.get("FASTELU_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fastelu")
    source = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return os.path.join(root, f"py{sys.version_info.major}{sys.version_info.minor}", name(), source)


def load(verbose=False):
    """The compiled module, built first if this torch has none yet (or the source changed).
    Raises what the build raised if it fails."""
    from torch.utils import cpp_extension
    path = directory()
    os.makedirs(path, exist_ok=True)
    if not os.path.exists(os.path.join(path, name() + ".so")):
        print(f"fastelu: compiling its C++ part for torch {torch.__version__}, once (about a minute), "
              f"in {path}", file=sys.stderr, flush=True)
    try:  # the ninja that pip installed with fastelu, even where its bin directory is not on PATH
        import ninja
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    with warnings.catch_warnings():  # the compiler-version notes are for extension authors
        warnings.simplefilter("ignore", UserWarning)
        return cpp_extension.load(name=name(), sources=[str(SOURCE)], build_directory=path, verbose=verbose,
                                  extra_cflags=["-O2", "-g0"], extra_ldflags=["-s"])


def load_or_warn():
    """load() into C, or None with one warning that says why and what to do: fastelu's ops then
    run PyTorch's own elu, so that nothing breaks and nothing is silently wrong."""
    global C
    try:
        C = load()
        return C
    except Exception as e:  # no compiler, no ninja, a failed compile: the same way out
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warnings.warn(f"fastelu could not build its C++ part ({reason}), so its ops run PyTorch's own elu. It "
                      f"needs a C++ compiler (g++ or clang++); python -m elu_op build --verbose retries and shows "
                      f"why", RuntimeWarning, stacklevel=2)
        return None
