"""What a training step holds: one saved tensor per ELU where the next layer saves its output.

Compiled, every ELU's result is recomputed in the backward from its input (which the gradient
from the input needs anyway) rather than saved beside it, with the gradients unchanged to the bit.
Eager, save="output" keeps the result, as in place does, without writing the input; its gradient
comes from the result, within the bound docs/reference.md's Numerics section gives.
"""
import contextlib
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import randn

import elu_op
from elu_op import inductor

WIDTH, BATCH, BLOCKS = 48, 16, 4
# Compiled, the recompute is fastelu's lowering's: without its kernels the ops are aten's, and a
# compiled graph holds what stock's holds.
needs_kernels = pytest.mark.skipif(elu_op.ops.OFF is not None, reason="fastelu's kernels are off: its ops are aten's")


def mlp(route="patch", save=None):
    """BLOCKS x [Linear -> ELU] by each route to fastelu (or stock's, route=None)."""
    torch.manual_seed(0)

    class Act(nn.Module):
        def forward(self, h):
            if route == "function":
                return elu_op.elu(h, 0.9, save=save)
            if route == "op":
                return torch.ops.fastelu.elu(h, 0.9)
            return F.elu(h, 0.9)

    layers = []
    for _ in range(BLOCKS):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ELU(0.9) if route in ("patch", None, "enable") else Act()]
    model = nn.Sequential(*layers)
    if route == "patch":
        elu_op.patch(model, save=save)
    return model


def saved(fn):
    """The distinct tensors autograd keeps for fn's backward, by storage: {data_ptr: numel}."""
    kept = {}

    def pack(t):
        kept[t.untyped_storage().data_ptr()] = t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, kept


def activations(kept):
    return sorted(n for n in kept.values() if n == BATCH * WIDTH)


ROUTES = ["patch", "function", "op", "enable"]


@needs_kernels
@pytest.mark.parametrize("route", ROUTES)
def test_compiled_training_saves_one_tensor_per_elu(route):
    x = torch.randn(BATCH, WIDTH, requires_grad=True)
    counts = {}
    for name in (None, route):
        torch._dynamo.reset()
        model = mlp(name)
        compiled = torch.compile(model)
        with elu_op.enabled() if name == "enable" else contextlib.nullcontext():
            compiled(x)  # compiles
            out, kept = saved(lambda: compiled(x))
        counts[name] = len(activations(kept))
        out.sum().backward()
    # stock: each block's Linear output and its ELU's output (the last ELU's is not needed), and x
    assert counts[None] == 2 * BLOCKS, counts
    assert counts[route] == BLOCKS + 1, counts  # x and each Linear's output


@needs_kernels
def test_compiled_gradients_do_not_change():
    # With the recompute and without it, the same bits: the recomputed result is the forward's.
    x = torch.randn(BATCH, WIDTH, requires_grad=True)
    grads = []
    keys = []
    try:
        for recompute in (True, False):
            elu_op.set_recompute(recompute)
            keys.append(inductor._cache_key())
            torch._dynamo.reset()
            model = mlp()
            # with the caches on: the setting is part of their keys, so the second graph is not the first's
            out, kept = saved(lambda: torch.compile(model)(x))
            assert len(activations(kept)) == (BLOCKS + 1 if recompute else 2 * BLOCKS)
            grads.append(torch.autograd.grad(out.sum(), [x, *model.parameters()]))
    finally:
        elu_op.set_recompute(True)
    assert keys[0] != keys[1]
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_set_recompute_takes_a_bool():
    with pytest.raises(TypeError, match="True or False, not 1"):
        elu_op.set_recompute(1)
    assert elu_op.set_recompute(True) is True


@needs_kernels
def test_compiled_convnet_holds_no_more_than_stock():
    def convnet(fast):
        torch.manual_seed(0)
        layers = []
        for _ in range(3):
            layers += [nn.BatchNorm2d(8), nn.ELU(), nn.Conv2d(8, 8, 3, padding=1)]
        model = nn.Sequential(*layers)
        if fast:
            elu_op.patch(model)
        return model

    x = torch.randn(4, 8, 8, 8, requires_grad=True)
    held = {}
    for fast in (False, True):
        torch._dynamo.reset()
        compiled = torch.compile(convnet(fast))
        compiled(x)
        _, kept = saved(lambda: compiled(x))
        held[fast] = sum(kept.values())
    assert held[True] <= held[False], held


# ---- eager: save="output" ---------------------------------------------------------------------------

def test_save_output_holds_what_in_place_holds():
    x = torch.randn(BATCH, WIDTH, requires_grad=True)
    counts = {}
    for name, make in (("stock", lambda: mlp(None)), ("fastelu", lambda: mlp("patch")),
                       ("in place", lambda: _inplace(mlp(None))), ("output", lambda: mlp("patch", "output")),
                       ("function", lambda: mlp("function", "output"))):
        model = make()
        h = x * 1
        out, kept = saved(lambda: model(h))
        counts[name] = len(activations(kept))
        out.sum().backward()
    assert counts["stock"] == counts["fastelu"] == 2 * BLOCKS, counts
    assert counts["output"] == counts["function"] == counts["in place"] == BLOCKS + 1, counts


