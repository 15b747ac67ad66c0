"""GPU-only checks (skipped without CUDA): run them on the device machine."""
import pytest
import torch
import torch.nn.functional as F
from conftest import needs_cuda

import elu_op
from elu_op import kernel

pytestmark = needs_cuda


def test_no_host_sync_and_no_recompile_for_new_alpha():
    x = torch.randn(10_000, device="cuda")
    elu_op.elu(x, 1.0)
    compiled_before = sum(len(c[0]) for c in kernel.elu_kernel.device_caches.values())
    torch.cuda.set_sync_debug_mode("error")
    try:
        for alpha in (0.1, 0.7, 1.9, 3.3):
            elu_op.elu(x, alpha)
            torch.ops.fastelu.elu_backward(x, alpha, 1.0, 1.0, False, x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    elu_op.elu(x, 5.0)
    compiled_after = sum(len(c[0]) for c in kernel.elu_kernel.device_caches.values())
    assert compiled_after - compiled_before <= 1  # the backward's own compile, nothing per alpha


def test_unaligned_pointer_takes_the_safe_path():
    base = torch.randn(4097, device="cuda")
    x = base[1:]  # 4-byte aligned only
    torch.testing.assert_close(elu_op.elu(x), F.elu(x), rtol=4e-7, atol=1e-7)
    torch.testing.assert_close(elu_op.elu(base[:4096]), F.elu(base[:4096]), rtol=4e-7, atol=1e-7)


def test_poisoned_allocator_every_element_written():
    for n in (1, 1023, 2**20 + 7):
        torch.empty(n * 4, device="cuda").fill_(float("nan"))  # freed: the next allocation reuses it
        x = torch.randn(n, device="cuda")
        assert not elu_op.elu(x).isnan().any()


def test_n_just_under_2_31_then_over():
    # regression: the compiled-kernel cache once keyed only on the 64-bit-offset switch, so a kernel
    # compiled for an i32 n just under 2**31 was reused for an i64 n past it
    small = torch.randn(2**31 - 64, device="cuda", dtype=torch.float16)
    torch.testing.assert_close(elu_op.elu(small)[-4096:], F.elu(small[-4096:]), rtol=2**-10, atol=1e-6)
    del small
    big = torch.empty(2**31 + 64, device="cuda", dtype=torch.float16)
    big[-4096:].normal_()
    torch.testing.assert_close(elu_op.elu(big)[-4096:], F.elu(big[-4096:]), rtol=2**-10, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_more_than_2_31_elements(dtype):
    n = 2**31 + 1024
    free, _ = torch.cuda.mem_get_info()
    if free < 3.2 * n * torch.finfo(dtype).bits / 8:
        pytest.skip("not enough GPU memory")
    x = torch.empty(n, device="cuda", dtype=dtype)
    chunk = 2**28
    for i in range(0, n, chunk):  # random data without a float32 copy of the whole tensor
        x[i:i + chunk].normal_()
    y = elu_op.elu(x)
    for i in range(0, n, chunk):
        torch.testing.assert_close(y[i:i + chunk], F.elu(x[i:i + chunk]), rtol=2**-10, atol=1e-6)
    g = y  # reuse memory: gradient of the result, in place of a separate grad tensor
    gi = torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)
    for i in range(0, n, chunk):
        ref = torch.ops.aten.elu_backward(g[i:i + chunk], 1.0, 1.0, 1.0, False, x[i:i + chunk])
        torch.testing.assert_close(gi[i:i + chunk], ref, rtol=2**-10, atol=1e-6)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_runs_on_the_tensors_own_device():
    x = torch.randn(100_000, device="cuda:1")
    torch.cuda.set_device(0)
    before = torch.cuda.memory_allocated(0)
    torch.testing.assert_close(elu_op.elu(x), F.elu(x))
    assert torch.cuda.memory_allocated(0) == before


def test_threads_and_streams():
    import threading
    errors = []

    def worker(seed):
        try:
            gen = torch.Generator(device="cuda").manual_seed(seed)
            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                for i in range(200):
                    dtype = (torch.float32, torch.bfloat16, torch.float16)[i % 3]
                    x = torch.randn(1000 + 37 * i, device="cuda", generator=gen).to(dtype) * 3
                    y = elu_op.elu(x, 0.9)
                    g = torch.ops.fastelu.elu_backward(x, 0.9, 1.0, 1.0, False, x)
                    torch.testing.assert_close(y, F.elu(x, 0.9), rtol=2**-8, atol=1e-6)
                    torch.testing.assert_close(g, torch.ops.aten.elu_backward(x, 0.9, 1.0, 1.0, False, x),
                                               rtol=2**-8, atol=1e-6)
            stream.synchronize()
        except Exception as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_runs_on_the_current_stream():
    # The kernel must be ordered after work queued on a side stream, not on the default stream.
    side = torch.cuda.Stream()
    x = torch.randn(2**22, device="cuda")
    with torch.cuda.stream(side):
        torch.cuda._sleep(10_000_000)  # keep the stream busy so a wrongly placed kernel would race
        z = x * 2
        y = elu_op.elu(z)
    side.synchronize()
    torch.testing.assert_close(y, F.elu(x * 2))


def test_backward_with_tensors_on_two_devices_is_refused():
    g = torch.randn(8, device="cuda")
    with pytest.raises(ValueError, match="cuda"):
        torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, g.cpu())


