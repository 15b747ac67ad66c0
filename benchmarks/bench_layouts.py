"""fastelu on views as users hand them (slices, chunks, broadcasts, a permuted slice; and dense ones
for comparison), each beside a clone() of the same view, which moves the same bytes.

Forward: the view's clone(), F.elu, torch.compile of F.elu (static shapes, replayed from a CUDA
graph), fastelu. Backward (elu_backward from the input): torch.add(saved, grad) over the same
views (three streams, as clone is two), aten's elu_backward, its compiled form, fastelu's.
Each time is the mean of the middle 60% of interleaved rounds of do_bench medians (L2 flushed).
GB/s = (bytes of the view read + bytes written) / time. Then one compiled graph on a sliced input,
stock against fastelu's lowering, and per call at 4096 elements on a strided view.

    python benchmarks/bench_layouts.py [--log2 27,24] [--rounds 5] [--out DIR]
    python benchmarks/bench_layouts.py --deep [--rounds 5] [--out DIR]   (views of 5 to 12 dimensions)
"""
import argparse
import datetime

import torch
import torch.nn.functional as F
import triton

import elu_op
from bench_elu import per_call_us
from common import DTYPES, graphed, save, save_rows, time_all

# name -> (view of the 4-d base, of the 2-d base): the base holds 2**log2 elements
VIEWS = {
    "dense": lambda b4, b2: b2,
    "channels_last": lambda b4, b2: b4.to(memory_format=torch.channels_last),
    "transposed": lambda b4, b2: b2.t(),
    "x[:, ::2]": lambda b4, b2: b2[:, ::2],
    "x[:, :12288]": lambda b4, b2: b2[:, :12288],
    "chunk(2, -1)[0]": lambda b4, b2: b2.chunk(2, -1)[0],
    "chunk(2, -1)[1]": lambda b4, b2: b2.chunk(2, -1)[1],
    "base[0:1].expand(64, ...)": lambda b4, b2: b4[0:1].expand(64, -1, -1, -1),
    "view(64, -1, 1024).permute(2, 0, 1)[::2]": lambda b4, b2: b2.view(64, -1, 1024).permute(2, 0, 1)[::2],
}
# (saved input, gradient): the gradient laid out as the forward's result, as autograd hands it, or
# contiguous, where that is another layout (a transpose between the two)
BACKWARD_VIEWS = [("dense", "like the result"), ("x[:, ::2]", "like the result"), ("chunk(2, -1)[1]", "like the result"),
                  ("view(64, -1, 1024).permute(2, 0, 1)[::2]", "like the result"),
                  ("view(64, -1, 1024).permute(2, 0, 1)[::2]", "contiguous")]


def bases(log2, dtype):
    n = 2**log2
    b4 = torch.randn(n // (256 * 64 * 64), 256, 64, 64, device="cuda", dtype=dtype)
    return b4, b4.view(n // 16384, 16384)


def forward_row(name, log2, dtype, rounds):
    torch._dynamo.reset()
    x = VIEWS[name](*bases(log2, dtype))
    compiled = torch.compile(lambda t: F.elu(t), dynamic=False)
    fns = {"clone": lambda: x.clone(), "eager": lambda: F.elu(x), "compile": graphed(lambda: compiled(x)),
           "fastelu": lambda: elu_op.elu(x)}
    return _row("forward", name, log2, dtype, x, time_all(fns, rounds), streams=2)


def backward_row(name, grad, log2, dtype, rounds):
    torch._dynamo.reset()
    s = VIEWS[name](*bases(log2, dtype))
    g = torch.randn_like(F.elu(s)) if grad == "like the result" else torch.randn(s.shape, device="cuda", dtype=dtype)
    compiled = torch.compile(lambda a, b: torch.ops.aten.elu_backward(a, 1.0, 1.0, 1.0, False, b), dynamic=False)
    fns = {"clone": lambda: torch.add(s, g), "eager": lambda: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, s),
           "compile": graphed(lambda: compiled(g, s)),
           "fastelu": lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, s)}
    return _row(f"backward, grad {grad}", name, log2, dtype, s, time_all(fns, rounds), streams=3)


