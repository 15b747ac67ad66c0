"""Non-dense tensors (slices, chunks, broadcasts, permuted slices) in one pass, with no copy: the
view's own strides go to the kernel (csrc/launch.cpp's collapse). Values, gradients and output
strides against PyTorch's elu; every element of a view written, and nothing beside it."""
import math

import pytest
import torch
import torch.nn.functional as F

import elu_op
from elu_op import launch
from elu_op.build import C as _C

from conftest import RTOL, assert_close_rel, elu_ref, randn

# Views as users hand them, each of a fresh base: name -> (base shape, view of the base).
VIEWS = {
    "every_other_column": ((48, 64), lambda b: b[:, ::2]),
    "leading_columns": ((48, 64), lambda b: b[:, :40]),
    "chunk_first": ((48, 64), lambda b: b.chunk(2, -1)[0]),
    "chunk_second": ((48, 64), lambda b: b.chunk(2, -1)[1]),
    "broadcast": ((1, 6, 8, 8), lambda b: b.expand(5, -1, -1, -1)),
    "broadcast_inner": ((7, 1), lambda b: b.expand(7, 33)),
    "permuted_slice": ((16, 8, 12), lambda b: b.permute(2, 0, 1)[::2]),
    "size_one_odd_strides": ((3, 40), lambda b: b.as_strided((1, 3, 1, 13), (999, 40, 77, 3))),
    "one_dim_stride": ((300,), lambda b: b[::3]),
    "channels_last_slice": ((4, 6, 10, 8), lambda b: b.permute(0, 3, 1, 2)[:, 1:7, :, ::2]),
    "five_dims": ((4, 5, 6, 7, 8), lambda b: b[::2, :, ::2, :, ::3]),
    "six_dims": ((3, 4, 5, 6, 7, 9), lambda b: b[:, ::2, :, ::2, :, ::2]),
    "eight_dims": ((3,) * 8, lambda b: b[(slice(0, 2),) * 8]),
    "twelve_dims": ((3,) * 12, lambda b: b[(slice(0, 2),) * 12]),
    "zero_size": ((6, 8), lambda b: b[:, 2:2]),
    "zero_size_strided": ((6, 8), lambda b: b[::2, :0]),
    "zero_d": ((5,), lambda b: b[3]),
    "single_element_view": ((5, 5), lambda b: b[2:3, 4:5]),
}
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def strides(t):
    """The strides that say something: none for an empty tensor; size-1 dimensions' included, which
    aten lays out as TensorIterator does (tests/test_edges.py)."""
    return () if t.numel() == 0 else t.stride()


def view(name, dtype, device, requires_grad=False):
    shape, make = VIEWS[name]
    base = randn(shape, dtype, device)
    if requires_grad:
        base.requires_grad_()
    return make(base)


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_values_and_strides(device, name, dtype):
    x = view(name, dtype, device)
    for alpha, scale, input_scale in ((1.0, 1.0, 1.0), (0.7, 1.05, 2.0)):
        got = torch.ops.fastelu.elu(x, alpha, scale, input_scale)
        assert_close_rel(got, elu_ref(x, alpha, scale, input_scale), dtype)
        assert strides(got) == strides(torch.ops.aten.elu(x, alpha, scale, input_scale))
    # the Python API and the aten switch reach the same launch
    assert_close_rel(elu_op.elu(x, 0.5), elu_ref(x, 0.5), dtype)
    if x.is_cuda:
        with elu_op.enabled():
            assert_close_rel(F.selu(x), elu_ref(x, elu_op.functional.SELU_ALPHA, elu_op.functional.SELU_SCALE), dtype)


