"""Tables rendered from data, never typed by hand: the benchmarks' (benchmarks/results/*.json) in
the README and in benchmarks/results/README.md (the headline, then every data file's table), and
the registration table (elu_op.ops.TABLE) in docs/architecture.md. Also redraws the cost-against-size
plot from its data (with matplotlib; --check leaves it alone).

Each table goes between its markers, `<!-- rendered: NAME -->` and `<!-- /rendered -->`; --check
exits 1 where a file differs from what the data renders.

    python benchmarks/render.py [--check]
"""
import argparse
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
TARGETS = [os.path.join(ROOT, "README.md"), os.path.join(RESULTS, "README.md"),
           os.path.join(ROOT, "docs", "architecture.md")]
META = ("gpu", "torch", "triton", "date", "command")


def _newest(suffix, date):
    """The newest (by date(data)) of the data files results/*<suffix>, or None."""
    files = []
    for path in glob.glob(os.path.join(RESULTS, f"*{suffix}")):
        with open(path) as f:
            files.append(json.load(f))
    return max(files, key=date, default=None)


def rows(name):
    """The rows of the newest data file of one benchmark (results/<gpu>_<name>.json)."""
    return _newest(f"_{name}.json", lambda data: data[0]["date"]) or []


def sizes_data():
    """The newest cost-against-size run (bench_sizes.py; one JSON object with its rows)."""
    return _newest("_sizes.json", lambda data: data["date"])


def _source(data):
    first = data[0] if isinstance(data, list) else data
    command = first.get("command", "python benchmarks/bench_sizes.py")
    return f"{first['gpu']}, torch {first['torch']}, triton {first['triton']}, {first['date']}: `{command}`"


def _ratio(a, b, percent=False):
    return f"{100 * a / b:.1f}%" if percent else f"{a / b:.2f}"


def headline():
    """fastelu beside copy_, F.elu and torch.compile: dense tensors at 2**24 and 2**28 elements, each
    direction and dtype (bench_sizes.py), then, where their data exist, a strided view
    (bench_layouts.py), a compiled graph (bench_compile.py) and the cost of one small call
    (call_costs.py)."""
    import bench_sizes
    head = ["| case | % of copy_ | fastelu GB/s | x F.elu | x torch.compile |", "|---|---|---|---|---|"]
    lines, sources = [], []
    data = sizes_data()
    if data is not None:
        sources.append(f"dense: {_source(data)} (2**24 / 2**28 elements; medians of do_bench, L2 flushed, over "
                       f"{data['rounds']} interleaved rounds; the backward's copy_ is `torch.add(x, g, out=y)`)")
        at = {(r["direction"], r["dtype"], r["n"]): bench_sizes.summary(r) for r in data["rows"]}
        for direction, dtype in (("forward", "bf16"), ("forward", "fp16"), ("backward", "bf16"),
                                 ("backward", "fp16"), ("forward", "fp32"), ("backward", "fp32")):
            cells = [at.get((direction, dtype, 2**log2)) for log2 in (24, 28)]
            if None in cells:
                continue
            meds, gbs = [c[0] for c in cells], [c[1]["fastelu"] for c in cells]
            copy = " / ".join(_ratio(m["copy"], m["fastelu"], True) for m in meds)
            eager = " / ".join(_ratio(m["eager"], m["fastelu"]) for m in meds)
            compiled = " / ".join(_ratio(m["compile"], m["fastelu"]) for m in meds)
            lines.append(f"| {direction} {dtype} | {copy} | {' / '.join(f'{g:.0f}' for g in gbs)} | {eager} | {compiled} |")
    dense = len(lines)
    views = [r for r in rows("layouts") if r["mode"] == "forward" and r["view"] == "x[:, ::2]" and r["dtype"] == "bfloat16"]
    if views:
        r = max(views, key=lambda r: r["log2"])
        gbs = r["streams"] * r["elements"] * r["itemsize"] / r["fastelu_us"] / 1e3
        lines.append(f"| forward bf16, view `x[:, ::2]` | {_ratio(r['clone_us'], r['fastelu_us'], True)} of its clone() | "
                     f"{gbs:.0f} | {_ratio(r['eager_us'], r['fastelu_us'])} | {_ratio(r['compile_us'], r['fastelu_us'])} |")
        sources.append(f"view: {_source(views)} (a 2**{r['log2']}-element base)")
    graphs = {r["mode"]: r for r in sorted(rows("compile"), key=lambda r: r["log2"])
              if r["graph"] == "t + act(0.5t + 0.1)" and r["dtype"] == "bf16"}
    if {"fwd", "fwd+bwd"} <= graphs.keys():
        # % of the same graph without the activation: the same bytes forward only (backward, the
        # graph without it saves nothing and reads less)
        fwd, both = graphs["fwd"], graphs["fwd+bwd"]
        lines.append(f"| compiled bf16 `t + act(0.5t + 0.1)`, forward / forward + backward | "
                     f"{_ratio(fwd['no act_us'], fwd['elu_op.elu_us'], True)} of the graph without act, forward | | | "
                     f"{_ratio(fwd['stock_us'], fwd['elu_op.elu_us'])} / {_ratio(both['stock_us'], both['elu_op.elu_us'])} |")
        sources.append(f"compiled: {_source([fwd])} (2**{fwd['log2']} elements)")
    calls = [r for r in rows("calls") if r["entry point"] == "function"]
    if calls:
        r = calls[0]
        lines.append(f"| one call, {r['elements']} {r['dtype']} elements | | | "
                     f"{_ratio(r['pytorch_us'], r['fastelu_us'])} | |")
        sources.append(f"per call: {_source(calls)} (median us per call, `F.elu` against `elu_op.elu`)")
    if not lines:
        return "(no data: `python benchmarks/bench_sizes.py`)"
    # at most 8 rows: the other rows keep their place, and the dense rows last in the list above
    # (every one is in benchmarks/results/README.md) give way to them
    lines = lines[:max(0, min(dense, 8 - (len(lines) - dense)))] + lines[dense:]
    return "\n".join(head + lines) + "\n\n" + "; ".join(sources) + "."


