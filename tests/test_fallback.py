"""What a user hands stock elu, fastelu takes alike, on both of its paths: with its kernels, and
without them (no Triton, as on macOS and Windows, or no C++ compiler), where its ops are aten's
behind fastelu's names. Each test compares with stock PyTorch in the same process.

This file runs as it is (with the kernels, or in CI's leg without Triton), and again from
test_runs_without_kernels below in processes without Triton and without a compiler.
"""
import io
import os
import pathlib
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
import torch._dynamo
import torch.nn.functional as F
from conftest import assert_close_rel, elu_ref, randn

import elu_op

ROOT = pathlib.Path(__file__).resolve().parent.parent
OPS = torch.ops.fastelu
KERNELS = elu_op.ops.OFF is None
# Inductor compiles CPU graphs, and a changing float (a CPU scalar), with the C++ compiler that one
# of the runs below lacks: stock cannot compile them either there. On CUDA it needs Triton.
needs_inductor = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None,
                                    reason="Inductor has no C++ compiler here, for stock neither")
try:
    import triton  # noqa: F401
except ImportError:
    triton = None


def _model(inplace, fast):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 5), torch.nn.ELU(inplace=inplace), torch.nn.Linear(5, 3),
                                torch.nn.SELU(inplace=inplace))
    if fast:
        assert elu_op.patch(model) == 2
    return model


class _RawInplace(torch.nn.Module):
    """torch.ops.fastelu.elu_ on an intermediate, as a user's own forward would call it."""

    def forward(self, x):
        h = x * 2
        OPS.elu_(h, 0.5)
        return h


# ---- ONNX -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
def test_onnx_export_keeps_every_activation(dynamo, inplace):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(4, 5)

    def export(model):
        f = io.BytesIO()
        torch.onnx.export(model.eval(), (x,), f, dynamo=dynamo)
        return f.getvalue(), [n.op_type for n in onnx.load_from_string(f.getvalue()).graph.node]

    for model, activations in ((_model(inplace, True), 2), (_RawInplace(), 1)):
        exported, nodes = export(model)
        # SELU as Selu, or as Elu and a Mul (stock's in-place SELU under dynamo)
        assert nodes.count("Elu") + nodes.count("Selu") == activations, nodes
        session = ort.InferenceSession(exported)
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            want = model(x.clone())
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-5, atol=1e-6)


# ---- torch.compile ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=needs_inductor)])
def test_compile_in_place_trains_as_stock(backend):
    x = torch.randn(6, 5)
    results = []
    for fast in (False, True):
        model = _model(True, fast)
        torch._dynamo.reset()
        out = torch.compile(model, backend=backend)(x)
        out.sum().backward()
        results.append((out.detach(), [p.grad for p in model.parameters()]))
    (stock_out, stock_grads), (out, grads) = results
    torch.testing.assert_close(out, stock_out, rtol=1e-6, atol=1e-6)
    for g, want in zip(grads, stock_grads):
        torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-6)


