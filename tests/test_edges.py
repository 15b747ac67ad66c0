"""The drop-in at PyTorch's edges: what stock elu accepts (threads, jagged nested tensors,
functionalization, a platform without Triton) fastelu accepts with the same results, and what stock
refuses (arguments out of range, non-strided layouts) it refuses alike, before writing anything.
Output strides, size-1 dimensions' included, are aten's."""
import decimal
import fractions
import os
import random
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DTYPES, RTOL, assert_close_rel, elu_ref, randn

import elu_op
from elu_op.coefficients import SELU_ALPHA, SELU_SCALE


def assert_gradient_close(got, ref, dtype):
    """A gradient is a product of two rounded factors (the incoming gradient and the derivative):
    twice a result's tolerance, and one step of the dtype's subnormals where it underflows."""
    step = torch.finfo(dtype).smallest_normal * torch.finfo(dtype).eps
    assert_close_rel(got, ref, dtype, rtol=2 * RTOL[dtype], atol=step)

# Where fastelu's kernels are off (no Triton), its ops are aten's: the tests of its own messages skip.
needs_kernels = pytest.mark.skipif(elu_op.ops.OFF is not None, reason="fastelu's kernels are off: its ops are aten's")

FUNCTIONS = {  # name -> (fastelu's, stock's), each called as fn(x, *args)
    "elu": (elu_op.elu, F.elu),
    "selu": (elu_op.selu, F.selu),
    "celu": (elu_op.celu, F.celu),
    "elu_": (elu_op.elu_, F.elu_),
}


# ---- threads ------------------------------------------------------------------------------------

def test_threads_every_value(device):
    """Several threads at once, each with its own mix of sizes and ops: every value right, no error.
    (Triton's interpreter keeps a launch's state in globals: launch.py serialises its launches.)"""
    sizes = [1, 1023, 4099, 2**14 + 3] if device.type == "cpu" else [1, 1023, 2**20 + 7, 3 * 2**20 + 5]
    failures = []

    def worker(seed):
        rng = random.Random(seed)
        for call in range(20):
            n, dtype = rng.choice(sizes), rng.choice(DTYPES)
            x = randn(n, dtype, device)
            kind = call % 4
            try:
                if kind == 0:
                    got, ref = elu_op.elu(x, 0.7), elu_ref(x, 0.7)
                elif kind == 1:
                    got, ref = elu_op.celu(x, 1.5), elu_ref(x, 1.5, 1.0, 1 / 1.5)
                elif kind == 2:
                    ref = elu_ref(x)
                    got = elu_op.elu_(x)
                else:
                    g = randn(n, dtype, device)
                    got = torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)
                    ref = torch.ops.aten.elu_backward(g.double(), 1.0, 1.0, 1.0, False, x.double())
                    assert_gradient_close(got, ref, dtype)
                    continue
                assert_close_rel(got, ref, dtype)
            except Exception as e:  # noqa: BLE001 - collected for the main thread
                failures.append(f"thread {seed}, call {call} ({n} x {dtype}, op {kind}): {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, "\n".join(failures[:5])


# ---- jagged nested tensors ----------------------------------------------------------------------

def jagged(device, dtype=torch.float32, requires_grad=False):
    parts = [randn((n, 5), dtype, device) for n in (3, 1, 6)]
    return torch.nested.nested_tensor(parts, layout=torch.jagged, requires_grad=requires_grad)


@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_jagged_forward_and_backward(device, name, dtype):
    ours, stock = FUNCTIONS[name]
    args = () if name == "selu" else (0.8,)
    x = jagged(device, dtype, requires_grad=True)
    got, ref = ours(x, *args), stock(x, *args)
    assert got.is_nested and got.layout == torch.jagged
    assert got.shape == x.shape  # the same nested int: the result combines with its input
    torch.testing.assert_close(got.values(), ref.values(), rtol=RTOL[dtype], atol=0)
    assert (got + x).shape == x.shape
    g = torch.nested.nested_tensor_from_jagged(randn(got.values().shape, dtype, device), offsets=x.offsets())
    grad, = torch.autograd.grad(got, x, g)
    assert grad.is_nested and grad.shape == x.shape
    if elu_op.ops.OFF is not None:
        # Without fastelu's kernels the ops are aten's: stock's gradient to the bit (whose own error
        # against float64, deep in CELU's tail, exceeds the kernels' bound below on a rare input)
        stock_grad, = torch.autograd.grad(stock(x, *args), x, g)
        torch.testing.assert_close(grad.values(), stock_grad.values(), rtol=0, atol=0)
        return
    coefs = {"elu": (0.8, 1.0, 1.0), "selu": (SELU_ALPHA, SELU_SCALE, 1.0), "celu": (0.8, 1.0, 1 / 0.8)}[name]
    grad_ref = torch.ops.aten.elu_backward(g.values().double(), *coefs, False, x.values().detach().double())
    assert_gradient_close(grad.values(), grad_ref, dtype)


def test_jagged_in_place_and_ops(device):
    x = jagged(device)
    before = x.values().clone()
    assert elu_op.elu_(x, 0.5) is x
    assert_close_rel(x.values(), elu_ref(before, 0.5), torch.float32)
    y = jagged(device)
    torch.ops.fastelu.elu_(y, 1.0, 1.0, 1.0)
    z = torch.ops.fastelu.elu(y, 1.0, 1.0, 1.0)
    assert z.shape == y.shape


def test_jagged_through_a_patched_model_and_enable(device):
    model = torch.nn.Sequential(torch.nn.Linear(5, 5), torch.nn.ELU(), torch.nn.SELU(), torch.nn.CELU(0.5))
    model = model.to(device)
    x = jagged(device)
    ref = model(x)
    elu_op.patch(model)
    got = model(x)
    torch.testing.assert_close(got.values(), ref.values(), rtol=RTOL[torch.float32], atol=1e-6)
    with elu_op.enabled():
        torch.testing.assert_close(F.elu(x).values(), elu_ref(x.values()).float())


@needs_kernels  # aten's refusal is a RuntimeError
def test_jagged_backward_of_two_structures_refused(device):
    a = jagged(device)
    b = torch.nested.nested_tensor_from_jagged(randn(a.values().shape, torch.float32, device),
                                               offsets=a.offsets().clone())
    with pytest.raises(ValueError, match="one ragged structure"):
        torch.ops.fastelu.elu_backward(a, 1.0, 1.0, 1.0, False, b)


# ---- stock's argument rules ------------------------------------------------------------------------

def refuses_alike(ours, stock, exception, match):
    """Both raise exception with match; for in-place calls, neither wrote anything."""
    for fn in (ours, stock):
        with pytest.raises(exception, match=match):
            fn()


OVERFLOW = "cannot be converted to type float without overflow"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name,alpha", [("elu", 1e39), ("elu", -1e39), ("celu", 1e39), ("celu", 1e-40),
                                        ("elu_", 1e39)])
