"""fastelu on two GPUs, in one run: python benchmarks/multi_gpu/run_two_gpus.py [results.md]

1. every op, the modules, a compiled patched model (fastelu's math fused by the Inductor
   lowerings) and a CUDA graph on cuda:1 while cuda:0 is current, against PyTorch there, with
   nothing allocated on cuda:0; then two threads, one per GPU, each making 10,000 mixed calls on
   its own device, checked against PyTorch;
2. a DistributedDataParallel training step of a patched ELU model on two processes over NCCL,
   against a single-GPU step on the same global batch;
3. the enable() aten switch inside both ranks, each on its own device.
Prints a report (and writes it to the given file); exits 1 on any failure.
"""
import os
import sys

# NVLink multicast stays off (it can take shared GPUs out of service); set before NCCL loads.
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
os.environ.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")
os.environ.setdefault("NVSHMEM_DISABLE_NVLS", "1")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import elu_op  # noqa: E402

REPORT = []


def report(name, ok, detail=""):
    REPORT.append(f"| {name} | {'pass' if ok else 'FAIL'} | {detail} |")
    print(REPORT[-1], flush=True)
    return ok


def close(a, b, tol=1e-6):
    return torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)


def other_device():
    torch.cuda.set_device(0)
    torch.cuda.synchronize(0)
    before = torch.cuda.memory_allocated(0)
    ok = True
    dev = torch.device("cuda:1")
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        x = torch.randn(100_003, device=dev, dtype=dtype) * 3
        tol = 1e-2 if dtype == torch.bfloat16 else 1e-6
        g = torch.randn_like(x)
        y = x.clone()
        elu_op.elu(y, 0.7, inplace=True)
        checks = {
            "elu": close(elu_op.elu(x, 0.7), F.elu(x, 0.7), tol),
            "selu": close(elu_op.selu(x), F.selu(x), tol),
            "elu_ (in place)": close(y, F.elu(x, 0.7), tol),
            "elu_backward": close(torch.ops.fastelu.elu_backward(g, 0.7, 1.0, 1.0, False, x),
                                  torch.ops.aten.elu_backward(g, 0.7, 1.0, 1.0, False, x), tol),
        }
        for name, good in checks.items():
            ok &= report(f"{name} {str(dtype)[6:]} on cuda:1, cuda:0 current", good)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ELU(), torch.nn.Linear(64, 64),
                                torch.nn.SELU(), torch.nn.Linear(64, 4)).to(dev)
    xb = torch.randn(16, 32, device=dev)
    want = model(xb)
    elu_op.patch(model)
    ok &= report("patched model on cuda:1", close(model(xb), want, 1e-5))
    xg = xb.clone().requires_grad_()
    model(xg).sum().backward()
    ok &= report("patched model backward on cuda:1", xg.grad is not None and xg.grad.device == dev)
    from torch._inductor.utils import run_and_get_code
    torch._dynamo.reset()
    got, codes = run_and_get_code(torch.compile(model, fullgraph=True), xb)
    fused = all("torch.ops.fastelu" not in c.split("def call")[-1] and "0.693145751953125" in c for c in codes)
    ok &= report("compiled patched model on cuda:1, fastelu's math fused (no extern call)",
                 close(got, want, 1e-5) and fused, f"{len(codes)} graph(s)")
    xs = torch.randn(5000, device=dev)
    elu_op.elu(xs, 0.7)  # compiled before capture
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        elu_op.elu(xs, 0.7)
    torch.cuda.current_stream(dev).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.device(dev), torch.cuda.graph(graph):
        ys = elu_op.elu(xs, 0.7)
    xs.copy_(torch.randn_like(xs) * 3)
    graph.replay()
    ok &= report("CUDA graph captured on cuda:1, replayed", close(ys, F.elu(xs, 0.7)))
    torch.cuda.synchronize(1)
    after = torch.cuda.memory_allocated(0)
    ok &= report("nothing allocated on cuda:0", after == before, f"{before} B before, {after} B after")
    ok &= report("current device still cuda:0", torch.cuda.current_device() == 0)
    return ok