@needs_inductor
@pytest.mark.parametrize("route", ["function", "op"])
def test_compile_in_place_on_an_intermediate_that_requires_grad(route):
    def ours(t):
        h = t * 1
        if route == "function":
            return elu_op.elu_(h)
        OPS.elu_(h)
        return h

    x = torch.randn(7, requires_grad=True)
    torch._dynamo.reset()
    y = torch.compile(ours)(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    (want,) = torch.autograd.grad(F.elu(x).sum(), x)
    torch.testing.assert_close(y, F.elu(x))
    torch.testing.assert_close(g, want)


ALPHA_ROUTES = {
    "function": (lambda x, a: elu_op.elu(x, a), lambda x, a: F.elu(x, a)),
    "op": (lambda x, a: OPS.elu(x, a), lambda x, a: F.elu(x, a)),
    "celu": (lambda x, a: elu_op.celu(x, a), lambda x, a: F.celu(x, a)),
    "in place": (lambda x, a: elu_op.elu(x * 1, a, inplace=True), lambda x, a: F.elu(x, a)),
}


def _graphs(fn, grad, check=None):
    """How many graphs torch.compile makes of fn(x, alpha) over six alphas (check: each result's)."""
    counts = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counts.clear()
    compiled = torch.compile(fn, fullgraph=True)
    for i in range(6):
        alpha = 0.15 + 0.1 * i
        x = torch.randn(64, requires_grad=grad)
        y = compiled(x, alpha)
        if check is not None:
            torch.testing.assert_close(y, check(x, alpha))
            if grad:
                got, = torch.autograd.grad(y.sum(), x)
                want, = torch.autograd.grad(check(x, alpha).sum(), x)
                torch.testing.assert_close(got, want)
    return counts["stats"]["unique_graphs"]


@needs_inductor
@pytest.mark.parametrize("route", ALPHA_ROUTES)
@pytest.mark.parametrize("grad", [False, True])
def test_a_new_alpha_compiles_no_graph_beyond_stocks(route, grad):
    # From torch 2.10, stock marks a float that changes dynamic after the first change: two graphs
    # for any number of values (torch 2.9 compiles one for each). fastelu's ops take Scalars, as
    # aten's, so they do the same. (Stock's F.elu is counted without gradients: after a compile of
    # F.celu with gradients, torch 2.13 recompiles the same graph for every alpha, across
    # torch._dynamo.reset(); and its compiled celu's gradients are wrong for a symbolic alpha.)
    ours, theirs = ALPHA_ROUTES[route]
    stock = _graphs(lambda x, a: F.elu(x, a), False)
    assert _graphs(ours, grad, check=theirs) == stock


@needs_inductor
@pytest.mark.skipif(not torch.cuda.is_available() or triton is None,
                    reason="CUDA graphs need a GPU, and Inductor needs Triton there, for stock too")
def test_a_new_alpha_under_cuda_graphs():
    # Under CUDA graphs Dynamo specializes every float (a changing one would reach the graph as a
    # CPU scalar, which CUDA graphs cannot take): a graph per alpha, for stock as for fastelu.
    counts = torch._dynamo.utils.counters

    def graphs(fn):
        torch._dynamo.reset()
        counts.clear()
        compiled = torch.compile(fn, fullgraph=True, mode="reduce-overhead")
        for i in range(6):
            x, alpha = torch.randn(64, device="cuda"), 0.15 + 0.1 * i
            torch.testing.assert_close(compiled(x, alpha), F.elu(x, alpha))
        return counts["stats"]["unique_graphs"]

    assert graphs(lambda x, a: OPS.elu(x, a)) == graphs(lambda x, a: F.elu(x, a))


# ---- vmap -------------------------------------------------------------------------------------------

def test_vmap_in_place_and_out_of_place_as_stock():
    x = randn((5, 3, 7), torch.float32, "cpu")
    for in_dims in (0, 1, 2):
        got = torch.func.vmap(elu_op.elu, in_dims=in_dims)(x)
        want = torch.func.vmap(F.elu, in_dims=in_dims)(x)
        assert got.shape == want.shape and got.stride() == want.stride(), (in_dims, got.stride(), want.stride())
        assert_close_rel(got, elu_ref(x.movedim(in_dims, 0)), torch.float32)
    y, want = x.clone(), x.clone()
    assert torch.func.vmap(elu_op.elu_)(y) is not None
    torch.func.vmap(F.elu_)(want)
    assert_close_rel(y, elu_ref(x), torch.float32)
    z = x.clone()
    torch.func.vmap(lambda t: (OPS.elu_(t, 0.5), t)[1], in_dims=1)(z)
    assert_close_rel(z, elu_ref(x, 0.5), torch.float32)


# ---- arguments refused as stock refuses them, before anything is written ---------------------------

@pytest.mark.parametrize("alpha", [np.array(0.5), np.array([0.5]), np.array([0.5, 1.0])], ids=["0-d", "1", "2"])
@pytest.mark.parametrize("name", ["elu", "celu", "elu_"])
def test_numpy_arrays_refused_as_stock(name, alpha):
    ours, theirs = getattr(elu_op, name), getattr(F, name)
    x = torch.randn(8)
    with pytest.raises(TypeError) as want:
        theirs(x.clone(), alpha)
    y = x.clone()
    with pytest.raises(TypeError) as got:
        ours(y, alpha)
    assert str(got.value) == str(want.value)
    assert torch.equal(y, x)


@pytest.mark.parametrize("alpha", [np.float32(0.5), np.float64(0.25), np.int64(2), np.float16(0.75)],
                         ids=lambda a: type(a).__name__)
def test_numpy_scalars_taken_as_stock(alpha):
    x = randn(64, torch.float64, "cpu")
    torch.testing.assert_close(elu_op.elu(x, alpha), F.elu(x, alpha), rtol=1e-15, atol=0)


@pytest.mark.parametrize("route", ["function", "op"])
def test_nan_alpha_in_place_then_backward_refused(route):
    # A NaN slope tells no more than a negative one which branch the input took: stock refuses it.
    for fn in ((lambda h: elu_op.elu_(h, float("nan"))) if route == "function"
               else (lambda h: OPS.elu_(h, float("nan"))), lambda h: F.elu_(h, float("nan"))):
        h = torch.randn(6, requires_grad=True) * 1
        fn(h)
        with pytest.raises(RuntimeError, match="negative slope"):
            h.sum().backward()
    g, y = torch.randn(6), torch.randn(6)
    for op in (OPS.elu_backward, torch.ops.aten.elu_backward):
        with pytest.raises(RuntimeError, match="negative slope"):
            op(g, float("nan"), 1.0, 1.0, True, y)


def test_none_refused_with_stocks_message():
    for call in (lambda op: op.elu(None), lambda op: op.elu_(None),
                 lambda op: op.elu_backward(None, 1.0, 1.0, 1.0, False, torch.randn(2)),
                 lambda op: op.elu_backward(torch.randn(2), 1.0, 1.0, 1.0, False, None)):
        with pytest.raises(RuntimeError) as want:
            call(torch.ops.aten)
        with pytest.raises(RuntimeError) as got:
            call(OPS)
        assert str(got.value).split("\n")[0] == str(want.value).split("\n")[0]


# ---- a fork while another thread computes -----------------------------------------------------------

def test_fork_while_another_thread_computes():
    # A forking DataLoader or multiprocessing pool: the child's calls must not wait on a lock that
    # a thread of the parent held at the fork (the interpreter's, under TRITON_INTERPRET=1).
    x = torch.randn(4096)
    stop = threading.Event()

    def compute():
        while not stop.is_set():
            elu_op.elu(x)

    worker = threading.Thread(target=compute)
    worker.start()
    children = []
    try:
        for _ in range(4):
            pid = os.fork()
            if pid == 0:  # the child: one call, then out, without pytest's teardown
                ok = torch.allclose(elu_op.elu(x[:100]), F.elu(x[:100]), rtol=1e-6, atol=0)
                os._exit(0 if ok else 1)
            children.append(pid)
    finally:
        stop.set()
        worker.join()
    hung, statuses = [], []
    for pid in children:  # two minutes for all of them, then any still there is killed
        for _ in range(1200 if not hung else 1):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                statuses.append(os.waitstatus_to_exitcode(status))
                break
            threading.Event().wait(0.1)
        else:
            hung.append(pid)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    assert not hung, f"{len(hung)} of {len(children)} forked children's calls hung"
    assert statuses == [0] * len(children)


# ---- the command line without kernels ----------------------------------------------------------------

@pytest.mark.skipif(KERNELS, reason="fastelu's kernels are on: check checks them")
def test_check_and_info_say_the_kernels_are_off(capsys):
    from elu_op import cli
    with pytest.raises(SystemExit) as e:
        cli.main(["check"])
    out = capsys.readouterr().out.strip().splitlines()
    # one verdict: the table checked PyTorch's elu, not fastelu's kernels
    assert e.value.code == 1 and not any("all passed" in line for line in out), out
    assert out[-1].startswith("FAILED: fastelu's kernels are off"), out
    cli.main(["info"])
    out = capsys.readouterr().out
    assert "kernels   off:" in out
    if elu_op.ops.knobs is None and sys.platform == "linux":  # Triton has Linux wheels: say how to get it
        assert "pip install triton" in out and "no wheels for this platform" not in out, out


# ---- the paths without kernels, from a process with them ---------------------------------------------

@pytest.mark.skipif(not KERNELS, reason="this process already runs without fastelu's kernels")
@pytest.mark.parametrize("without", ["triton", "compiler"])
def test_runs_without_kernels(without, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if without == "triton":
        env["FASTELU_TEST_WITHOUT_TRITON"] = "1"
    else:
        env.update(FASTELU_CACHE=str(tmp_path), CXX=str(tmp_path / "no-such-compiler"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                          "ignore::RuntimeWarning", __file__], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=1200)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout, run.stdout[-2000:]