def memory():
    """Held MiB after the forward, and step ms, of each model, dtype and variant."""
    data = rows("memory")
    if not data:
        return "(no data: `python benchmarks/bench_model.py --memory`)"
    variants = list(dict.fromkeys(r["variant"] for r in data))
    cells = {(r["model"], r["dtype"], r["variant"]): r for r in data}
    lines = ["| model | dtype | " + " | ".join(variants) + " |", "|---|---|" + "---|" * len(variants)]
    for model, dtype in dict.fromkeys((r["model"], r["dtype"]) for r in data):
        lines.append(f"| {model} | {dtype} | " + " | ".join(
            f"{cells[model, dtype, v]['held_mib']:.0f} MiB, {cells[model, dtype, v]['step_ms']:.2f} ms"
            if (model, dtype, v) in cells else "" for v in variants) + " |")
    first = data[0]
    lines.append(f"\nHeld: memory a training step keeps from its forward for its backward (the output "
                 f"included); ms: the step's median. {first['gpu']}, torch {first['torch']}, triton "
                 f"{first['triton']}, {first['date']}, `{first['command']}`.")
    return "\n".join(lines)


def _cell(v):
    if not isinstance(v, float):
        return str(v)
    return f"{v:.0f}" if v.is_integer() or abs(v) >= 1000 else f"{v:.2f}"


def _rows_table(data):
    """A list of rows as a table: their own columns, then, beside fastelu's time, its ratio to each
    other time in the row (above 1: fastelu is faster)."""
    columns = [k for k in data[0] if k not in META]
    ours = next((c for c in ("fastelu_us", "elu_op.elu_us") if c in columns), None)
    others = [c for c in columns if ours and c.endswith("_us") and c != ours]
    head = columns + [f"x {c.removesuffix('_us')}" for c in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in data:
        cells = [_cell(r.get(c, "")) for c in columns] + [_ratio(r[c], r[ours]) for c in others]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _sizes_table(data):
    import bench_sizes
    lines = ["| direction | dtype | elements | fastelu GB/s | % of copy_ | x F.elu | x torch.compile |",
             "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        med, gbs, _ = bench_sizes.summary(r)
        lines.append(f"| {r['direction']} | {r['dtype']} | {bench_sizes.label(r['n'])} | {gbs['fastelu']:.0f} | "
                     f"{_ratio(med['copy'], med['fastelu'], True)} | {_ratio(med['eager'], med['fastelu'])} | "
                     f"{_ratio(med['compile'], med['fastelu'])} |")
    return "\n".join(lines)


def data_tables():
    """Every data file in benchmarks/results/, one table each, with what made it."""
    parts = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        if not data:
            continue
        table = _sizes_table(data) if isinstance(data, dict) else _rows_table(data)
        parts.append(f"### `{os.path.basename(path)}`\n\n{_source(data)}\n\n{table}")
    return "\n\n".join(parts) or "(no data)"


def plots():
    """The cost-against-size plot of each sizes file, drawn again from its data."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    import bench_sizes
    for path in glob.glob(os.path.join(RESULTS, "*_sizes*.json")):
        with open(path) as f:
            bench_sizes.plot(json.load(f), path.removesuffix(".json") + ".png")


def _kernel(kernel):
    from elu_op import ops
    if kernel is None or kernel == ops.ATEN:
        return kernel or ""
    if isinstance(kernel, ops.Cpp):
        return f"`csrc/ops.cpp` `{kernel}`"
    if callable(kernel):
        return f"`{kernel.__module__.removeprefix('elu_op.')}.py` `{kernel.__qualname__}`"
    return kernel


def dispatch():
    """Every op x dispatch key and what serves it in each build state, from elu_op.ops.TABLE."""
    from elu_op import ops
    lines = ["| key | op | " + " | ".join(ops.STATES) + " |", "|---|---|" + "---|" * len(ops.STATES)]
    for key, states in ops.TABLE.items():
        for op in ops.OPS:
            cells = [_kernel((states[state] or {}).get(op)) for state in ops.STATES]
            if any(cells):
                lines.append(f"| {key} | {op} | " + " | ".join(c or "none" for c in cells) + " |")
    return "\n".join(lines)


TABLES = {"headline": headline, "memory": memory, "dispatch": dispatch, "data": data_tables}
BLOCK = re.compile(r"(<!-- rendered: (\w+) -->\n).*?(<!-- /rendered -->)", re.S)


def render(text):
    return BLOCK.sub(lambda m: m.group(1) + TABLES[m.group(2)]() + "\n" + m.group(3), text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether every file matches the data")
    args = ap.parse_args()
    stale = []
    for path in TARGETS:
        with open(path) as f:
            text = f.read()
        new = render(text)
        if new != text:
            stale.append(os.path.relpath(path, ROOT))
            if not args.check:
                with open(path, "w") as f:
                    f.write(new)
    if not args.check:
        plots()
    if args.check and stale:
        sys.exit(f"not what the data renders: {', '.join(stale)} (python benchmarks/render.py)")


if __name__ == "__main__":
    main()
