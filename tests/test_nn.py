"""Modules, patch/unpatch and the aten switch."""
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import needs_cuda, randn

import elu_op


class _Net(torch.nn.Sequential):
    def forward(self, x):
        x = self[1](self[0](x))
        for m in self[2]:
            x = m(x)
        return self[4](self[3]["c"](x))


def _model():
    shared = torch.nn.ELU(0.5)
    return _Net(torch.nn.Linear(4, 8), shared, torch.nn.ModuleList([torch.nn.SELU(), shared]),
                torch.nn.ModuleDict({"c": torch.nn.CELU(0.3, inplace=True)}), torch.nn.ReLU())


def test_modules_are_drop_in(device):
    x = randn((5, 9), torch.float32, device)
    for fast, ref in [(elu_op.FastELU(0.4), torch.nn.ELU(0.4)), (elu_op.FastSELU(), torch.nn.SELU()),
                      (elu_op.FastCELU(0.7), torch.nn.CELU(0.7)), (elu_op.FastELU(inplace=True), torch.nn.ELU(inplace=True))]:
        assert repr(fast).replace("Fast", "") == repr(ref)
        assert list(fast.parameters()) == [] and fast.state_dict() == ref.state_dict()
        torch.testing.assert_close(fast(x.clone()), ref(x.clone()), rtol=4e-7, atol=1e-7)
        assert type(pickle.loads(pickle.dumps(fast))) is type(fast)


def test_patch_and_unpatch():
    model = _model()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3, 4)
    h = model[0](x)
    want = [torch.nn.functional.elu(h, 0.5)]
    assert elu_op.patch(model) == 3  # the shared ELU counts once
    kinds = [type(m) for m in model.modules()]
    assert elu_op.FastELU in kinds and elu_op.FastSELU in kinds and elu_op.FastCELU in kinds
    assert model[1] is model[2][1] and model[1].alpha == 0.5 and model[3]["c"].inplace
    model.load_state_dict(sd)
    torch.testing.assert_close(model[1](h), want[0])
    assert elu_op.patch(model) == 0  # patching twice changes nothing
    assert elu_op.unpatch(model) == 3
    assert type(model[1]) is torch.nn.ELU and type(model[2][0]) is torch.nn.SELU
    single = torch.nn.ELU()
    assert elu_op.patch(single) == 1 and type(single) is elu_op.FastELU


def test_patched_model_compiles_fullgraph(device):
    model = _model().to(device)
    elu_op.patch(model)
    x = randn((6, 4), torch.float32, device)
    want = model(x.clone())
    got = torch.compile(model, fullgraph=True)(x.clone())
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_enable_is_reversible_and_nests():
    assert not elu_op.is_enabled()
    with elu_op.enabled():
        assert elu_op.is_enabled()
        with elu_op.enabled():
            assert elu_op.is_enabled()
        assert elu_op.is_enabled()
        elu_op.enable()  # twice is fine
    assert not elu_op.is_enabled()
    elu_op.disable()
    elu_op.disable()
    x = torch.randn(100)
    torch.testing.assert_close(F.elu(x), torch.where(x > 0, x, torch.expm1(x)))