def test_after_the_first_call_every_entry_point_stays_in_cpp(monkeypatch):
    x = torch.randn(4096, device="cuda")
    g = torch.randn_like(x)
    calls = [
        lambda: elu_op.elu(x), lambda: elu_op.selu(x), lambda: elu_op.FastCELU(0.5)(x),
        lambda: torch.ops.fastelu.elu(x, 0.7), lambda: elu_op.elu(x.clone(), inplace=True),
        lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x),
        lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, True, F.elu(x)),
    ]
    for call in calls:
        call()  # compiles where needed and registers the kernel with the C++
    python_runs = []
    run = elu_op.launch.run  # Triton's launcher, which the C++ calls for what it does not launch itself
    monkeypatch.setattr(elu_op.launch, "run", lambda *a: python_runs.append(a) or run(*a))
    for call in calls:
        call()
    assert not python_runs
    torch.testing.assert_close(elu_op.elu(x, 0.7), F.elu(x, 0.7), rtol=4e-7, atol=1e-7)
    torch.testing.assert_close(torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, True, F.elu(x)),
                               torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, True, F.elu(x)), rtol=4e-7, atol=1e-7)


def test_unaligned_tensors_take_the_python_path(monkeypatch):
    base = torch.randn(5001, device="cuda")
    elu_op.elu(base[:5000])
    python_runs = []
    run = elu_op.launch.run
    monkeypatch.setattr(elu_op.launch, "run", lambda *a: python_runs.append(a) or run(*a))
    torch.testing.assert_close(elu_op.elu(base[1:]), F.elu(base[1:]), rtol=4e-7, atol=1e-7)
    torch.testing.assert_close(elu_op.elu(base[1:]), F.elu(base[1:]), rtol=4e-7, atol=1e-7)
    assert len(python_runs) == 2  # every time: Triton compiles another kernel for unaligned pointers


def test_first_cuda_call_of_a_new_thread():
    # A fresh thread has no current CUDA context until something makes one: where the C++
    # launch fails for that, Python's path (Triton's launcher) takes over.
    import threading
    x = torch.randn(6000, device="cuda")
    elu_op.elu(x)
    out = []
    thread = threading.Thread(target=lambda: out.extend((elu_op.elu(x), elu_op.elu(x))))
    thread.start()
    thread.join()
    torch.testing.assert_close(out[0], F.elu(x), rtol=4e-7, atol=1e-7)
    torch.testing.assert_close(out[1], F.elu(x), rtol=4e-7, atol=1e-7)


def test_profiler_hooks_see_every_launch():
    from triton import knobs
    x = torch.randn(7000, device="cuda")
    elu_op.elu(x)
    seen = []
    knobs.runtime.launch_enter_hook.add(seen.append)
    try:
        elu_op.elu(x)
    finally:
        knobs.runtime.launch_enter_hook.remove(seen.append)
    assert len(seen) == 1


def test_a_triton_whose_kernels_differ_keeps_triton_launching(monkeypatch):
    # Simulated: compiled kernels whose parameters are not the ones the C++ passes. One warning,
    # then every launch through Triton's launcher, all correct.
    monkeypatch.setattr(elu_op.launch, "parameter_plan", lambda ptx: None)
    monkeypatch.setattr(elu_op.launch, "_warned", set())
    elu_op.configs.forget()
    runs = []
    run = elu_op.launch.run
    monkeypatch.setattr(elu_op.launch, "run", lambda *a: runs.append(a) or run(*a))
    x = torch.randn(3000, device="cuda")
    g = torch.randn_like(x)
    try:
        with pytest.warns(RuntimeWarning, match="Triton's own launcher makes every launch"):
            torch.testing.assert_close(elu_op.elu(x), F.elu(x), rtol=4e-7, atol=1e-7)
        for _ in range(3):
            torch.testing.assert_close(elu_op.selu(x), F.selu(x), rtol=4e-7, atol=1e-7)
            torch.testing.assert_close(torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x),
                                       torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x), rtol=4e-7, atol=1e-7)
        assert len(runs) == 7
    finally:
        monkeypatch.undo()
        elu_op.configs.forget()  # the C++ launches again what it compiles next


