"""DTensor: the ops on sharded tensors, and a patched model under tensor parallelism, on two CPU
processes over gloo (the same test runs over NCCL where two GPUs are there)."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ELU(0.7), torch.nn.Linear(16, 8), torch.nn.SELU(),
                               torch.nn.Linear(8, 16), torch.nn.CELU(0.5), torch.nn.Linear(16, 1))


def _worker(rank, world, port, backend, errors):
    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.distributed.init_process_group(backend, rank=rank, world_size=world)
        import torch.nn.functional as F
        from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, distribute_tensor
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

        import elu_op
        device = "cuda" if backend == "nccl" else "cpu"
        if device == "cuda":
            torch.cuda.set_device(rank)
        mesh = torch.distributed.device_mesh.init_device_mesh(device, (world,))
        x = torch.randn(8, 8, generator=torch.Generator().manual_seed(1)).to(device)
        # the ops on DTensors of each placement
        for placement in (Shard(0), Shard(1), Replicate()):
            d = distribute_tensor(x, mesh, [placement])
            for got, want in ((elu_op.elu(d, 0.7), F.elu(x, 0.7)), (torch.ops.fastelu.elu(d, 1.0, 1.0, 1.0), F.elu(x)),
                              (torch.ops.fastelu.elu_backward(d, 1.0, 1.0, 1.0, False, d),
                               torch.ops.aten.elu_backward(x, 1.0, 1.0, 1.0, False, x))):
                assert got.placements == (placement,), (got.placements, placement)
                torch.testing.assert_close(got.full_tensor(), want, rtol=1e-6, atol=1e-6)
            y = distribute_tensor(x.clone(), mesh, [placement])
            elu_op.elu(y, inplace=True)
            torch.testing.assert_close(y.full_tensor(), F.elu(x))
        # in place on partial sums would be elu of each part: refused, as DTensor refuses relu_
        partial = DTensor.from_local(x.clone(), mesh, [Partial()])
        try:
            elu_op.elu_(partial)
            raise AssertionError("elu_ of a Partial DTensor did not raise")
        except RuntimeError as e:
            assert "in-place operations that require placement changes are not supported" in str(e), e
        # a patched model, tensor parallel: activations between the layers stay sharded DTensors
        reference = _model().to(device)
        model = _model().to(device)
        elu_op.patch(model)
        plan = {"0": ColwiseParallel(use_local_output=False), "2": RowwiseParallel(use_local_output=False),
                "4": ColwiseParallel(use_local_output=False), "6": RowwiseParallel()}
        parallelize_module(model, mesh, plan)
        loss = model(x).square().mean()
        loss.backward()
        want = reference(x).square().mean()
        want.backward()
        torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            grad = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            torch.testing.assert_close(grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    except Exception as e:  # noqa: BLE001 - reported by the parent
        import traceback
        errors.put(f"rank {rank}: {e!r}\n{traceback.format_exc()}")
    finally:
        # The outcome is in `errors` by now. A gloo rank's exit aborts now and then, after both
        # ranks were done and had torn down ("terminate called without an active exception" from
        # a C++ destructor at exit, even behind a barrier): leave without running them.
        errors.close()
        errors.join_thread()
        os._exit(0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(backend):
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, backend, errors)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert errors.empty(), errors.get()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]


def test_dtensor_on_two_cpu_processes():
    run_two_processes("gloo")


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_dtensor_on_two_gpus(monkeypatch):
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")  # NVLink multicast stays off on shared machines
    run_two_processes("nccl")
