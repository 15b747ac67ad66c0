"""Launch configurations: which (BLOCK, num_warps) the kernel runs with, per GPU and size.

Sizes fall into a few buckets by their power of two, so a model with dynamic shapes
never tunes or compiles per shape. A table per architecture gives the defaults; `python -m
elu_op tune` measures the user's own GPU and writes a cache file that later processes load.
Nothing here ever autotunes on its own, so torch.compile tracing and CUDA-graph capture
only ever see a plain lookup.
"""
import json
import os
import pathlib

# Bucket upper bounds (element counts, inclusive). The last bucket takes everything larger.
BUCKETS = (2**16, 2**20, 2**24)

# (BLOCK, num_warps) per bucket, the same for every dtype unless a tuning cache says otherwise
# (on the H100, 16-bit types lost 15% with blocks scaled up to keep the bytes per block).
# Small tensors get small blocks to spread over the SMs.
TABLES = {
    # H100, measured with `python -m elu_op tune` on 2026-11-24 (benchmarks/results/); the 16-bit
    # winners differ, so they get their own row (SM90_16BIT below).
    (9, 0): ((512, 4), (2048, 8), (512, 2), (512, 4)),
    # RTX 4090: 128 SMs x 1536 threads. Its 1008 GB/s needs ~0.6 MB in flight (~600 ns
    # latency), a quarter of what 1024-element blocks at 4 warps keep in flight at full
    # occupancy, so those blocks suffice; 2048/8 for large tensors halves the block count.
    # The seed's profile (512-element blocks, 3M blocks, 93% of DRAM peak) agrees.
    (8, 9): ((512, 4), (1024, 4), (2048, 8), (2048, 8)),
    # A100: 108 SMs, 2048 threads each, 1.5-2 TB/s: the H100 shape with one step less per bucket.
    (8, 0): ((512, 4), (1024, 4), (1024, 4), (2048, 8)),
}
# 2-byte dtypes on sm_90, from the same tuning run.
SM90_16BIT = ((512, 2), (512, 4), (512, 2), (1024, 4))
# Any other GPU: choices that are never bad on a memory-bound elementwise kernel.
DEFAULT = ((512, 4), (1024, 4), (1024, 4), (2048, 8))

ITEMSIZES = (2, 4, 8)
CANDIDATES = [(b, w) for b in (512, 1024, 2048, 4096) for w in (2, 4, 8) if b // (32 * w) >= 4]


def cache_path(gpu_name):
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    safe = "".join(c if c.isalnum() else "_" for c in gpu_name)
    return pathlib.Path(root) / "fastelu" / f"{safe}.json"


def load_table(gpu_name, capability):
    """Return ({itemsize: per-bucket configs}, where they came from) for one GPU."""
    path = cache_path(gpu_name)
    if path.exists():
        try:
            tuned = json.loads(path.read_text())
            table = {int(k): tuple(tuple(c) for c in v) for k, v in tuned.items()}
            _validate(table)
            return table, str(path)
        except (ValueError, TypeError, AttributeError) as e:
            import warnings
            warnings.warn(f"fastelu: ignoring unreadable tuning cache {path}: {e}")
    base = TABLES.get(tuple(capability), DEFAULT)
    source = f"built-in table for sm_{capability[0]}{capability[1]}" if tuple(capability) in TABLES else \
        "built-in default (no table for this GPU)"
    table = {size: base for size in ITEMSIZES}
    if tuple(capability) == (9, 0):
        table[2] = SM90_16BIT
    return table, source


def _validate(table):
    # A hand-edited or truncated file must fail here, not as an IndexError inside an elu call.
    if sorted(table) != sorted(ITEMSIZES):
        raise ValueError(f"expected entries for itemsizes {ITEMSIZES}, got {sorted(table)}")
    for configs in table.values():
        if len(configs) != len(BUCKETS) + 1:
            raise ValueError(f"expected {len(BUCKETS) + 1} (BLOCK, num_warps) pairs per itemsize, got {len(configs)}")
        for c in configs:
            if len(c) != 2 or not all(type(v) is int and v > 0 and v & (v - 1) == 0 for v in c):
                raise ValueError(f"a (BLOCK, num_warps) pair must be two powers of two, got {list(c)}")


def save_table(gpu_name, table):
    path = cache_path(gpu_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(k): [list(c) for c in v] for k, v in table.items()}, indent=1))
    return path


# device index -> {itemsize: configs}; CPU tensors (the interpreter) use index -1.
_tables = {}


def lookup(device_index, itemsize, n):
    """(BLOCK, num_warps) for n elements of itemsize bytes on a CUDA device (-1: CPU interpreter)."""
    table = _tables.get(device_index)
    if table is None:
        table = _tables[device_index] = describe(device_index)[0]
    return table[itemsize][0 if n <= BUCKETS[0] else 1 if n <= BUCKETS[1] else 2 if n <= BUCKETS[2] else 3]


def describe(device_index):
    """({itemsize: configs}, source) for a device, from the cache file or the built-in tables."""
    if device_index < 0:
        return {size: DEFAULT for size in ITEMSIZES}, "interpreter (CPU)"
    import torch
    props = torch.cuda.get_device_properties(device_index)
    return load_table(props.name, (props.major, props.minor))


def forget():
    """Drop the loaded tables, so the next lookup reads the cache file again (after tuning), and
    the kernels the C++ launches with the old configurations."""
    from . import _C
    _tables.clear()
    _C.forget()
