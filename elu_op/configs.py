"""Launch configurations: which (BLOCK, num_warps) the kernel runs with, per GPU, direction
(forward or backward), element size and tensor size.

Sizes fall into a few buckets by their power of two, so a model with dynamic shapes never tunes or
compiles per shape. Where the configurations come from, first match wins:
1. the tuning cache that `python -m elu_op tune` writes for the user's own GPU;
2. a table measured with `tune` for a GPU by name (TUNED);
3. a rule from the device's own properties (``rule``), for any GPU nobody tuned.
Nothing here ever autotunes on its own, so torch.compile tracing and CUDA-graph capture only ever
see a plain lookup.
"""
import json
import pathlib

from . import build

# Bucket upper bounds (element counts, inclusive). The last bucket takes everything larger.
BUCKETS = (2**16, 2**20, 2**24)
ITEMSIZES = (2, 4, 8)
DIRECTIONS = ("forward", "backward")
CANDIDATES = [(b, w) for b in (512, 1024, 2048, 4096) for w in (2, 4, 8) if b // (32 * w) >= 4]

# Tables measured with `python -m elu_op tune` (benchmarks/studies/results/), by GPU name:
# {direction: {itemsize: per bucket}}.
_H100_32 = ((512, 4), (2048, 8), (512, 2), (512, 4))
_H100 = {4: _H100_32, 8: _H100_32, 2: ((512, 2), (512, 4), (512, 2), (1024, 4))}
# 2026-11-30 (benchmarks/studies/results/NVIDIA_H200_configs.md): the 16-bit forward wants two 16-byte
# loads a thread (2048/4w), where the rule gives one (1024/4w).
_H200 = {2: ((2048, 8), (1024, 4), (2048, 4), (2048, 4)), 4: ((1024, 8), (1024, 8), (512, 4), (512, 4)),
         8: ((512, 4), (512, 4), (512, 4), (1024, 4))}
TUNED = {
    # 2026-11-24, the forward timed; the backward takes the same shapes.
    "NVIDIA H100 80GB HBM3": {"forward": _H100, "backward": _H100},
    # The 16-bit backward, which loads two tensors, has its two loads a thread with one vector of
    # each (1024/4w) up to 2**24 elements: at 2**24, medians over runs 96.7 -> 98.7% of its copy
    # in bfloat16, 98.2 -> 99.2% in float16 (benchmarks/studies/results/NVIDIA_H200.md); above, 2048/4w and 1024/4w are
    # within 1%.
    "NVIDIA H200": {"forward": _H200, "backward": {**_H200, 2: ((2048, 8), (1024, 4), (1024, 4), (2048, 4))}},
}

# Registers a thread may use, by (dtype, direction) (absent: as many as ptxas likes). Left alone,
# ptxas gives the 16-bit kernels 44-48 (for the kernel's copies of the block: masked or not, and
# float16's two maths), which holds an H200 SM to 40 of its 64 warps; capped at 32 (a few values
# spill to L1), all 64 run. At 2**27 (benchmarks/studies/results/NVIDIA_H200_registers.md) that took the
# float16 forward from 97.9% to 100.1% of copy_ and the bfloat16 backward from 98.9% to 99.8%;
# the bfloat16 forward (the hardware's exp2, lighter) and the float16 backward lost 0.3-1% to it.
# The caps hold on every GPU but were measured on the H200 only; where 16-bit ELU is memory-bound
# by a wide margin (an RTX 4090) the warps they free are not needed, and a few spills cost little.
MAX_REGISTERS = {("float16", "forward"): 32, ("bfloat16", "backward"): 32}

# DRAM latency under load, the L in Little's law. 650 ns is about what HBM2e/HBM3 and GDDR6X
# parts show under streaming load; the rule is not sensitive to it (see rule()).
LATENCY_S = 650e-9


def rule(sms, threads_per_sm, bandwidth):
    """{direction: {itemsize: per-bucket (BLOCK, num_warps)}} from the device's properties.

    Little's law: to stream at full bandwidth the memory system needs bandwidth * latency bytes in
    flight, bandwidth * latency / sms per SM. At full occupancy each thread must then have
    in_flight_per_sm / threads_per_sm bytes of loads outstanding; the kernel issues 16-byte vector
    loads, so a thread handles 16 / itemsize elements per load it needs, with 4 warps a block.
    Small tensors get fewer warps and smaller blocks, down to one vector per thread, until every SM
    has at least two blocks. The backward, which loads two tensors, takes the same shapes: twice
    the bytes in flight.

    What it gives (one 16-byte load per thread covers Little's law on all three):
    - H200: 4.9 TB/s, 132 SMs x 2048 threads: 24 KB per SM against 32 KB that one load per thread
      keeps in flight: 1024/4 for 16-bit, 512/4 for float32, 256/4 for float64 above 2**20
      (the H100's tuned large-tensor choice for 16-bit and float32 too).
    - RTX 4090: 1.0 TB/s, 128 SMs x 1536 threads: 5 KB per SM against 24 KB: the same shapes.
    - A100 80GB: 2.0 TB/s, 108 SMs x 2048 threads: 12 KB per SM against 32 KB: the same shapes.
    """
    per_sm = bandwidth * LATENCY_S / sms
    loads = 1  # 16-byte loads in flight per thread: the least power of two that covers per_sm
    while loads * threads_per_sm * 16 < per_sm:
        loads *= 2
    table = {}
    for itemsize in ITEMSIZES:
        per_thread = 16 // itemsize * loads
        configs = []
        for n in (*BUCKETS, float("inf")):
            warps = 4
            block = per_thread * 32 * warps
            while block > per_thread * 64 and n / block < 2 * sms:
                warps = max(2, warps // 2)
                block //= 2
            configs.append((block, warps))
        table[itemsize] = tuple(configs)
    return {direction: table for direction in DIRECTIONS}


def cache_path(gpu_name):
    """The tuning cache of one GPU, beside the build in fastelu's cache (build.cache_root())."""
    safe = "".join(c if c.isalnum() else "_" for c in gpu_name)
    return pathlib.Path(build.cache_root()) / f"{safe}.json"


def load_table(gpu_name, sms=None, threads_per_sm=None, bandwidth=None):
    """Return ({direction: {itemsize: per-bucket configs}}, where they came from) for one GPU."""
    path = cache_path(gpu_name)
    if path.exists():
        try:
            table = _validate(json.loads(path.read_text()))
            return table, f"tuning cache {path}"
        except (ValueError, TypeError, AttributeError) as e:
            import warnings
            warnings.warn(f"fastelu: ignoring unreadable tuning cache {path}: {e} (`python -m elu_op tune` writes "
                          f"a new one)")
    if gpu_name in TUNED:
        return dict(TUNED[gpu_name]), f"table tuned on {gpu_name}"
    if sms and threads_per_sm and bandwidth:
        return rule(sms, threads_per_sm, bandwidth), (
            f"rule: {bandwidth / 1e12:.2f} TB/s, {sms} SMs x {threads_per_sm} threads "
            f"(Little's law, {LATENCY_S * 1e9:.0f} ns)")
    return rule(100, 2048, 2e12), "rule for a generic GPU (this one's properties are unknown)"


def _validate(tuned):
    """The table in a tuning cache's JSON, checked: a hand-edited, truncated or older file must
    fail here, not as an IndexError inside an elu call."""
    if sorted(tuned) != sorted(DIRECTIONS):
        raise ValueError(f"expected entries for {' and '.join(DIRECTIONS)}, got {sorted(tuned)}")
    table = {}
    for direction, sizes in tuned.items():
        if sorted(sizes) != sorted(str(s) for s in ITEMSIZES):
            raise ValueError(f"expected {direction} entries for itemsizes {ITEMSIZES}, got {sorted(sizes)}")
        for configs in sizes.values():
            if len(configs) != len(BUCKETS) + 1:
                raise ValueError(f"expected {len(BUCKETS) + 1} (BLOCK, num_warps) pairs per itemsize, "
                                 f"got {len(configs)}")
            for c in configs:
                if len(c) != 2 or not all(type(v) is int and v > 0 and v & (v - 1) == 0 for v in c):
                    raise ValueError(f"a (BLOCK, num_warps) pair must be two powers of two, got {list(c)}")
        table[direction] = {int(s): tuple(tuple(c) for c in v) for s, v in sizes.items()}
    return table


def save_table(gpu_name, table):
    path = cache_path(gpu_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = {d: {str(k): [list(c) for c in v] for k, v in sizes.items()} for d, sizes in table.items()}
    path.write_text(json.dumps(plain, indent=1))
    return path


def describe(device_index):
    """({direction: {itemsize: configs}}, source) for a device, from the cache file, a tuned table or
    the rule."""
    if device_index < 0:
        return rule(100, 2048, 2e12), "interpreter (CPU): the rule for a generic GPU"
    import torch
    props = torch.cuda.get_device_properties(device_index)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    bandwidth = 2 * clock_khz * 1e3 * bus_bits / 8  # double data rate
    return load_table(props.name, props.multi_processor_count, getattr(props, "max_threads_per_multi_processor", 0),
                      bandwidth)


def table(device_index):
    """{direction: {itemsize: ((BLOCK, num_warps),) * 4}} for a device: what the C++ asks on its
    first launch there, and keeps (until forget())."""
    return describe(device_index)[0]


def forget():
    """Make the C++ ask again (after tuning): it drops its tables and the kernels compiled for them."""
    if build.C is not None:
        build.C.forget()
