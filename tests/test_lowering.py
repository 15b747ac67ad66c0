"""fastelu inside torch.compile: the Inductor lowerings, read from the code Inductor generates."""
import os
import re
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import randn
from torch._inductor.utils import run_and_get_code

import elu_op
from elu_op import inductor

OPS = torch.ops.fastelu
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def kernels(code):
    """Fused kernels defined in one graph's generated code (CPU: C++, GPU: Triton)."""
    return len(re.findall(r"^(cpp_fused_\w+|triton_\w+) = async_compile", code, re.M))


def extern_fastelu(code):
    return "torch.ops.fastelu" in code.split("def call")[-1]


def compiled_code(fn, *args):
    """fn's result and the code of every graph compiled while running it."""
    torch._dynamo.reset()
    return run_and_get_code(fn, *args)


def specials(dtype, device):
    info = torch.finfo(dtype)
    vals = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), info.tiny, -info.tiny, info.tiny / 8,
            -info.tiny / 8, info.max, -info.max, -1e-30, -1e-7, -0.3, -0.36, -30.0, -90.0, -700.0, 88.7]
    return torch.tensor(vals, dtype=torch.float64).to(dtype).to(device)


def same_bits(a, b):
    a, b = a.cpu(), b.cpu()
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.dtype == b.dtype and torch.equal(a.view(as_int), b.view(as_int))


DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
COEFS = [(1.0, 1.0, 1.0), (elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE, 1.0), (0.5, 1.0, 2.0),
         (1.3, 0.7, -0.4)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_lowering_computes_the_kernels_math(device, dtype):
    # One source for the math: the lowering's code and the Triton kernel agree to the bit.
    x = torch.cat([randn(3000, dtype, device), specials(dtype, device)])
    g = randn(x.shape, dtype, device, scale=1.0)
    for coefs in COEFS:
        # each set of coefficients compiled afresh: a value that changes between calls of one
        # compiled function is symbolic there, and computes aten's math
        torch._dynamo.reset()
        forward = torch.compile(lambda t, a, s, i: OPS.elu(t, a, s, i), fullgraph=True)
        backward = torch.compile(lambda g, t, a, s, i, r: OPS.elu_backward(g, a, s, i, r, t), fullgraph=True)
        assert same_bits(forward(x, *coefs), OPS.elu(x, *coefs)), coefs
        for is_result in (False, True):
            if is_result and (coefs[0] < 0 or coefs[2] < 0):
                continue
            s = OPS.elu(x, *coefs) if is_result else x
            assert same_bits(backward(g, s, *coefs, is_result), OPS.elu_backward(g, *coefs, is_result, s))


ROUTES = {
    "torch.ops.fastelu": lambda t: OPS.elu(t, 1.0, 1.0, 1.0),
    "elu_op.elu": lambda t: elu_op.elu(t, 0.7),
    "elu_op.selu": elu_op.selu,
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chain_is_one_kernel_forward_and_backward(device, route, dtype):
    act = ROUTES[route]
    x = randn(4099, dtype, device).requires_grad_()

    f = torch.compile(lambda t: t + act(0.5 * t + 0.1), fullgraph=True)

    def step(t):
        y = f(t)
        y.sum().backward()
        return y

    y, (fwd, bwd) = compiled_code(step, x)
    assert kernels(fwd) == 1 and kernels(bwd) == 1
    assert not extern_fastelu(fwd) and not extern_fastelu(bwd)
    # The forward saves only its input, as it does for aten's elu: the partitioner recomputes
    # 0.5*t + 0.1 inside the backward kernel.
    assert re.search(r"return \(buf\d+, primals_1, \)", fwd)
    grad = x.grad.clone()
    x.grad = None
    with torch.no_grad():
        want = x + act(0.5 * x + 0.1)
    step_eager = x + act(0.5 * x + 0.1)
    step_eager.sum().backward()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2**-7, atol=2**-6)
    torch.testing.assert_close(y, want, **tol)
    torch.testing.assert_close(grad, x.grad, **tol)


def test_inplace_op_and_patched_model_fuse(device):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ELU(inplace=True), torch.nn.Linear(16, 16),
                                torch.nn.SELU(), torch.nn.Linear(16, 4), torch.nn.CELU(0.5)).to(device)
    elu_op.patch(model)
    x = randn((32, 8), torch.float32, device)
    y, codes = compiled_code(torch.compile(model, fullgraph=True), x)
    assert not any(extern_fastelu(c) for c in codes)
    assert all("0.693145751953125" in c for c in codes)  # fastelu's ln2 split: its math, not Inductor's expm1
    torch.testing.assert_close(y, model(x), rtol=1e-6, atol=1e-6)

    def inplace(t):
        t = t * 2
        OPS.elu_(t, 1.0, 1.0, 1.0)
        return t + 1

    y, (code,) = compiled_code(torch.compile(inplace, fullgraph=True), x)
    assert kernels(code) == 1 and not extern_fastelu(code)
    torch.testing.assert_close(y, F.elu(x * 2) + 1, rtol=1e-6, atol=1e-6)


