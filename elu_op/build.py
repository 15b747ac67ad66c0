"""Builds fastelu's C++ part (csrc/) against the torch in use, and loads it.

The C++ is tied to one torch's ABI, so it is compiled here, on first use, rather than at install
time: the package itself is pure Python, and one wheel serves every torch it supports. Each Python,
torch version and source text gets its own directory in the cache, so switching torch rebuilds
once. It needs a C++ compiler and nothing else: the kernels are Triton's, launched through the CUDA
driver, so no CUDA toolkit is involved and a CPU-only torch builds it too.

A built module is loaded straight from its file: torch.utils.cpp_extension, slow to import and
chatty where a CUDA toolkit has no GPU, is imported only to build. A failed build is remembered in
the same directory, with the compiler it used: later imports warn with the compiler's first error
and do not retry until the compiler changes, or `python -m elu_op build` asks. A lock in the
directory makes processes that start during a build wait for it.
"""
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import pathlib
import re
import shutil
import sys
import time
import warnings

import torch

CSRC = pathlib.Path(__file__).with_name("csrc")
SOURCES = sorted(CSRC.glob("*.cpp"))

# The loaded module, the one place every other file takes it from: set by load_or_warn(), which
# ops.py calls once it has defined the ops' schemas (loading registers their kernels). None before
# that, and where the C++ could not be built.
C = None
# Why it could not be built (the warning's reason), else None.
error = None


class BuildError(RuntimeError):
    """The C++ part could not be built. str(): the compiler's first error line; .output: all of it."""

    def __init__(self, line, output=""):
        super().__init__(line)
        self.output = output


def name():
    """The module's name: one per torch version, since each is built against one."""
    return "fastelu_torch_" + re.sub(r"\W", "_", torch.__version__)


def cache_root():
    """fastelu's cache, the build's and the tuning's: $FASTELU_CACHE, else ~/.cache/fastelu."""
    return os.environ.get("FASTELU_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fastelu")


def directory():
    """Where the build lives: in cache_root(), per Python, torch and source text (so that a new
    fastelu never loads an old build)."""
    root = cache_root()
    digest = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return os.path.join(root, f"py{sys.version_info.major}{sys.version_info.minor}", name(),
                        digest.hexdigest()[:16])


def compiler():
    """The compiler a build would use (as torch.utils.cpp_extension picks it), as a string that
    changes when it is installed, replaced or upgraded."""
    command = os.environ.get("CXX", "c++")
    path = shutil.which(command)
    if path is None:
        return f"{command}: not found"
    stat = os.stat(os.path.realpath(path))
    return f"{command}: {os.path.realpath(path)} {stat.st_size} {stat.st_mtime_ns}"


def first_error(output):
    """The line of a build's output that says what went wrong first."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for pattern in (r"\berror:", r"not found|No such file"):  # a compiler's diagnostic, else a missing tool
        for line in lines:
            if re.search(pattern, line, re.IGNORECASE) and not line.startswith("Error building extension"):
                return line
    return lines[0] if lines else "the build failed and said nothing"


def _import(path):
    spec = importlib.util.spec_from_file_location(name(), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(path):
    # Its import logs CUDA_HOME where a CUDA toolkit has no GPU, which says nothing about this build.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import cpp_extension
    try:  # the ninja that pip installed with fastelu, even where its bin directory is not on PATH
        import ninja
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    with warnings.catch_warnings():  # the compiler-version notes are for extension authors
        warnings.simplefilter("ignore", UserWarning)
        try:
            return cpp_extension.load(name=name(), sources=[str(s) for s in SOURCES], build_directory=path,
                                      extra_cflags=["-O2", "-g0"], extra_ldflags=["-s"])
        except Exception as e:  # ninja's output, the compiler's included, is in the message
            raise BuildError(first_error(str(e)), str(e)) from None


@contextlib.contextmanager
def _locked(path):
    """Held while a process builds, or loads what another built: one that starts meanwhile (a
    second rank of a job, say) waits for the build rather than load a half-linked module."""
    try:
        import fcntl
        f = open(os.path.join(path, "fastelu.lock"), "w")
    except (ImportError, OSError):  # Windows (no Triton wheels there, so no build either), a read-only cache
        yield
        return
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when f closes
        except OSError:  # a file system without locks (some network ones): build as before, unguarded
            pass
        yield


def load(force=False):
    """The compiled module, built first if this torch has none yet (or the source changed).

    Raises BuildError if the build fails, or failed before with the same compiler (then without
    trying again, unless force)."""
    path = directory()
    library = os.path.join(path, name() + ".so")
    if os.path.exists(library) and not force:
        try:  # without the lock: a cache on a read-only file system loads as well
            return _import(library)
        except ImportError:  # being linked by another process, or broken
            pass
    os.makedirs(path, exist_ok=True)
    with _locked(path):
        return _load_locked(path, library, force)


def _load_locked(path, library, force):
    memo = os.path.join(path, "failed.json")
    if os.path.exists(library) and not force:
        try:
            return _import(library)
        except ImportError:  # no other process is building it: a broken file (a build killed mid-link)
            os.remove(library)
    if os.path.exists(memo) and not force:
        with open(memo) as f:
            failed = json.load(f)
        if failed.get("compiler") == compiler():
            raise BuildError(failed["error"], failed["output"])
    print(f"fastelu: compiling its C++ part for torch {torch.__version__}, once, in {path}", file=sys.stderr,
          flush=True)
    start = time.monotonic()
    try:
        module = _compile(path)
    except BuildError as e:
        with open(memo, "w") as f:
            json.dump({"compiler": compiler(), "error": str(e), "output": e.output}, f)
        raise
    if os.path.exists(memo):
        os.remove(memo)
    print(f"fastelu: built in {time.monotonic() - start:.1f} s on {os.cpu_count()} cores", file=sys.stderr, flush=True)
    return module


def load_or_warn():
    """load() into C, or None with one warning that says why and what to do: fastelu's ops then
    run PyTorch's own elu, so that nothing breaks and nothing is silently wrong."""
    global C, error
    try:
        C = load()
        return C
    except Exception as e:  # noqa: BLE001 - a failed compile, no compiler, no ninja: the same way out
        reason = error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, BuildError):
            what = ("It needs a C++ compiler (g++ or clang++). The build is not tried again until the compiler, torch "
                    "or fastelu changes; python -m elu_op build --verbose retries it now and shows the compiler's "
                    "output")
        elif isinstance(e, OSError):  # the cache directory: a read-only home, say; nothing is remembered there
            what = ("Its build directory could not be written: set FASTELU_CACHE to a writable directory (the "
                    "build is tried again on each import)")
        else:  # a built module that does not load, say
            what = "python -m elu_op build --verbose builds it again and shows the compiler's output"
        warnings.warn(f"fastelu could not build its C++ part ({reason}), so its ops run PyTorch's own elu: slower, "
                      f"never wrong. {what}", RuntimeWarning, stacklevel=2)
        return None