def test_coefficients_out_of_float_range_refused(device, dtype, name, alpha):
    ours, stock = FUNCTIONS[name]
    for shape in ((7,), (0,)):
        x = randn(shape, dtype, device)
        before = x.clone()
        refuses_alike(lambda: ours(x, alpha), lambda: stock(x.clone(), alpha), RuntimeError, OVERFLOW)
        assert torch.equal(x, before)


def test_coefficients_out_of_float_range_refused_by_the_ops(device):
    x, g = randn(9, torch.float32, device), randn(9, torch.float32, device)
    for coefs in ((1e39, 1.0, 1.0), (1.0, 1e39, 1.0), (1.0, 1.0, -1e39)):
        refuses_alike(lambda: torch.ops.fastelu.elu(x, *coefs), lambda: torch.ops.aten.elu(x, *coefs),
                      RuntimeError, OVERFLOW)
        refuses_alike(lambda: torch.ops.fastelu.elu_backward(g, *coefs, False, x),
                      lambda: torch.ops.aten.elu_backward(g, *coefs, False, x), RuntimeError, OVERFLOW)


@needs_kernels
def test_coefficients_out_of_float_range_refused_by_the_fake_kernels(device):
    x = randn(9, torch.float32, device)
    with pytest.raises(RuntimeError, match=OVERFLOW):  # under torch.compile, when the graph is traced
        with torch._subclasses.FakeTensorMode() as mode:
            torch.ops.fastelu.elu(mode.from_tensor(x), 1e39)


def test_coefficients_that_stock_takes(device):
    x = randn(64, torch.float32, device)
    for alpha in (3.4e38, float("inf"), float("-inf"), float("nan")):
        torch.testing.assert_close(elu_op.elu(x, alpha), F.elu(x, alpha), equal_nan=True)
    xd = x.double()
    torch.testing.assert_close(elu_op.elu(xd, 1e39), F.elu(xd, 1e39), rtol=1e-15, atol=0)
    torch.testing.assert_close(elu_op.celu(xd, 1e-40), F.celu(xd, 1e-40), rtol=1e-15, atol=0)


@pytest.mark.parametrize("alpha", [torch.tensor(1.0, requires_grad=True), torch.tensor([1.0]), fractions.Fraction(1, 2),
                                   decimal.Decimal(1), "1.0", None])