def test_captured_in_a_cuda_graph():
    # Eager code captured by hand, as inference servers do: the C++ launch is recorded like
    # any other. Kernels are compiled before capture (Triton cannot compile during it).
    x = torch.randn(5000, device="cuda")
    g = torch.randn_like(x)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        elu_op.elu(x, 0.7)
        torch.ops.fastelu.elu_backward(g, 0.7, 1.0, 1.0, False, x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = elu_op.elu(x, 0.7)
        gi = torch.ops.fastelu.elu_backward(g, 0.7, 1.0, 1.0, False, x)
    for _ in range(2):
        x.copy_(torch.randn_like(x) * 3)
        graph.replay()
        torch.testing.assert_close(y, F.elu(x, 0.7), rtol=4e-7, atol=1e-7)
        torch.testing.assert_close(gi, torch.ops.aten.elu_backward(g, 0.7, 1.0, 1.0, False, x), rtol=4e-7, atol=1e-7)


@pytest.mark.parametrize("view", ["slice", "chunk", "broadcast", "permuted"])
def test_a_view_is_computed_in_one_launch_with_no_copy(view):
    # forward, backward (a sliced saved input, a dense gradient) and in place: one kernel each, and
    # no contiguous / copy_ / clone on the way
    base = torch.randn(64, 256, device="cuda")
    x = {"slice": base[:, ::2], "chunk": base.chunk(2, -1)[1], "broadcast": base[:1].expand(8, -1),
         "permuted": base.view(8, 8, 256).permute(2, 0, 1)[::2]}[view]
    g = torch.randn(x.shape, device="cuda")
    calls = [lambda: elu_op.elu(x), lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)]
    if view != "broadcast":
        calls.append(lambda: elu_op.elu(x, inplace=True))
    for call in calls:
        call()  # compiled first
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                torch.profiler.ProfilerActivity.CUDA]) as prof:
            call()
            torch.cuda.synchronize()
        names = [e.name for e in prof.events()]
        assert not {"aten::contiguous", "aten::copy_", "aten::clone"} & set(names), names
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        assert [e.name for e in kernels] == ["elu_kernel"], [e.name for e in kernels]


def test_the_stream_symbol_torch_2_9_and_2_10_use_gives_the_current_stream():
    # Before torch 2.11 (no c10::Stream::native_handle), the C++ launch (csrc/launch.cpp) calls
    # CUDAStream::stream() from libc10_cuda.so through its mangled name, on a c10::Stream's bytes.
    import ctypes
    import glob
    import os
    lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libc10_cuda.so"))[0])
    stream_of = lib._ZNK3c104cuda10CUDAStream6streamEv
    stream_of.restype, stream_of.argtypes = ctypes.c_void_p, [ctypes.c_void_p]

    class Stream(ctypes.Structure):  # c10::Stream: its Device (type, index), then its id
        _fields_ = [("type", ctypes.c_int8), ("index", ctypes.c_int8), ("id", ctypes.c_int64)]

    for stream in (torch.cuda.current_stream(), torch.cuda.Stream()):
        raw = Stream(stream.device_type, stream.device_index, stream.stream_id)
        assert (stream_of(ctypes.byref(raw)) or 0) == stream.cuda_stream


def test_interpreted_on_cuda_tensors_rounds_as_the_gpu():
    # TRITON_INTERPRET=1 on a GPU machine (debugging some other kernel): Triton interprets fastelu's
    # kernel on CUDA tensors too, which must then round as the GPU does, without warnings.
    import os
    import subprocess
    import sys
    code = (
        "import warnings, torch, elu_op\n"
        "x = torch.randn(4099, device='cuda').mul_(4).bfloat16()\n"
        "x[:3] = torch.tensor([1e-40, -3e-39, float('nan')])\n"
        "ref = torch.where(x.double() > 0, x.double(), torch.expm1(x.double())).bfloat16()\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    for _ in range(2):\n"
        "        torch.testing.assert_close(elu_op.elu(x), ref, rtol=0, atol=0, equal_nan=True)\n"
        "assert not [w for w in seen if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in seen]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "TRITON_INTERPRET": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
