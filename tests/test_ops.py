"""The operators as PyTorch sees them: opcheck, autograd, errors, torch.compile."""
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F
from conftest import randn

import elu_op
from elu_op import ops

OPS = torch.ops.fastelu


def _samples(device):
    yield randn((5, 7), torch.float32, device), (1.0, 1.0, 1.0)
    yield randn((3, 4, 5), torch.float64, device), (0.5, 1.5, 2.0)
    yield randn((2, 3, 4, 5), torch.float16, device).to(memory_format=torch.channels_last), (1.0, 1.0, 1.0)
    yield randn((6, 8), torch.bfloat16, device)[:, ::2], (1.3, 1.0, 1.0)
    yield randn((), torch.float32, device), (1.0, 2.0, 1.0)


def test_opcheck(device):
    for x, coefs in _samples(device):
        torch.library.opcheck(OPS.elu.default, (x, *coefs))
        torch.library.opcheck(OPS.elu_.default, (x.clone(), *coefs))
        g = torch.randn_like(x)
        for is_result in (False, True):
            torch.library.opcheck(OPS.elu_backward.default, (g, *coefs, is_result, x))
        xg = x.detach().clone().requires_grad_(x.dtype in (torch.float32, torch.float64))
        torch.library.opcheck(OPS.elu.default, (xg, *coefs))


@pytest.mark.parametrize("coefs", [(1.0, 1.0, 1.0), (1.3, 1.05, 0.7), (0.5, 1.0, -1.5)])
def test_gradcheck(device, coefs):
    x = randn((4, 6), torch.float64, device, scale=2.0).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: OPS.elu(t, *coefs), (x,))
    assert torch.autograd.gradgradcheck(lambda t: OPS.elu(t, *coefs), (x,))
    if coefs[0] >= 0 and coefs[2] >= 0:  # else refused, see test_refusals_write_nothing
        def inplace(t):
            t = t * 1.0
            OPS.elu_(t, *coefs)
            return t
        assert torch.autograd.gradcheck(inplace, (x,))
        assert torch.autograd.gradgradcheck(inplace, (x,))


def test_gradients_match_pytorch(device):
    x = randn(300, torch.float32, device).requires_grad_()
    g = randn(300, torch.float32, device)
    for ours, theirs in [(lambda t: elu_op.elu(t, 0.7), lambda t: F.elu(t, 0.7)),
                         (elu_op.selu, F.selu), (lambda t: elu_op.celu(t, 0.4), lambda t: F.celu(t, 0.4)),
                         (lambda t: elu_op.elu(t * 1, inplace=True), lambda t: F.elu(t * 1, inplace=True))]:
        a, = torch.autograd.grad(ours(x), x, g)
        b, = torch.autograd.grad(theirs(x), x, g)
        # in place, both take the gradient from the result, which loses relative accuracy deep in
        # the negative tail: measured against float64, not against each other (a rare input failed)
        xd = x.detach().double().requires_grad_()
        ref, = torch.autograd.grad(theirs(xd), xd, g.double())
        _no_worse_than_aten(a, b, ref)


def _no_worse_than_aten(got, aten, ref):
    """got is as close to the float64 reference as aten's own result is, give or take one float32
    rounding: aten's gradients err by up to about 1e-5 relative, so no fixed tolerance fits both."""
    def err(t):
        return ((t.double() - ref).abs() / ref.abs().clamp_min(1e-6)).max().item()
    assert err(got) <= err(aten) + 2**-23, (err(got), err(aten))


def test_inplace_functions_mirror_torch(device):
    # elu_, selu_, celu_ as torch.nn.functional's: the input changed and returned, the same
    # gradients through a non-leaf, the same errors under their own names
    torch.manual_seed(0)
    x = randn((6, 5), torch.float32, device)[:, ::2]
    g = randn((6, 3), torch.float32, device)
    for ours, theirs, args, bad_calls in ((elu_op.elu_, F.elu_, (0.7,), (([1.0],), (x, "1"))),
                                          (elu_op.selu_, F.selu_, (), (([1.0],),)),
                                          (elu_op.celu_, F.celu_, (0.4,), (([1.0],), (x, "1"), (x, 0.0)))):
        a, b = x.clone(), x.clone()
        assert ours(a, *args) is a
        _no_worse_than_aten(a, theirs(b, *args), theirs(x.double(), *args))
        leaf = x.clone().requires_grad_()
        got, = torch.autograd.grad(ours(leaf * 1, *args), leaf, g)
        want, = torch.autograd.grad(theirs(leaf * 1, *args), leaf, g)
        leaf64 = x.double().requires_grad_()
        ref, = torch.autograd.grad(theirs(leaf64 * 1, *args), leaf64, g.double())
        _no_worse_than_aten(got, want, ref)
        for bad in bad_calls:
            with pytest.raises(Exception) as error:
                theirs(*bad)
            with pytest.raises(error.type, match=re.escape(str(error.value))):
                ours(*bad)