@pytest.mark.parametrize("name", ["elu", "celu", "elu_"])
def test_alpha_types_refused_alike(device, name, alpha):
    ours, stock = FUNCTIONS[name]
    x = randn(5, torch.float32, device)
    refuses_alike(lambda: ours(x, alpha), lambda: stock(x.clone(), alpha), TypeError,
                  f"{name}\\(\\): argument 'alpha' \\(position 2\\) must be Number, not (decimal\\.)?{type(alpha).__name__}$")


@pytest.mark.parametrize("alpha", [2, True, np.float32(0.5), np.int64(2), np.bool_(True), 1 + 0j, 2**63,
                                   torch.tensor(0.5), torch.tensor(2), torch.tensor(1 + 0j)])
def test_alpha_types_taken_alike(device, alpha):
    x = randn(33, torch.float32, device)
    torch.testing.assert_close(elu_op.elu(x, alpha), F.elu(x, alpha), rtol=RTOL[torch.float32], atol=0)
    torch.testing.assert_close(elu_op.celu(x, alpha), F.celu(x, alpha), rtol=RTOL[torch.float32], atol=0)


def test_alpha_values_refused_alike(device):
    x = randn(5, torch.float32, device)
    refuses_alike(lambda: elu_op.elu(x, 1j), lambda: F.elu(x, 1j), RuntimeError, OVERFLOW)
    refuses_alike(lambda: elu_op.elu(x, 10**30), lambda: F.elu(x, 10**30), OverflowError, "int too big")


# ---- layouts other than strided --------------------------------------------------------------------

LAYOUTS = {
    "torch.sparse_coo": lambda t: t.to_sparse(),
    "torch.sparse_csr": lambda t: t.to_sparse_csr(),
    "torch.sparse_csc": lambda t: t.to_sparse_csc(),
    "torch.sparse_bsr": lambda t: t.to_sparse_bsr((2, 2)),
    "torch._mkldnn": lambda t: t.to_mkldnn(),
}


@needs_kernels
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ["elu", "selu", "elu_", "backward"])
def test_non_strided_layouts_refused(device, layout, name):
    if layout == "torch._mkldnn" and (device.type != "cpu" or not torch.backends.mkldnn.is_available()):
        pytest.skip("mkldnn tensors live on the CPU of builds with oneDNN")
    dense = randn((4, 6), torch.float32, device)
    x = LAYOUTS[layout](dense)
    calls = {
        "elu": (lambda t: elu_op.elu(t), lambda t: F.elu(t)),
        "selu": (lambda t: elu_op.selu(t), lambda t: F.selu(t)),
        "elu_": (lambda t: elu_op.elu_(t), lambda t: F.elu_(t)),
        "backward": (lambda t: torch.ops.fastelu.elu_backward(t, 1.0, 1.0, 1.0, False, t),
                     lambda t: torch.ops.aten.elu_backward(t, 1.0, 1.0, 1.0, False, t)),
    }[name]
    with pytest.raises(NotImplementedError, match=f"has layout {layout}, but only strided tensors"):
        calls[0](x)
    with pytest.raises(RuntimeError):  # stock refuses it too (NotImplementedError is a RuntimeError)
        calls[1](x)
    assert torch.equal(x.to_dense(), dense)  # nothing written


# ---- functionalization ------------------------------------------------------------------------------

MUTATING = ("elu_", "copy_", "fastelu.elu_")


def graph_ops(gm):
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


@pytest.mark.parametrize("route", ["function", "module", "op"])
def test_functionalize_in_place_on_a_view(device, route):
    from torch.func import functionalize
    from torch.fx.experimental.proxy_tensor import make_fx

    act = {"function": lambda v: elu_op.elu_(v, 0.5), "module": elu_op.FastELU(0.5, inplace=True),
           "op": lambda v: torch.ops.fastelu.elu_(v, 0.5)}[route]

    def f(x, act):
        y = x * 2
        act(y[1:, ::2])  # a view: the write must reach y
        return y + 1

    x = randn((6, 8), torch.float32, device)
    ref = f(x, lambda v: F.elu_(v, 0.5))
    assert_close_rel(functionalize(lambda t: f(t, act))(x), ref, torch.float32)
    gm = make_fx(functionalize(lambda t: f(t, act)))(x)
    ops = graph_ops(gm)
    assert "fastelu.elu.default" in ops or elu_op.ops.OFF and "aten.elu.default" in ops
    assert not [op for op in ops if op.split(".")[-2].endswith("_")], ops  # no mutation left
    assert_close_rel(gm(x), ref, torch.float32)


