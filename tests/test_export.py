"""A model that uses fastelu leaves PyTorch as a stock one does: torch.export keeps fastelu's ops,
its default decompositions turn them into aten's, and both ONNX exporters write standard nodes
that onnxruntime runs as it runs the stock model's export."""
import contextlib
import io
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import elu_op
from conftest import DEVICES, elu_ref

try:  # the test extras; the torch.export tests run without them
    import onnx
    import onnxruntime as ort
except ImportError:
    onnx = ort = None
needs_onnx = pytest.mark.skipif(onnx is None, reason="needs onnx, onnxscript and onnxruntime (the test extras)")

DEVICE = DEVICES[0]
ONNX_OPS = {"Elu", "Selu", "Celu"}


def stock_model(inplace=False):
    return nn.Sequential(nn.Linear(16, 16), nn.ELU(0.7, inplace), nn.Linear(16, 16), nn.SELU(inplace),
                         nn.Linear(16, 16), nn.CELU(0.5, inplace))


class OwnForward(nn.Module):
    """fastelu's functions called in a user's own forward."""

    def __init__(self, inplace):
        super().__init__()
        self.inplace = inplace
        self.a, self.b, self.c = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, x):
        if self.inplace:
            return elu_op.celu_(self.c(elu_op.selu_(self.b(elu_op.elu_(self.a(x), 0.7)))), 0.5)
        return elu_op.celu(self.c(elu_op.selu(self.b(elu_op.elu(self.a(x), 0.7)))), 0.5)


class RawOps(OwnForward):
    """torch.ops.fastelu.* called directly."""

    def forward(self, x):
        ops = torch.ops.fastelu
        if self.inplace:
            y = self.a(x)
            ops.elu_(y, 0.7)
            y = self.b(y)
            ops.elu_(y, elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE)
            y = self.c(y)
            ops.elu_(y, 0.5, 1.0, 2.0)
            return y
        y = ops.elu(self.a(x), 0.7)
        y = ops.elu(self.b(y), elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE)
        return ops.elu(self.c(y), 0.5, 1.0, 2.0)


def patched(inplace):
    model = stock_model(inplace)
    elu_op.patch(model)
    return model


# F.elu under enable(): the stock model, exported while enable() is on.
ROUTES = {"patch": patched, "own forward": OwnForward, "torch.ops": RawOps, "enable": stock_model}


def models(route, inplace, dtype):
    """The route's model and the stock model, with the same weights."""
    torch.manual_seed(0)
    ours = ROUTES[route](inplace).to(DEVICE, dtype).eval()
    stock = stock_model(inplace).to(DEVICE, dtype).eval()
    stock.load_state_dict(dict(zip(stock.state_dict(), ours.state_dict().values())))
    return ours, stock


def exporting(route):
    return elu_op.enabled() if route == "enable" else contextlib.nullcontext()


def targets(graph_module):
    return {str(n.target).split(".")[0] + "." + str(n.target).split(".")[1]
            for n in graph_module.graph.nodes if n.op == "call_function" and hasattr(n.target, "_schema")}


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("route", ["patch", "own forward", "torch.ops"])
def test_export_keeps_the_op_and_default_decompositions_give_aten(route, inplace):
    ours, stock = models(route, inplace, torch.float32)
    x = torch.randn(8, 16, device=DEVICE)
    ep = torch.export.export(ours, (x.clone(),))
    assert any(t.startswith("fastelu.") for t in targets(ep.graph_module))
    decomposed = ep.run_decompositions()
    assert all(t.startswith("aten.") for t in targets(decomposed.graph_module)), targets(decomposed.graph_module)
    assert "aten.elu" in targets(decomposed.graph_module)
    torch.testing.assert_close(decomposed.module()(x.clone()), stock(x.clone()))
    # Keeping the op: delete it from the table, as for any custom op.
    table = torch.export.default_decompositions()
    del table[torch.ops.fastelu.elu.default]
    kept = ep.run_decompositions(table)
    assert "fastelu.elu" in targets(kept.graph_module)
    assert "fastelu.elu_" not in targets(kept.graph_module)  # functional: elu and a copy


def test_decompositions_give_aten_elu_backward():
    class Backward(nn.Module):
        def forward(self, g, x):
            return torch.ops.fastelu.elu_backward(g, 0.7, 1.0, 1.0, False, x)

    g, x = torch.randn(8, 16, device=DEVICE), torch.randn(8, 16, device=DEVICE)
    ep = torch.export.export(Backward(), (g, x))
    table = torch.export.default_decompositions()
    del table[torch.ops.aten.elu_backward.default]
    assert targets(ep.run_decompositions(table).graph_module) == {"aten.elu_backward"}
    decomposed = ep.run_decompositions()  # which goes on to decompose aten's elu_backward, as for aten's
    assert all(t.startswith("aten.") for t in targets(decomposed.graph_module))
    torch.testing.assert_close(decomposed.module()(g, x), torch.ops.aten.elu_backward(g, 0.7, 1.0, 1.0, False, x))


