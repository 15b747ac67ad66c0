"""The seed kernel from shared/seed, kept unchanged as the baseline to beat (do not use it)."""
import torch
import triton
import triton.language as tl


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_SIZE": 256}, num_warps=4, num_stages=1),
        triton.Config({"BLOCK_SIZE": 512}, num_warps=4, num_stages=2),
        triton.Config({"BLOCK_SIZE": 1024}, num_warps=8, num_stages=2),
        triton.Config({"BLOCK_SIZE": 2048}, num_warps=8, num_stages=3),
    ],
    key=["n_elements"],
)
@triton.jit
def elu_kernel(x_ptr, output_ptr, alpha_val, n_elements, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    exp_x = tl.exp(x)
    elu_x = tl.where(x > 0, x, alpha_val * (exp_x - 1.0))
    tl.store(output_ptr + offsets, elu_x, mask=mask)


def triton_elu(x, alpha=1.0):
    output = torch.empty_like(x)
    n_elements = output.numel()
    grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)  # noqa: E731
    alpha_val = torch.tensor(alpha, dtype=x.dtype, device=x.device).item()
    elu_kernel[grid](x, output, alpha_val, n_elements)
    return output