def _inplace(model):
    for m in model:
        if isinstance(m, nn.ELU):
            m.inplace = True
    return model


def test_save_output_leaves_the_input_alone():
    h = torch.randn(100, requires_grad=True) * 1
    before = h.detach().clone()
    y = elu_op.elu(h, save="output")
    y.sum().backward()
    assert torch.equal(h.detach(), before) and h._version == 0


P = {torch.float32: 24, torch.float16: 11, torch.bfloat16: 8, torch.float64: 53}


@pytest.mark.parametrize("dtype", list(P), ids=lambda d: str(d)[6:])
@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
def test_save_output_gradient_within_its_bound(device, dtype, name):
    # |grad - exact| <= 2**(1-p) * (|g * input_scale * alpha * scale| + |exact|): the result's own
    # rounding, which y + alpha*scale keeps as it cancels deep in the negative tail.
    alpha, scale, input_scale = {"elu": (0.7, 1.0, 1.0), "selu": (elu_op.functional.SELU_ALPHA,
                                                                  elu_op.functional.SELU_SCALE, 1.0),
                                 "celu": (2.5, 1.0, 1 / 2.5)}[name]
    fn = {"elu": lambda t: elu_op.elu(t, alpha, save="output"), "selu": lambda t: elu_op.selu(t, save="output"),
          "celu": lambda t: elu_op.celu(t, alpha, save="output")}[name]
    x = torch.cat([torch.linspace(-120, 6, 4001, dtype=torch.float64), torch.randn(4000, dtype=torch.float64) * 4])
    x = x.to(dtype).to(device).requires_grad_()
    g = randn(x.shape, dtype, device, scale=1.0)
    (got,) = torch.autograd.grad(fn(x), x, g)
    xd, gd = x.detach().double(), g.double()
    exact = torch.where(xd > 0, gd * scale, gd * input_scale * alpha * scale * torch.exp(xd * input_scale))
    bound = 2.0 ** (1 - P[dtype]) * ((gd * input_scale * alpha * scale).abs() + exact.abs())
    tiny = torch.finfo(dtype).smallest_normal * torch.finfo(dtype).eps
    assert ((got.double() - exact).abs() <= bound + tiny).all()
    deep = xd < -10  # where the gradient from the result has lost most of its relative accuracy
    assert deep.any()


@pytest.mark.parametrize("coefs", [(-0.5, "elu"), (float("nan"), "elu"), (-1.0, "celu")])
def test_save_output_refuses_what_the_result_cannot_tell(coefs):
    alpha, name = coefs
    x = torch.randn(10, requires_grad=True)
    with pytest.raises(ValueError, match="save='output' takes the gradient from the result"):
        getattr(elu_op, name)(x, alpha, save="output")
    with pytest.raises(ValueError, match="save must be None, 'input' or 'output'"):
        elu_op.elu(x, save="result")
    with pytest.raises(ValueError, match="save='input' cannot be had with inplace=True"):
        elu_op.elu(x.detach().clone(), inplace=True, save="input")
    with pytest.raises(ValueError, match="save must be"):
        elu_op.patch(nn.ELU(), save="outputs")


def test_save_output_composes_with_autograds_transforms():
    x = randn(30, torch.float64, "cpu").requires_grad_()
    ours, theirs = (lambda t: elu_op.celu(t, 0.6, save="output")), (lambda t: torch.ops.aten.elu(t, 0.6, 1.0, 1 / 0.6))
    assert torch.autograd.gradcheck(ours, (x,), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(ours, (x,))
    xd = x.detach()
    for transform in (lambda f: torch.func.grad(lambda t: f(t).sum()), torch.func.jacrev, torch.func.jacfwd,
                      lambda f: torch.func.vmap(torch.func.grad(lambda t: f(t).sum()))):
        torch.testing.assert_close(transform(ours)(xd.view(5, 6) if "vmap" in str(transform) else xd),
                                   transform(theirs)(xd.view(5, 6) if "vmap" in str(transform) else xd))


@needs_kernels
def test_save_output_compiles():
    torch._dynamo.reset()
    model = mlp("patch", "output")
    x = torch.randn(BATCH, WIDTH, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True)
    compiled(x)
    out, kept = saved(lambda: compiled(x))
    assert len(activations(kept)) <= BLOCKS + 1
    (g,) = torch.autograd.grad(out.sum(), x)
    (want,) = torch.autograd.grad(mlp(None)(x).sum(), x)
    torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-6)


def test_modules_take_save():
    m = elu_op.FastELU(0.5, save="output")
    assert repr(m) == "FastELU(alpha=0.5, save='output')" and m.state_dict() == {}
    assert repr(elu_op.FastSELU()) == "FastSELU()"
    model = nn.Sequential(nn.Linear(3, 3), nn.CELU(0.5))
    assert elu_op.patch(model, save="output") == 1 and model[1].save == "output"
    assert elu_op.unpatch(model) == 1 and not hasattr(model[1], "save") and type(model[1]) is nn.CELU
    assert math.isclose(model[1].alpha, 0.5)