def test_inplace_bumps_version_and_saved_tensor_check(device):
    a = randn(10, torch.float32, device).requires_grad_()
    b = a * 2
    y = b.exp()  # saves its result b.exp(); modify b afterwards is fine, modifying y is not
    v = y._version
    elu_op.elu(y, inplace=True)
    assert y._version > v
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    with torch.no_grad():
        z = torch.ones(3, device=device)
        v = z._version
        elu_op.elu(z, inplace=True)
        assert z._version > v


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64, torch.uint8])
def test_bad_dtypes_raise_type_error(device, dtype):
    x = torch.ones(4, device=device).to(dtype)
    for call in (lambda: OPS.elu(x), lambda: OPS.elu_(x), lambda: elu_op.elu(x), lambda: elu_op.selu(x),
                 lambda: OPS.elu_backward(x, 1.0, 1.0, 1.0, False, x)):
        with pytest.raises(TypeError, match=str(dtype)):
            call()


def test_bad_arguments(device):
    x = randn(4, torch.float32, device)
    # PyTorch's types and messages: a string alpha, a tensor alpha with a dimension, CELU's alpha 0
    for ours, theirs, alpha in ((elu_op.elu, F.elu, "1"), (elu_op.elu, F.elu, torch.tensor([1.0])),
                                (elu_op.celu, F.celu, 0.0)):
        with pytest.raises(Exception) as want:
            theirs(x, alpha)
        with pytest.raises(want.type, match=str(want.value).replace("(", r"\(").replace(")", r"\)")):
            ours(x, alpha)
    # ...and what PyTorch accepts: a 0-d tensor, a bool
    torch.testing.assert_close(elu_op.elu(x, torch.tensor(0.5)), F.elu(x, 0.5))
    torch.testing.assert_close(elu_op.celu(x, True), F.celu(x, True))
    with pytest.raises(TypeError, match="Tensor"):
        elu_op.elu([1.0, 2.0])
    # through torch.ops a string alpha meets the dispatcher's schema check, as aten's elu does there
    for op in (torch.ops.aten.elu, OPS.elu):
        with pytest.raises(RuntimeError, match="for argument 'alpha'"):
            op(x, "1")
    with pytest.raises(TypeError, match="dtype"):
        OPS.elu_backward(x, 1.0, 1.0, 1.0, False, x.double())
    with pytest.raises(ValueError, match="shape"):
        OPS.elu_backward(x, 1.0, 1.0, 1.0, False, x[:2])


def test_refusals_write_nothing(device):
    # memory that overlaps itself
    x = randn(3, torch.float32, device).reshape(3, 1).expand(3, 4)
    before = x.clone()
    with pytest.raises(RuntimeError, match="single memory location"):
        elu_op.elu(x, inplace=True)
    assert torch.equal(x, before)
    # a leaf that requires grad, and a view of one
    leaf = randn(4, torch.float32, device).requires_grad_()
    before = leaf.detach().clone()
    with pytest.raises(RuntimeError, match="leaf Variable"):
        elu_op.elu(leaf, inplace=True)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        elu_op.elu(leaf[:2], inplace=True)
    assert torch.equal(leaf.detach(), before)
    # a gradient from the result of a negative slope
    s = randn(4, torch.float32, device)
    with pytest.raises(RuntimeError, match="negative slope"):
        OPS.elu_backward(s, -0.5, 1.0, 1.0, True, s)