def _fastelu_kernels(fn):
    """How many of the CUDA kernels that fn runs are fastelu's (Triton's elu_kernel)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(e.name == "elu_kernel" for e in prof.events())


@pytest.mark.skipif(torch.cuda.is_available(), reason="eager calls on CUDA tensors are routed")
def test_enable_says_what_it_routes_without_cuda():
    with pytest.warns(UserWarning, match="eager F.elu on CPU tensors stays PyTorch's"):
        with elu_op.enabled():
            x = torch.randn(100)
            assert torch.equal(F.elu(x), torch.ops.aten.elu(x))


@needs_cuda
def test_enable_routes_aten_on_cuda():
    x = torch.randn(1000, device="cuda", requires_grad=True)
    assert _fastelu_kernels(lambda: F.elu(x).sum().backward()) == 0
    with elu_op.enabled():
        def run():
            y = F.selu(x)
            y.sum().backward()
            return y, F.celu(x.detach().clone(), 0.5, inplace=True)
        assert _fastelu_kernels(run) == 3  # forward, backward, in place
        y, z = run()
    torch.testing.assert_close(y, torch.nn.functional.selu(x))
    torch.testing.assert_close(z, torch.nn.functional.celu(x.detach(), 0.5))
    assert _fastelu_kernels(lambda: F.elu(x)) == 0


def test_compile_paths():
    # Under torch.compile the Python API emits fastelu's ops, which Inductor lowers (test_lowering.py).
    graphs = []

    def record(gm, inputs):
        graphs.append({str(n.target) for n in gm.graph.nodes if n.op == "call_function"})
        return gm

    torch._dynamo.reset()
    x = torch.randn(64)
    torch.compile(lambda t: elu_op.selu(t * 0.5) + 1, backend=record, fullgraph=True)(x)
    torch.compile(lambda t: torch.ops.fastelu.elu(t * 0.5) + 1, backend=record, fullgraph=True)(x)
    for graph in graphs:
        assert any("fastelu.elu" in t for t in graph) and not any("aten.elu" in t for t in graph)


class _Cat(torch.nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, x):
        return torch.cat([self.act(x), elu_op.elu(x), elu_op.celu(x, 0.5)])


def test_compiled_calls_check_no_aliasing_guards():
    # A compiled graph checks its guards on every call. Where Dynamo reaches one object through two
    # names (a module as functional and as elu_op.functional, torch from the user's code and from
    # fastelu's), it adds a guard that the two are the same, in Python: microseconds a call, which a
    # stock nn.ELU does not cost.
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list
    for act in (elu_op.FastELU(), elu_op.FastSELU(), elu_op.FastCELU(0.3)):
        torch._dynamo.reset()
        torch.compile(_Cat(act), backend="eager", fullgraph=True)(torch.randn(8))
        guards = str(_debug_get_cache_entry_list(_Cat.forward.__code__)[0].guard_manager).splitlines()
        assert any("ID_MATCH" in line for line in guards)  # the listing is the guards'
        assert not [line for line in guards if "LAMBDA_GUARD" in line and " is G[" in line], guards


def test_patched_model_dynamic_batch_no_recompile(device):
    torch._dynamo.reset()
    counts = torch._dynamo.utils.counters
    counts.clear()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ELU(), torch.nn.Linear(8, 2), torch.nn.SELU()).to(device)
    elu_op.patch(model)
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for batch in (3, 5, 17):
        x = torch.randn(batch, 8, device=device)
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-6)
    assert counts["stats"]["unique_graphs"] == 1


@needs_cuda
def test_reduce_overhead_cuda_graphs():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ELU(inplace=True), torch.nn.Linear(32, 32),
                                torch.nn.CELU(0.5), torch.nn.Linear(32, 4)).cuda()
    elu_op.patch(model)
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    for _ in range(4):  # warm-up runs, then graph replays
        x = torch.randn(8, 16, device="cuda")
        torch.testing.assert_close(compiled(x).clone(), model(x), rtol=1e-5, atol=1e-6)


def test_patched_model_scripts_and_traces(device):
    model = _model().to(device)
    x = randn((6, 4), torch.float32, device)
    want = model(x.clone())
    elu_op.patch(model)
    scripted = torch.jit.script(model)
    assert any(n.kind().startswith("fastelu::elu") for n in scripted.inlined_graph.nodes())
    torch.testing.assert_close(scripted(x.clone()), want, rtol=1e-6, atol=1e-6)
    traced = torch.jit.trace(model, (x.clone(),), check_trace=False)
    torch.testing.assert_close(traced(x.clone()), want, rtol=1e-6, atol=1e-6)
    assert any(n.kind().startswith("fastelu::elu") for n in traced.inlined_graph.nodes())


class _Functions(torch.nn.Module):
    def forward(self, x):
        y = elu_op.elu(x, 0.5) + elu_op.selu(x) + elu_op.celu(x, 0.3) + elu_op.elu(x * 1, 0.2, True)
        return y + elu_op.elu_(x * 1, 0.7) + elu_op.selu_(x * 1) + elu_op.celu_(x * 1, 2.0)


def test_functions_script_as_torch_nn_functional_does(device):
    x = randn((6, 4), torch.float32, device)
    want = _Functions()(x)
    scripted = torch.jit.script(_Functions())

    def kinds(block):  # the nodes, and those in their blocks (the branches of an if)
        for node in block.nodes():
            yield node.kind()
            for inner in node.blocks():
                yield from kinds(inner)
    assert {"fastelu::elu", "fastelu::elu_"} <= set(kinds(scripted.inlined_graph))
    # (aten's celu stands in the branch for alpha 0 only, which raises PyTorch's error)
    assert not any(k.startswith("aten::elu") for k in kinds(scripted.inlined_graph))
    torch.testing.assert_close(scripted(x), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match="alpha cannot be 0 for CELU"):
        torch.jit.script(_celu_alpha_zero)(x)


def _celu_alpha_zero(x: torch.Tensor) -> torch.Tensor:
    return elu_op.celu(x, 0.0)


# AOTInductor in a fresh process: a crash while loading its package must not take the test run down.
_AOTI = """
import sys, torch, elu_op
program = torch.export.load(sys.argv[1])
x, want = torch.load(sys.argv[2])
package = torch._inductor.aoti_compile_and_package(program, package_path=sys.argv[3])
torch.testing.assert_close(torch._inductor.aoti_load_package(package)(x), want, rtol=1e-5, atol=1e-6)
"""


def _aoti(program, x, want, path):
    torch.export.save(program, path / "program.pt2")
    torch.save((x, want), path / "io.pt")
    return subprocess.run([sys.executable, "-c", _AOTI, str(path / "program.pt2"), str(path / "io.pt"),
                           str(path / "aoti.pt2")], capture_output=True, text=True, timeout=600)


def test_patched_model_exports_and_compiles_ahead_of_time(device, tmp_path):
    # torch.export keeps fastelu's ops in the exported program, strict or not; the program saves,
    # loads, and compiles ahead of time with AOTInductor (through the same lowerings).
    model = _model().to(device)
    x = randn((6, 4), torch.float32, device)
    want = model(x.clone())
    elu_op.patch(model)
    for strict in (False, True):
        program = torch.export.export(model, (x.clone(),), strict=strict)
        assert any("fastelu.elu" in str(n.target) for n in program.graph.nodes)
        torch.testing.assert_close(program.module()(x.clone()), want, rtol=1e-6, atol=1e-6)
    torch.export.save(program, tmp_path / "model.pt2")
    torch.testing.assert_close(torch.export.load(tmp_path / "model.pt2").module()(x.clone()), want,
                               rtol=1e-6, atol=1e-6)
    run = _aoti(program, x, want, tmp_path)
    if run.returncode < 0:  # killed by a signal: is AOTInductor broken here for a model without fastelu too?
        (tmp_path / "stock").mkdir()
        elu_op.unpatch(model)
        control = _aoti(torch.export.export(model, (x.clone(),)), x, want, tmp_path / "stock")
        if control.returncode < 0:
            pytest.skip(f"AOTInductor's package loader crashes here on a stock model too (signal "
                        f"{-control.returncode}, torch {torch.__version__})")
    assert run.returncode == 0, run.stderr[-3000:]