def threads_per_gpu(calls=10_000):
    import threading
    errors, done = [], []

    def worker(index):
        dev = torch.device("cuda", index)
        gen = torch.Generator(device=dev).manual_seed(index)
        try:
            for i in range(calls):
                dtype = (torch.float32, torch.bfloat16, torch.float16)[i % 3]
                x = (torch.randn(1000 + 37 * (i % 50), device=dev, generator=gen) * 3).to(dtype)
                kind = i % 4
                if kind == 0:
                    got, want = elu_op.elu(x, 0.9), F.elu(x, 0.9)
                elif kind == 1:
                    got, want = elu_op.selu(x), F.selu(x)
                elif kind == 2:
                    got = torch.ops.fastelu.elu_backward(x, 0.9, 1.0, 1.0, False, x)
                    want = torch.ops.aten.elu_backward(x, 0.9, 1.0, 1.0, False, x)
                else:
                    got = x.clone()
                    elu_op.celu(got, 0.5, inplace=True)
                    want = F.celu(x, 0.5)
                if i % 10 == 0 and not torch.allclose(got.float(), want.float(), rtol=2**-7, atol=1e-5):
                    errors.append(f"cuda:{index} call {i} kind {kind} {dtype}")
            torch.cuda.synchronize(dev)
            done.append(index)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"cuda:{index}: {e!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report(f"two threads, one per GPU, {calls} mixed calls each", not errors and sorted(done) == [0, 1],
                  "; ".join(errors[:3]) or "every 10th call checked against PyTorch")


def make_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ELU(), torch.nn.Linear(128, 128),
                                torch.nn.CELU(0.5), torch.nn.Linear(128, 1))
    elu_op.patch(model)
    return model


def global_batch():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(64, 64, generator=gen), torch.randn(64, 1, generator=gen)


def ddp_worker(rank, world, port, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    dev = torch.device("cuda", rank)
    model = torch.nn.parallel.DistributedDataParallel(make_model().to(dev), device_ids=[rank])
    x, y = global_batch()
    shard = slice(rank * 32, (rank + 1) * 32)
    loss = F.mse_loss(model(x[shard].to(dev)), y[shard].to(dev))
    loss.backward()
    losses = [torch.zeros(1, device=dev) for _ in range(world)]
    dist.all_gather(losses, loss.detach().reshape(1))
    grads = [p.grad.detach().cpu() for p in model.parameters()]
    # the aten switch on this rank's own device
    with elu_op.enabled(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        t = torch.randn(1000, device=dev)
        routed = torch.allclose(F.elu(t), torch.where(t > 0, t, torch.expm1(t)), rtol=1e-6, atol=1e-6)
        torch.cuda.synchronize(dev)
    ours = [e.device_index for e in prof.events() if e.name == "elu_kernel"]  # fastelu's kernel, on this GPU
    queue.put((rank, sum(v.item() for v in losses) / world, grads, routed and ours == [rank]))
    dist.destroy_process_group()


def ddp():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = 29500 + os.getpid() % 1000
    procs = [ctx.Process(target=ddp_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    model = make_model().cuda(0)
    x, y = global_batch()
    loss = F.mse_loss(model(x.cuda(0)), y.cuda(0))
    loss.backward()
    single = [p.grad.detach().cpu() for p in model.parameters()]
    ok = True
    for rank, ddp_loss, grads, routed in results:
        ok &= report(f"DDP rank {rank}: loss equals the single-GPU loss", abs(ddp_loss - loss.item()) < 1e-5,
                     f"{ddp_loss:.7f} vs {loss.item():.7f}")
        ok &= report(f"DDP rank {rank}: gradients equal the single-GPU ones",
                     all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(grads, single)),
                     f"max diff {max((a - b).abs().max().item() for a, b in zip(grads, single)):.2e}")
        ok &= report(f"DDP rank {rank}: enable() routes F.elu to fastelu on cuda:{rank}", routed)
    return ok


def main():
    if torch.cuda.device_count() < 2:
        sys.exit("needs two GPUs")
    REPORT.extend([f"# fastelu on two GPUs: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}", "",
                   f"{__import__('datetime').date.today()}, torch {torch.__version__}, "
                   f"triton {__import__('triton').__version__}, NCCL "
                   f"{'.'.join(map(str, torch.cuda.nccl.version()))}, NCCL_NVLS_ENABLE={os.environ['NCCL_NVLS_ENABLE']}",
                   "", "| check | result | detail |", "|---|---|---|"])
    ok = other_device()
    ok &= threads_per_gpu()
    ok &= ddp()
    REPORT.append("")
    REPORT.append("all passed" if ok else "FAILURES")
    print(REPORT[-1])
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write("\n".join(REPORT) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