def test_enable_lowers_aten_elu_and_disable_gives_it_back(device):
    x = randn(4099, torch.float32, device).requires_grad_()

    def step(t):
        y = torch.compile(lambda t: t + F.selu(0.5 * t + 0.1), fullgraph=True)(t)
        y.sum().backward()
        return y

    with elu_op.enabled():
        _, codes = compiled_code(step, x)
    assert len(codes) == 2 and all(kernels(c) == 1 and "0.693145751953125" in c for c in codes)
    assert re.search(r"return \(buf\d+, primals_1, \)", codes[0])  # saves only its input, as stock does
    x.grad = None
    _, codes = compiled_code(step, x)
    assert all(kernels(c) == 1 and "0.693145751953125" not in c for c in codes)


def test_dynamic_shapes_do_not_recompile(device):
    counters = torch._dynamo.utils.counters
    counters.clear()
    f = torch.compile(lambda t: t * 2 + elu_op.elu(t, 0.3) + OPS.elu(t, 1.0, 1.0, 1.0), fullgraph=True, dynamic=True)
    for n in (17, 33, 1000, 4099):
        x = randn(n, torch.float32, device)
        torch.testing.assert_close(f(x), x * 2 + F.elu(x, 0.3) + F.elu(x), rtol=1e-6, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 1


def test_caches_key_on_the_aten_switch(device, tmp_path, monkeypatch):
    # The same graph compiled with and without the switch must not share a cache entry.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    x = randn(4099, torch.float32, device)
    fn = lambda t: t + F.elu(t * 0.5)  # noqa: E731
    with torch._inductor.config.patch(fx_graph_cache=True), torch._functorch.config.patch(enable_autograd_cache=True):
        _, (own,) = compiled_code(torch.compile(fn), x)
        with elu_op.enabled():
            _, (routed,) = compiled_code(torch.compile(fn), x)
        _, (own_again,) = compiled_code(torch.compile(fn), x)
    assert "0.693145751953125" not in own and "0.693145751953125" in routed
    assert "0.693145751953125" not in own_again


_FALLBACK = """
import warnings, torch, torch._functorch.partitioners as P, torch._inductor.lowering
from torch._inductor.utils import run_and_get_code
del P.get_default_op_list  # a torch whose Inductor changed: the lowerings cannot be put in place
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    import elu_op
print("warned", any("lowerings unavailable" in str(m.message) for m in w))
x = torch.randn(1000)
want = x + torch.nn.functional.elu(x * 0.5)
close = lambda y: torch.allclose(y, want, rtol=1e-5, atol=1e-6)  # Inductor's CPU expm1 is exp() - 1
y, (code,) = run_and_get_code(torch.compile(lambda t: t + elu_op.elu(t * 0.5), fullgraph=True), x)
print("aten", "torch.ops.fastelu" not in code, close(y))
torch._dynamo.reset()
y, (code,) = run_and_get_code(torch.compile(lambda t: t + torch.ops.fastelu.elu(t * 0.5), fullgraph=True), x)
print("opaque", "torch.ops.fastelu.elu" in code, close(y))
"""


def test_fallback_when_the_lowerings_cannot_register():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", _FALLBACK], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["warned", "True", "aten", "True", "True", "opaque", "True", "True"], run.stdout


_USER_PASSES = """
import sys, threading, torch
from torch._inductor import config
from torch._inductor.custom_graph_pass import CustomGraphPass
from torch._dynamo.utils import counters
order = sys.argv[1]
ran = set()

class UserPass(CustomGraphPass):
    def __init__(self, name):
        self.name = name
    def __call__(self, graph):
        ran.add(self.name)
    def uuid(self):
        return self.name

def set_passes():
    config.post_grad_custom_post_pass = UserPass("post")
    config.joint_custom_pre_pass = UserPass("joint")

def compile_once(factor=2):
    torch._dynamo.reset()
    counters.clear()
    x = torch.randn(100, requires_grad=True)
    torch.compile(lambda t: elu_op.elu(t * factor).sum())(x).backward()
    return sum(counters["inductor"]["fxgraph_cache_" + k] for k in ("miss", "hit")), counters["inductor"]["fxgraph_cache_miss"]

if order == "before":
    import torch._inductor.lowering  # a library that sets its passes has Inductor loaded
    set_passes()
import elu_op
from elu_op import inductor
if order != "before":
    compile_once(3)  # the lowerings in place, with fastelu's passes
    set_passes()
config.fx_graph_cache = True
torch._functorch.config.enable_autograd_cache = False  # the FX graph cache alone, counted
results = []
def run():
    results.append(compile_once())  # fresh cache: misses
    results.append(compile_once())  # the same: hits
    inductor._cache_key = lambda: "another fastelu"
    results.append(compile_once())  # another fastelu's state: misses
if order == "thread":
    t = threading.Thread(target=run)
    t.start()
    t.join()
else:
    run()
(looked, first), (_, again), (_, other) = results
print(looked > 0 and first == looked, again == 0, other == looked, sorted(ran))
"""


@pytest.mark.parametrize("order", ["before", "after", "thread"])
def test_cache_key_holds_fastelu_whatever_pass_a_user_sets(order, tmp_path):
    # A user's pass (a library's: vLLM, torchao) set before importing elu_op or after, or a compile
    # in another thread (torch >= 2.13 keeps Inductor's settings per thread): fastelu's state stays
    # in the cache key, so that another fastelu misses the cache, and the user's passes still run.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", _USER_PASSES, order], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    same_thread = order != "thread" or torch.__version__ < "2.13"
    ran = "['joint', 'post']" if same_thread else "[]"
    assert run.stdout.strip() == f"True True True {ran}", run.stdout + run.stderr[-3000:]


def test_a_pass_replaced_within_a_compilation_is_said_once(monkeypatch):
    # Outside what runs before the cache keys (a pass set between them and the lowering), fastelu
    # cannot keep its state in the key: it says so once, naming the pass, and wraps it again.
    assert inductor.install()
    monkeypatch.setattr(inductor, "_warned_passes", set())
    config = torch._inductor.config
    with config.patch(post_grad_custom_post_pass=None):
        with pytest.warns(UserWarning, match="post_grad_custom_post_pass was set after"):
            inductor._check_passes()
        assert inductor.keep_passes() == []  # wrapped again
        config.post_grad_custom_post_pass = None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            inductor._check_passes()


_FIRST_COMPILE = """
import sys, torch, elu_op
assert "torch._inductor.lowering" not in sys.modules
torch._dynamo.config.error_on_recompile = True  # the guards on the lowerings' state hold
x = torch.randn(100)
f = torch.compile(lambda t: elu_op.elu(t * 2), fullgraph=True)
print(all(torch.allclose(f(x), torch.nn.functional.elu(x * 2), rtol=1e-6, atol=1e-7) for _ in range(3)))
"""


def test_first_compile_of_a_fresh_process():
    # regression: tracing the first compile ran the lowerings' installation (Inductor is imported
    # only after tracing), which broke the graph there; and its second call must not recompile
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", _FIRST_COMPILE], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr[-2000:]


def test_importing_elu_op_does_not_import_inductor_or_dtensor():
    code = ("import sys, elu_op; print(*(m in sys.modules for m in "
            "('torch._inductor', 'torch._dynamo', 'torch.distributed.tensor')))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.stdout.split() == ["False", "False", "False"], run.stdout + run.stderr
    assert inductor.install()  # in this process Inductor is loaded: the lowerings are in place