def _grad_ref(g, s, alpha, is_result):
    """float64 reference of elu_backward (s: the input, or with is_result the result)."""
    g, s = g.double(), s.double()
    if is_result:
        return torch.where(s <= 0, g * (s + alpha), g)
    return torch.where(s <= 0, g * alpha * torch.exp(s), g)


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad_layout", ["dense", "same_view", "transposed"])
def test_backward_from_a_view(device, name, dtype, grad_layout):
    # grad_output and the saved tensor each in their own layout
    s = view(name, dtype, device)
    if grad_layout == "dense":
        g = randn(s.shape, dtype, device)
    elif grad_layout == "same_view":
        g = view(name, dtype, device)
    else:
        g = randn(tuple(reversed(s.shape)), dtype, device).permute(tuple(reversed(range(s.dim()))))
    for is_result in (False, True):
        saved = F.elu(s.double(), 0.75).to(dtype) if is_result else s
        got = torch.ops.fastelu.elu_backward(g, 0.75, 1.0, 1.0, is_result, saved)
        assert_close_rel(got, _grad_ref(g, saved, 0.75, is_result), dtype, rtol=2 * RTOL[dtype])
        assert strides(got) == strides(torch.ops.aten.elu_backward(g, 0.75, 1.0, 1.0, is_result, saved))


