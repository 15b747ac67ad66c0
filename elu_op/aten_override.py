"""The aten switch: F.elu, F.selu and F.celu (aten's elu, elu_, elu_backward) on CUDA tensors,
in code you do not own, computed by fastelu; inside torch.compile, lowered to fastelu's math."""
import contextlib
import warnings

import torch

from . import build, inductor, ops

_enabled = False


def enable():
    """Route aten's elu, elu_ and elu_backward on CUDA tensors to fastelu (F.elu, F.selu, F.celu...),
    and inside torch.compile, on any device, lower them to fastelu's math. Eager calls on CPU tensors
    stay aten's (said once where there is no CUDA device). The kernels that take aten's place are
    C++ (no Python runs per call); disable() gives aten its own back."""
    global _enabled
    if _enabled:
        return
    if build.C is None:
        warnings.warn(f"fastelu: enable() changes nothing, since fastelu's kernels are off ({ops.OFF}); F.elu stays "
                      f"PyTorch's", RuntimeWarning, stacklevel=2)
        return
    if not torch.cuda.is_available():
        warnings.warn("fastelu: enable() routes aten's elu on CUDA tensors, and inside torch.compile graphs on any "
                      "device; this machine has no CUDA device, so eager F.elu on CPU tensors stays PyTorch's",
                      UserWarning, stacklevel=2)
    inductor.route_aten(True)
    with warnings.catch_warnings():  # "overriding a previously registered kernel" is the point here
        warnings.simplefilter("ignore", UserWarning)
        build.C.route_aten(True)
    _enabled = True


def disable():
    """Give aten's elu kernels back to PyTorch. Safe to call when not enabled."""
    global _enabled
    if _enabled:
        build.C.route_aten(False)
        inductor.route_aten(False)
        _enabled = False


def is_enabled():
    return _enabled


@contextlib.contextmanager
def enabled():
    """enable() inside the block, then back to whatever was in force before (so it nests)."""
    was = is_enabled()
    enable()
    try:
        yield
    finally:
        if not was:
            disable()