LAYOUT_DATA = []  # this run's rows as data (save_rows)


def _row(mode, name, log2, dtype, x, t, streams):
    gbs = streams * x.numel() * x.element_size() / t["fastelu"] / 1e6
    LAYOUT_DATA.append({"mode": mode, "view": name, "dtype": str(dtype)[6:], "log2": log2, "streams": streams,
                        "elements": x.numel(), "itemsize": x.element_size(),
                        **{f"{k}_us": round(1e3 * v, 2) for k, v in t.items()}})
    row = (f"| {mode} | `{name}` | {str(dtype)[6:]} | 2**{log2} | {1e3 * t['clone']:.1f} | {1e3 * t['eager']:.1f} | "
           f"{1e3 * t['compile']:.1f} | {1e3 * t['fastelu']:.1f} | {gbs:.0f} | {t['eager'] / t['fastelu']:.2f} | "
           f"{t['compile'] / t['fastelu']:.2f} | {100 * t['clone'] / t['fastelu']:.1f}% |")
    print(row, flush=True)
    return row


# Views of more dimensions than the kernel walks, no two of which merge: all but the last element
# along each dimension of a base, the view about 2**24 elements. dims -> the view's size along each.
DEEP = {5: 28, 6: 16, 8: 8, 12: 4}


def deep_rows(dtype, rounds, data):
    """Deep views: forward, in place and backward, each beside the view's clone() (or torch.add of
    the saved view and the gradient) and F.elu's own, in us; each also appended to data."""
    rows = []
    for dims, size in DEEP.items():
        x = torch.randn((size + 1,) * dims, device="cuda", dtype=dtype)[(slice(0, size),) * dims]
        g = torch.randn_like(F.elu(x))
        cases = {
            "forward": {"clone": lambda: x.clone(), "eager": lambda: F.elu(x), "fastelu": lambda: elu_op.elu(x)},
            "in place": {"clone": lambda: x.clone(), "eager": lambda: F.elu_(x), "fastelu": lambda: elu_op.elu_(x)},
            "backward": {"clone": lambda: torch.add(x, g),
                         "eager": lambda: torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x),
                         "fastelu": lambda: torch.ops.fastelu.elu_backward(g, 1.0, 1.0, 1.0, False, x)},
        }
        for mode, fns in cases.items():
            t = time_all(fns, rounds)
            data.append({"mode": mode, "dims": dims, "view": f"{size}**{dims}", "dtype": str(dtype)[6:],
                         **{f"{k}_us": round(1e3 * v, 2) for k, v in t.items()}})
            rows.append(f"| {mode} | {dims} | {size}**{dims} | {str(dtype)[6:]} | {1e3 * t['clone']:.1f} | "
                        f"{1e3 * t['eager']:.1f} | {1e3 * t['fastelu']:.1f} | {t['eager'] / t['fastelu']:.2f} |")
            print(rows[-1], flush=True)
    return rows


def compiled_rows(log2, rounds):
    """A compiled graph on a sliced input: stock against fastelu's lowering."""
    rows = []
    for dtype in DTYPES.values():
        torch._dynamo.reset()
        x = bases(log2, dtype)[1][:, ::2]
        stock = torch.compile(lambda t: t + F.elu(0.5 * t + 0.1), dynamic=False)
        ours = torch.compile(lambda t: t + elu_op.elu(0.5 * t + 0.1), dynamic=False)
        t = time_all({"stock": graphed(lambda: stock(x)), "fastelu": graphed(lambda: ours(x))}, rounds)
        rows.append(f"| `t + act(0.5t + 0.1)` on `x[:, ::2]` | {str(dtype)[6:]} | 2**{log2} | "
                    f"{1e3 * t['stock']:.1f} | {1e3 * t['fastelu']:.1f} | {t['stock'] / t['fastelu']:.3f} |")
        print(rows[-1], flush=True)
    return rows