@pytest.mark.parametrize("coefs", [(-0.5, 1.0, 1.0), (1.0, 1.0, -2.0)], ids=["alpha", "input_scale"])
def test_inplace_negative_slope_under_autograd_fails_in_backward(device, coefs):
    # As PyTorch: the forward runs (a model evaluated without no_grad works), and backward refuses,
    # since the result's sign no longer tells which branch the input took. PyTorch lets a negative
    # input_scale through with wrong gradients; it is refused alike.
    x = randn(4, torch.float32, device)
    y = x.clone().requires_grad_() * 1
    OPS.elu_(y, *coefs)
    torch.testing.assert_close(y.detach(), torch.ops.aten.elu(x, *coefs))
    with pytest.raises(RuntimeError, match="negative slope"):
        y.sum().backward()


def test_compile_fullgraph_dynamic_no_recompile(device):
    torch._dynamo.reset()
    counts = torch._dynamo.utils.counters
    counts.clear()

    @torch.compile(fullgraph=True, dynamic=True)
    def f(t):
        return elu_op.elu(t * 2.0, 0.5) + elu_op.selu(t) + OPS.elu(t, 1.0, 1.0, 1.0)

    for n in (17, 33, 1000):
        t = randn(n, torch.float32, device)
        torch.testing.assert_close(f(t), F.elu(t * 2.0, 0.5) + F.selu(t) + F.elu(t), rtol=1e-6, atol=1e-6)
    assert counts["stats"]["unique_graphs"] == 1


def test_compile_training_step_matches_eager(device):
    torch.manual_seed(0)

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(16, 32), elu_op.FastELU(), torch.nn.Linear(32, 32),
                                   elu_op.FastSELU(), torch.nn.Linear(32, 1)).to(device)

    data = [(torch.randn(8, 16, device=device), torch.randn(8, 1, device=device)) for _ in range(3)]

    def train(model, step_fn):
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        losses = []
        for x, y in data:
            opt.zero_grad()
            loss = step_fn(model, x, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    def step(model, x, y):
        return F.mse_loss(model(x), y)

    eager = train(make(), step)
    compiled = train(make(), torch.compile(step, fullgraph=True))
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)


# ---- the registration table ----------------------------------------------------------------------

DISPATCHER_KEYS = ("CompositeExplicitAutograd", "CompositeImplicitAutograd", "Autograd", "ADInplaceOrView", "Meta",
                   "Functionalize", "Tracer")


def test_the_dispatcher_holds_what_the_table_names():
    # every key the dispatcher keeps per op: a kernel exactly where this build state's row names one
    assert set(DISPATCHER_KEYS) <= set(ops.TABLE)
    for key in DISPATCHER_KEYS:
        for op in ops.OPS:
            kernel = (ops.TABLE[key][ops.STATE] or {}).get(op)
            named = kernel is not None and kernel != ops.ATEN
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastelu::{op}", key) == named, (key, op, kernel)


def test_the_cpp_registrations_are_the_tables():
    # csrc/ops.cpp registers its kernels as it loads: the table names exactly those
    source = (pathlib.Path(elu_op.__file__).parent / "csrc" / "ops.cpp").read_text()
    registered = {(key, op, fn) for key, body in re.findall(r"TORCH_LIBRARY_IMPL\(fastelu, (\w+), m\) \{(.*?)\n?\}", source, re.S)
                  for op, fn in re.findall(r'm\.impl\("(\w+)", &fastelu::(\w+)\)', body)}
    named = {(key, op, str(k)) for key, states in ops.TABLE.items() for op, k in (states[ops.BUILT] or {}).items()
             if isinstance(k, ops.Cpp)}
    assert registered == named and registered


def test_every_key_has_a_row_in_every_state():
    for key, states in ops.TABLE.items():
        assert set(states) == set(ops.STATES), key
        for kernels in states.values():
            assert kernels is None or set(kernels) <= set(ops.OPS), key


def test_every_registration_deferred_to_one_module_runs_once_it_loads(tmp_path, monkeypatch):
    # regression: torch 2.15 imports its jagged nested tensor module lazily, and a second callback
    # for a module not loaded yet was dropped: only elu got its nested rule
    (tmp_path / "fastelu_later_module.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []
    first, second = (lambda: calls.append(1)), (lambda: calls.append(2))
    for callback in (first, second, first):
        elu_op.deferred.after_import("fastelu_later_module", callback)
    assert calls == []
    import fastelu_later_module  # noqa: F401
    assert calls == [1, 2]