@pytest.mark.parametrize("name", ["every_other_column", "chunk_second", "broadcast", "permuted_slice", "six_dims"])
def test_first_and_second_gradients_match_pytorch(device, name):
    torch.manual_seed(0)
    shape, make = VIEWS[name]
    base = randn(shape, torch.float64, device).requires_grad_()
    ours, theirs = make(base), make(base)
    y_ours, y_theirs = elu_op.elu(ours, 0.6), F.elu(theirs, 0.6)
    w = torch.randn_like(y_ours)
    (g_ours,) = torch.autograd.grad(y_ours, base, w, create_graph=True)
    (g_theirs,) = torch.autograd.grad(y_theirs, base, w, create_graph=True)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-12, atol=1e-15)
    v = torch.randn_like(g_ours)
    (gg_ours,) = torch.autograd.grad(g_ours, base, v)
    (gg_theirs,) = torch.autograd.grad(g_theirs, base, v)
    torch.testing.assert_close(gg_ours, gg_theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", [n for n in VIEWS if n not in ("broadcast", "broadcast_inner")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("backward", [False, True])
def test_every_element_of_a_view_written_and_nothing_beside_it(device, name, dtype, backward):
    # The launch writes into a view of a poisoned base: every element of the view changes, every
    # other element of the base stays poisoned. Small blocks, so that tiles end inside the view.
    shape, make = VIEWS[name]
    x = view(name, dtype, device)
    g = randn(x.shape, dtype, device) if backward else None
    base = torch.full(shape, math.nan, dtype=dtype, device=device)
    out = make(base)
    for block, warps in ((64, 2), (256, 4)):
        base.fill_(math.nan)
        _C.launch(out, x, g, 1.0, 1.0, 1.0, False, block, warps)
        ref = _grad_ref(g, x, 1.0, False) if backward else elu_ref(x)
        assert_close_rel(out, ref, dtype, rtol=2 * RTOL[dtype])
        mask = torch.zeros(shape, dtype=torch.bool, device=device)
        make(mask).fill_(True)
        assert base[~mask].isnan().all(), (block, "a write outside the view")


@pytest.mark.parametrize("name", [n for n in VIEWS if n not in ("broadcast", "broadcast_inner")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_in_place_on_a_view_writes_it_alone(device, name, dtype):
    shape, make = VIEWS[name]
    base = randn(shape, dtype, device)
    before = base.clone()
    x = make(base)
    assert elu_op.elu(x, 0.9, inplace=True) is x
    assert_close_rel(make(base), elu_ref(make(before), 0.9), dtype)
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    make(mask).fill_(True)
    assert torch.equal(base[~mask], before[~mask])


@pytest.mark.parametrize("name", ["broadcast", "broadcast_inner"])
def test_in_place_on_overlapping_memory_is_refused(device, name):
    x = view(name, torch.float32, device)
    before = x.clone()
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        elu_op.elu(x, inplace=True)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.ops.fastelu.elu_(x)
    assert torch.equal(x, before)


def test_offsets_past_int32_in_a_small_view(device):
    # 6 elements whose offsets reach past 2**31: 64-bit offsets, whatever the element count.
    # torch.empty does not touch the pages it is not asked to.
    base = torch.empty(2**31 + 8, dtype=torch.float16, device=device)
    x = base.as_strided((2, 3), (2**31, 2))
    x.copy_(torch.tensor([[-1.0, 0.5, -3.0], [2.0, -0.25, 7.0]], dtype=torch.float16))
    assert_close_rel(elu_op.elu(x), elu_ref(x), torch.float16)
    elu_op.elu(x, inplace=True)
    assert_close_rel(x, elu_ref(torch.tensor([[-1.0, 0.5, -3.0], [2.0, -0.25, 7.0]])), torch.float16)


# ---- the transposing tile: a tensor read across its rows is read along another dimension -------

# Saved views whose gradient (contiguous, as a matmul's backward hands it) is laid out as their
# transpose: name -> (base shape, view of the base). Sizes not multiples of the 64 x 64 tile.
TRANSPOSED = {
    "t": ((300, 37), lambda b: b.t()),
    "t_full_tiles": ((192, 128), lambda b: b.t()),
    "permuted_step_two": ((8, 3, 40), lambda b: b.permute(2, 0, 1)[::2]),
    "permuted_four_dims": ((5, 6, 7, 9), lambda b: b.permute(3, 1, 2, 0)),
    "five_dims": ((3, 4, 5, 6, 7), lambda b: b.permute(4, 1, 2, 3, 0)),
    # the tile's rows wrap (three or four dimensions) with x's row stride 1 and the rest aligned: in vectors
    "channels_last": ((2, 5, 6, 16), lambda b: b.permute(0, 3, 1, 2)),
    "four_dims_aligned": ((7, 5, 3, 8), lambda b: b.permute(1, 3, 2, 0)),
}
# the ones whose x (float32) steps by 1 along the rows, with its other strides multiples of 4
TRANSPOSED_IN_VECTORS = {"t_full_tiles", "channels_last", "four_dims_aligned"}


def _transposed(name, dtype, device):
    shape, make = TRANSPOSED[name]
    return make(randn(shape, dtype, device))


@pytest.mark.parametrize("name", TRANSPOSED)
def test_transposed_gradient_takes_the_transposing_tile(name):
    s = _transposed(name, torch.float32, "cpu")
    g = torch.randn(s.shape)
    out = torch.empty_like(g)
    tile = _C.layout(out, s, g, 1024)
    # x read along the rows (in vectors where it can be); out and g along the columns
    assert tile["trans"] == 2 and tile["unit"] == (7 if name in TRANSPOSED_IN_VECTORS else 5)
    assert tile["rows"] * tile["cols"] >= 4096 and tile["cols"] <= 64
    # the same view as the gradient, or a gradient like the saved view, keeps the plain tile
    assert _C.layout(out, g, g, 1024) is None
    assert _C.layout(torch.empty_like(s), s, torch.randn_like(s), 1024) is None or (
        _C.layout(torch.empty_like(s), s, torch.randn_like(s), 1024)["trans"] == 0)


def test_transposing_tile_only_where_rows_share_sectors():
    # x's smallest stride must put neighbours in one 32-byte sector (16 bytes or less apart)
    g = torch.randn(64, 10)
    for dtype, steps in ((torch.float32, ((1, 2), (2, 2), (4, 2), (5, 0))), (torch.float64, ((2, 2), (3, 0)))):
        for step, trans in steps:
            x = torch.randn(10, 64 * step, dtype=dtype)[:, ::step].t()  # (64, 10), strides (step, 64 * step)
            assert _C.layout(torch.empty_like(g, dtype=dtype), x, g.to(dtype), 1024)["trans"] == trans, (dtype, step)
    # a broadcast gradient (stride 0 along the columns) is read in place: no tile transposes for it
    x = torch.randn(64, 10)
    assert _C.layout(torch.empty(64, 10), x, torch.randn(64, 1).expand(64, 10), 1024)["trans"] == 0


def test_transposed_tensor_in_vectors_only_where_they_stay_aligned():
    # x read along the rows takes 16-byte vectors (unit bit 2) where its row stride is 1 and its
    # other strides, and the rows where they wrap, are multiples of a vector
    for dtype, vector in ((torch.float32, 4), (torch.bfloat16, 8), (torch.float16, 8), (torch.float64, 2)):
        for m in (3 * vector, 3 * vector + 1):
            for x in (torch.randn(10, m, dtype=dtype).t(),  # (m, 10), strides (1, m)
                      torch.randn(2, 5, 6, m, dtype=dtype).permute(0, 3, 1, 2)):  # channels_last, m channels
                tile = _C.layout(torch.empty(x.shape, dtype=dtype), x, torch.randn(x.shape, dtype=dtype), 1024)
                assert tile["trans"] == 2 and tile["unit"] == (7 if m % vector == 0 else 5), (dtype, m, x.shape)
    # a row stride of 2 (a slice) never
    x = torch.randn(10, 64)[:, ::2].t()
    assert _C.layout(torch.empty(x.shape), x, torch.randn(x.shape), 1024)["unit"] == 5


@pytest.mark.parametrize("name", TRANSPOSED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_gradient_values_and_strides(device, name, dtype):
    s = _transposed(name, dtype, device)
    g = randn(s.shape, dtype, device)
    for is_result in (False, True):
        saved = F.elu(s.double(), 0.75).to(dtype) if is_result else s
        got = torch.ops.fastelu.elu_backward(g, 0.75, 1.0, 1.0, is_result, saved)
        assert_close_rel(got, _grad_ref(g, saved, 0.75, is_result), dtype, rtol=2 * RTOL[dtype])
        assert got.stride() == torch.ops.aten.elu_backward(g, 0.75, 1.0, 1.0, is_result, saved).stride()
    # and the gradient through autograd, where the forward's input is the transposed view
    base = s.detach().double().requires_grad_()
    w = torch.randn(s.shape, dtype=torch.float64, device=device)  # contiguous: not like the result
    (ours,) = torch.autograd.grad(elu_op.elu(base, 0.75), base, w)
    (theirs,) = torch.autograd.grad(F.elu(base, 0.75), base, w)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", TRANSPOSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("which", ["out", "x", "g"])
def test_transposing_tile_writes_every_element_and_nothing_beside_it(device, name, dtype, which):
    # One of out, x and g is the transposed view, the other two are contiguous; out is a view
    # of a poisoned base, so that a write outside it, or an element left unwritten, shows.
    shape, make = TRANSPOSED[name]
    view_shape = make(torch.empty(shape)).shape
    base = torch.full(shape, math.nan, dtype=dtype, device=device)
    out = make(base) if which == "out" else torch.full(view_shape, math.nan, dtype=dtype, device=device)
    x = _transposed(name, dtype, device) if which == "x" else randn(view_shape, dtype, device)
    g = _transposed(name, dtype, device) if which == "g" else randn(view_shape, dtype, device)
    if len(view_shape) <= 4:  # the tile's columns follow out: with out transposed, x and g are
        assert _C.layout(out, x, g, 1024)["trans"] == {"out": 6, "x": 2, "g": 4}[which]
    for backward in (False, True):
        base.fill_(math.nan)
        _C.launch(out, x, g if backward else None, 1.0, 1.0, 1.0, False, 0, 4)
        ref = _grad_ref(g, x, 1.0, False) if backward else elu_ref(x)
        assert_close_rel(out, ref, dtype, rtol=2 * RTOL[dtype])
        if which == "out":
            mask = torch.zeros(shape, dtype=torch.bool, device=device)
            make(mask).fill_(True)
            assert base[~mask].isnan().all(), "a write outside the view"


def _launches(fn, device):
    """How many kernels fn launches: Triton's (interpreted, on the CPU) and aten's, or on a GPU any."""
    if device.type == "cuda":
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        return sum(e.device_type == torch.autograd.DeviceType.CUDA for e in prof.events())
    calls = []
    run = launch.run
    launch.run = lambda *args, **kwargs: calls.append(1) or run(*args, **kwargs)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn()
    finally:
        launch.run = run
    aten = sum(e.name in ("aten::elu", "aten::elu_backward") for e in prof.events())
    return len(calls) + aten


@pytest.mark.parametrize("name", ["five_dims", "six_dims", "eight_dims", "twelve_dims"])
def test_a_view_of_many_dimensions_is_one_launch(device, name):
    # More dimensions than the kernel walks, no two of which merge: aten's kernel takes the view in
    # one launch, never one launch per outer index.
    x = view(name, torch.float32, device)
    g = randn(x.shape, torch.float32, device)
    y = view(name, torch.float32, device)
    for fn in (lambda: torch.ops.fastelu.elu(x), lambda: torch.ops.fastelu.elu_(y),
               lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)):
        assert _launches(fn, device) == 1