def test_functionalize_mutating_an_input(device):
    from torch.func import functionalize

    def f(x):
        elu_op.elu_(x[::2])

    x = randn(10, torch.float32, device)
    before = x.clone()
    functionalize(f)(x)  # functionalize writes input mutations back, as for aten's elu_
    assert_close_rel(x[::2], elu_ref(before[::2]), torch.float32)
    assert torch.equal(x[1::2], before[1::2])


def test_functionalize_keeps_the_checks(device):
    from torch.func import functionalize
    x = randn(4, torch.float32, device).expand(3, 4)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        functionalize(lambda t: elu_op.elu_(t))(x)


# ---- output strides ---------------------------------------------------------------------------------

def odd_view(shape, rng, device, dtype=torch.float32):
    """A tensor of shape laid out in a random order of its dimensions, with a random gap, and a
    random stride on each size-1 dimension."""
    order = list(range(len(shape)))
    rng.shuffle(order)
    strides, step = [0] * len(shape), 1
    for d in reversed(order):
        strides[d] = step
        step *= shape[d] * (1 if rng.random() < 0.7 else 2)
    strides = [rng.choice([1, 7, 999]) if n == 1 else st for n, st in zip(shape, strides)]
    base = randn(step * max(shape) + 1, dtype, device)
    return base.as_strided(shape, strides)


def test_output_strides_match_aten(device):
    rng = random.Random(0)
    xs = [torch.empty_strided((2, 3, 1, 4, 1), (12, 1, 999, 3, 7), device=device).normal_()]
    for _ in range(150):
        xs.append(odd_view(tuple(rng.choice([1, 1, 2, 3]) for _ in range(rng.randint(1, 5))), rng, device))
    for x in xs:
        assert torch.ops.fastelu.elu(x).stride() == torch.ops.aten.elu(x).stride(), (x.shape, x.stride())
        for g, s in ((odd_view(x.shape, rng, device), x), (x, odd_view(x.shape, rng, device))):
            got = torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, s)
            assert got.stride() == torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, s).stride(), \
                (x.shape, g.stride(), s.stride())


def test_channels_last_gradient_with_an_odd_size_one_stride(device):
    x = randn((2, 3, 1, 5), torch.float32, device).contiguous(memory_format=torch.channels_last)
    g = randn((2, 3, 1, 5), torch.float32, device).contiguous(memory_format=torch.channels_last)
    g = g.as_strided(g.shape, (g.stride(0), g.stride(1), 777, g.stride(3)))
    for a, b in ((g, x), (x, g)):
        got = torch.ops.fastelu.elu_backward(a, 1.0, 1.0, 1.0, False, b)
        assert got.stride() == torch.ops.aten.elu_backward(a, 1.0, 1.0, 1.0, False, b).stride()


# ---- a platform without Triton -----------------------------------------------------------------------

WITHOUT_TRITON = textwrap.dedent("""
    import sys, warnings
    sys.modules["triton"] = None  # as where Triton has no wheels: importing it fails
    import torch, torch.nn.functional as F
    warnings.simplefilter("error")  # fastelu says nothing at import: nothing is wrong
    import elu_op
    warnings.resetwarnings()
    assert elu_op.ops.OFF.startswith("Triton is not installed"), elu_op.ops.OFF
    x = torch.randn(1000, dtype=torch.float64).mul(4).float()
    assert torch.equal(elu_op.elu(x, 0.7), F.elu(x, 0.7))
    assert torch.equal(elu_op.selu(x), F.selu(x))
    assert torch.equal(elu_op.celu(x, 0.5), F.celu(x, 0.5))
    y = x.clone(); elu_op.elu_(y); assert torch.equal(y, F.elu(x))
    assert torch.equal(torch.ops.fastelu.elu(x, 1.0, 2.0, 0.5), torch.ops.aten.elu(x, 1.0, 2.0, 0.5))
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ELU(), torch.nn.SELU())
    a = torch.randn(3, 4, requires_grad=True)
    ref = model(a); ref.sum().backward(); ref_grad = a.grad.clone(); a.grad = None
    assert elu_op.patch(model) == 2
    out = model(a); out.sum().backward()
    assert torch.equal(out, ref) and torch.equal(a.grad, ref_grad)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with elu_op.enabled():
            assert torch.equal(F.elu(x), torch.ops.aten.elu(x))
    assert any("Triton is not installed" in str(m.message) for m in w)
    from elu_op import cli
    cli.main(["info"])
    for command, says in (("tune", "kernels are off"), ("bench", "kernels are off"),
                          ("export-kernelbench", "Triton is not installed")):
        try:
            cli.main([command])
        except SystemExit as e:
            assert says in str(e.code), e.code
        else:
            raise AssertionError(command + " ran without Triton")
""")


def test_without_triton():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", WITHOUT_TRITON], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "kernels   off: Triton is not installed" in run.stdout, run.stdout
