"""Forward-mode AD and torch.func on every op: F.elu's tangents, gradients and batching, on CPU and GPU."""
import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from conftest import randn
from torch.testing._internal.common_methods_invocations import op_db

import elu_op

OPS = torch.ops.fastelu
FUNCS = {  # fastelu's function, PyTorch's
    "elu": (lambda t: elu_op.elu(t, 0.7), lambda t: F.elu(t, 0.7)),
    "selu": (elu_op.selu, F.selu),
    # PyTorch's celu derivative rounds 1/alpha to float32 (derivatives.yaml: 1.0/alpha.toFloat());
    # fastelu keeps it float64, as celu's forward does, so the reference is elu with that input_scale.
    "celu": (lambda t: elu_op.celu(t, 0.4), lambda t: torch.ops.aten.elu(t, 0.4, 1.0, 1 / 0.4)),
    "op": (lambda t: OPS.elu(t, 1.3, 1.1, 0.6), lambda t: torch.ops.aten.elu(t, 1.3, 1.1, 0.6)),
    "inplace": (lambda t: elu_op.elu(t * 1, 0.7, inplace=True), lambda t: F.elu(t * 1, 0.7, inplace=True)),
}


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", FUNCS)
def test_jvp_and_forward_ad(device, name):
    ours, theirs = FUNCS[name]
    x, t = randn(50, torch.float64, device), randn(50, torch.float64, device)
    y, ty = torch.func.jvp(ours, (x,), (t,))
    _close(y, theirs(x))
    _close(ty, torch.func.jvp(theirs, (x,), (t,))[1])
    assert ty.abs().sum() > 0
    with fwAD.dual_level():
        got = fwAD.unpack_dual(ours(fwAD.make_dual(x, t))).tangent
        want = fwAD.unpack_dual(theirs(fwAD.make_dual(x, t))).tangent
    assert got is not None
    _close(got, want)


@pytest.mark.parametrize("name", FUNCS)
def test_func_transforms(device, name):
    ours, theirs = FUNCS[name]
    x = randn((3, 5), torch.float64, device)
    for transform in (lambda f: torch.func.grad(lambda t: f(t).sum()), torch.func.jacrev, torch.func.jacfwd,
                      lambda f: torch.func.vmap(torch.func.grad(lambda t: f(t).sum())),
                      lambda f: torch.func.jacfwd(torch.func.jacrev(lambda t: f(t).sum())),  # forward over reverse
                      lambda f: (lambda t: torch.func.vjp(f, t)[1](torch.ones_like(t))[0])):
        _close(transform(ours)(x), transform(theirs)(x))


def test_vmap_has_batching_rules(device):
    x, g = randn((4, 6), torch.float32, device), randn((4, 6), torch.float32, device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the BatchedFallback performance warning
        torch.testing.assert_close(torch.vmap(elu_op.selu)(x), F.selu(x))
        torch.testing.assert_close(torch.vmap(lambda t: OPS.elu(t, 0.5), in_dims=1)(x), F.elu(x, 0.5).t())
        got = torch.vmap(lambda a, b: OPS.elu_backward(a, 1.0, 1.0, 1.0, False, b), in_dims=(0, None))(g, x[0])
        torch.testing.assert_close(got, torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x[0].expand(4, 6)))
        got = torch.vmap(lambda a, b: OPS.elu_backward(a, 1.0, 1.0, 1.0, False, b), in_dims=(1, 0))(g, x.t())
        torch.testing.assert_close(got, torch.ops.aten.elu_backward(g.t(), 1.0, 1.0, 1.0, False, x.t()))
        y = x.clone()
        torch.vmap(lambda t: elu_op.elu(t, inplace=True))(y)
        torch.testing.assert_close(y, F.elu(x))


def test_elu_backward_forward_and_double_ad(device):
    x = randn(30, torch.float64, device).requires_grad_()
    g = randn(30, torch.float64, device).requires_grad_()
    for is_result in (False, True):
        s = torch.ops.aten.elu(x, 1.2, 1.0, 0.8) if is_result else x
        assert torch.autograd.gradcheck(lambda a, b: OPS.elu_backward(a, 1.2, 1.0, 0.8, is_result, b), (g, s),
                                        check_forward_ad=True, check_backward_ad=True)


def test_inplace_tangent_is_updated_in_place(device):
    x, t = randn(20, torch.float64, device), randn(20, torch.float64, device)
    with fwAD.dual_level():
        d = fwAD.make_dual(x.clone(), t.clone())
        elu_op.elu(d, 0.8, inplace=True)
        got = fwAD.unpack_dual(d)
    _close(got.primal, F.elu(x, 0.8))
    _close(got.tangent, torch.ops.aten.elu_backward(t, 0.8, 1.0, 1.0, False, x))
    with fwAD.dual_level(), pytest.raises(RuntimeError, match="negative slope"):
        elu_op.elu(fwAD.make_dual(x.clone(), t), -0.5, inplace=True)


# PyTorch's own reference inputs (OpInfo) for elu, selu and celu, through fastelu's functions.
OPINFOS = [o for o in op_db if o.name in ("nn.functional.elu", "nn.functional.selu", "nn.functional.celu")]
OURS = {"nn.functional.elu": elu_op.elu, "nn.functional.selu": elu_op.selu, "nn.functional.celu": elu_op.celu}


@pytest.mark.parametrize("opinfo", OPINFOS, ids=lambda o: o.name)
def test_opinfo_samples(device, opinfo):
    ours = OURS[opinfo.name]
    for dtype in (torch.float64, torch.float32):
        for sample in opinfo.sample_inputs(device, dtype, requires_grad=dtype == torch.float64):
            x, args, kwargs = sample.input, sample.args, sample.kwargs
            torch.testing.assert_close(ours(x, *args, **kwargs), opinfo.op(x, *args, **kwargs))
            y = x.detach().clone()
            ours(y, *args, **kwargs, inplace=True)
            torch.testing.assert_close(y, opinfo.op(x.detach(), *args, **kwargs))
            if dtype == torch.float64:
                fn = lambda t: ours(t, *args, **kwargs)  # noqa: E731
                assert torch.autograd.gradcheck(fn, (x,), check_forward_ad=True)
                assert torch.autograd.gradgradcheck(fn, (x,), check_fwd_over_rev=True)