def per_call(rounds=7):
    """Median us per call at 4096 elements on strided views, F.elu against fastelu, interleaved."""
    base = torch.randn(64, 128, device="cuda")
    cases = {"`x[:, ::2]` of 64x128, fp32": base[:, ::2],
             "`x.chunk(2, -1)[1]` of 64x128, fp32": base.chunk(2, -1)[1]}
    rows = []
    for label, x in cases.items():
        times = ([], [])
        for _ in range(rounds):
            times[0].append(per_call_us(lambda: F.elu(x), calls=2000, rounds=1))
            times[1].append(per_call_us(lambda: elu_op.elu(x), calls=2000, rounds=1))
        a, b = sorted(times[0])[rounds // 2], sorted(times[1])[rounds // 2]
        rows.append(f"| {label} | {a:.2f} | {b:.2f} | {b / a:.3f} |")
        print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2", default="27,24", help="sizes of the base, as powers of two")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--deep", action="store_true", help="only the views of 5 to 12 dimensions")
    args = ap.parse_args()
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    if args.deep:
        data = []
        rows = [row for dtype in (torch.bfloat16, torch.float32) for row in deep_rows(dtype, args.rounds, data)]
        text = (f"# fastelu on views of 5 to 12 dimensions, {props.name}\n\n{datetime.date.today()}, torch "
                f"{torch.__version__}, triton {triton.__version__}, `benchmarks/bench_layouts.py --deep`. All but the "
                f"last element along each dimension of a base: no two dimensions merge. Times in us: the mean of the middle "
                f"60% of {args.rounds} interleaved rounds of do_bench medians (L2 flushed). `clone`: the view's clone() "
                f"(forward, in place) or torch.add(view, grad) (backward); x eager = F.elu's time / fastelu's.\n\n"
                f"| mode | dims | view | dtype | clone | F.elu | fastelu | x eager |\n|---|---|---|---|---|---|---|---|\n"
                + "\n".join(rows) + "\n")
        if args.out:
            save_rows(args.out, props.name, "deep_views", data)
            save(args.out, props.name, "_deep_views.md", text)
        else:
            print(text)
        return
    calls = per_call()
    rows = []
    for log2 in (int(v) for v in args.log2.split(",")):
        for dtype in DTYPES.values():
            rows += [forward_row(name, log2, dtype, args.rounds) for name in VIEWS]
            rows += [backward_row(name, grad, log2, dtype, args.rounds) for name, grad in BACKWARD_VIEWS]
    compiled = compiled_rows(int(args.log2.split(",")[0]), args.rounds)
    text = (f"# fastelu on views, {props.name}\n\n{datetime.date.today()}, torch {torch.__version__}, triton "
            f"{triton.__version__}, `benchmarks/bench_layouts.py`. Times in us: the mean of the middle 60% of "
            f"{args.rounds} interleaved rounds of do_bench medians (L2 flushed). The 2-d base is "
            f"(2**log2 / 16384) x 16384, the 4-d one (2**log2 / 2**20) x 256 x 64 x 64. `clone` is the view's "
            f"clone() (forward) or torch.add(saved, grad) (backward: the saved input is the view), moving the "
            f"same bytes; GB/s counts the view's bytes read and written by fastelu; "
            f"% of clone = clone's time / fastelu's. Compile: static shapes, replayed from a CUDA graph.\n\n"
            f"| mode | view | dtype | base | clone | F.elu | compile | fastelu | GB/s | x eager | x compile | "
            f"% of clone |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) +
            "\n\n## A compiled graph on a sliced input (us; ratio = stock / fastelu)\n\n"
            "| graph | dtype | base | stock | fastelu | ratio |\n|---|---|---|---|---|---|\n" + "\n".join(compiled) +
            "\n\n## Per call at 4096 elements on a strided view (median us of 7 interleaved rounds of 2000 calls)\n\n"
            "| view | F.elu | elu_op.elu | ratio |\n|---|---|---|---|\n" + "\n".join(calls) + "\n")
    if args.out:
        save_rows(args.out, props.name, "layouts", LAYOUT_DATA)
        save(args.out, props.name, "_layouts.md", text)
    else:
        print(text)


if __name__ == "__main__":
    main()