def test_joint_graph_has_aten_elu_backward():
    from torch.export.experimental import _export_forward_backward
    model = patched(False).to(DEVICE)
    x = torch.randn(8, 16, device=DEVICE)

    class Loss(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return (self.model(x).sum(),)

    joint = _export_forward_backward(torch.export.export(Loss(), (x,)))
    assert {"fastelu.elu", "fastelu.elu_backward"} <= targets(joint.graph_module)  # kept, as any custom op there
    table = torch.export.default_decompositions()
    del table[torch.ops.aten.elu_backward.default]  # else it goes on to pointwise ops, as for a stock model
    found = targets(joint.run_decompositions(table).graph_module)
    assert not any(t.startswith("fastelu.") for t in found), found
    assert {"aten.elu", "aten.elu_backward"} <= found


def test_the_ops_stay_fastelus_outside_export():
    x = torch.randn(64, device=DEVICE)
    ops = torch.ops.fastelu
    assert ops.elu.default.decompose(x, 0.7, 1.0, 1.0) is NotImplemented
    assert ops.elu_.default.decompose(x, 0.7, 1.0, 1.0) is NotImplemented
    assert ops.elu_backward.default.decompose(x, 0.7, 1.0, 1.0, False, x) is NotImplemented


def onnx_export(model, x, dynamo):
    """The ONNX model that model exports to with x, serialized."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' own deprecation and progress notes
        if dynamo:
            return torch.onnx.export(model, (x.clone(),), dynamo=True, verbose=False).model_proto.SerializeToString()
        f = io.BytesIO()
        torch.onnx.export(model, (x.clone(),), f, dynamo=False)
        return f.getvalue()


def nodes(data):
    return [n.op_type for n in onnx.load_from_string(data).graph.node]


def onnxruntime(data, x):
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.cpu().numpy()})[0])


def onnx_run(model, x, dynamo):
    """(node types, node domains, onnxruntime's output) of model exported with x."""
    data = onnx_export(model, x, dynamo)
    return nodes(data), {n.domain for n in onnx.load_from_string(data).graph.node}, onnxruntime(data, x)


@needs_onnx
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("route", list(ROUTES))
def test_onnx_export_writes_standard_nodes_and_runs_as_the_stock_model(route, inplace, dynamo, dtype):
    if route == "enable" and dtype == torch.float16 and not dynamo:
        pytest.skip("the stock model's own export: TorchScript's exporter writes a float16 Celu, which ONNX refuses")
    ours, stock = models(route, inplace, dtype)
    x = torch.randn(8, 16, device=DEVICE, dtype=dtype)
    with exporting(route):
        found, domains, got = onnx_run(ours, x, dynamo)
    assert domains <= {""}, domains  # the standard domain only
    # In place or not, the nodes of the stock model's out-of-place export (Elu, Selu, Celu); under
    # enable(), the stock model's export itself.
    stock_nodes = nodes(onnx_export(models(route, inplace and route == "enable", dtype)[1], x, dynamo))
    shown = ONNX_OPS | {"Gemm"}
    if dtype == torch.float16 and not dynamo:
        # TorchScript's stock export writes a float16 Celu, which ONNX defines for float32 only (so
        # onnxruntime refuses the model): fastelu writes CELU's math in other nodes there.
        shown -= {"Celu"}
        expected = stock(x.clone()).cpu()
    else:
        expected = onnx_run(stock, x, dynamo)[2]
    assert [n for n in found if n in shown] == [n for n in stock_nodes if n in shown]
    tol = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3)}[dtype]
    torch.testing.assert_close(got, expected, **tol)
    torch.testing.assert_close(got, ours(x.clone()).cpu(), **tol)


@needs_onnx
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("coefs", [(0.7, 1.0, 2.0), (0.7, 2.0, -0.5), (-0.5, 1.5, 1.0), (0.0, 1.0, 1.0)])
def test_onnx_export_of_general_coefficients_is_exact(coefs, dynamo):
    class General(nn.Module):
        def forward(self, x):
            return torch.ops.fastelu.elu(x, *coefs)

    x = torch.randn(64, device=DEVICE) * 4
    _, domains, got = onnx_run(General(), x, dynamo)
    assert domains <= {""}
    torch.testing.assert_close(got.double(), elu_ref(x.cpu(), *coefs), rtol=1e-6, atol=1e-6)


def test_importing_elu_op_does_not_import_torch_onnx():
    code = "import sys, elu_op; assert 'torch.onnx' not in sys.modules; import torch.onnx; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
