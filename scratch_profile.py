import torch, torch.nn as nn, torch.nn.functional as F, elu_op, time
from torch.profiler import profile, ProfilerActivity
torch.manual_seed(0)
def mlp():
    layers = []
    for _ in range(6): layers += [nn.Linear(2048, 2048), nn.SELU()]
    return nn.Sequential(*layers, nn.Linear(2048, 10)).cuda()
x = torch.randn(4096, 2048, device="cuda")
for patch in (False, True):
    m = mlp()
    if patch: elu_op.patch(m)
    def step():
        with torch.autocast("cuda", torch.bfloat16), torch.no_grad():
            return m(x)
    for _ in range(5): step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5): step()
        torch.cuda.synchronize()
    print("PATCH" if patch else "EAGER")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=8, max_name_column_width=60))
# isolated: selu on bf16 4096x2048
h = torch.randn(4096, 2048, device="cuda", dtype=torch.bfloat16)
from triton.testing import do_bench
print("F.selu", do_bench(lambda: F.selu(h), return_mode="median"), "elu_op.selu", do_bench(lambda: elu_op.selu(h), return_mode="median"))
print("strides", h.stride(), elu_op.selu(h).stride())
