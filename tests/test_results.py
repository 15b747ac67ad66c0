"""The published figures are what the benchmarks' data renders: none is typed by hand."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rendered_tables_match_the_data():
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "render.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_row_names_what_made_it():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import render
    for name in ("memory", "deep_views"):
        rows = render.rows(name)
        assert rows, name
        for row in rows:
            assert {"gpu", "torch", "triton", "date", "command"} <= row.keys(), (name, row)


def test_headline_rows_from_each_benchmarks_data(tmp_path, monkeypatch):
    # synthetic rows in the benchmarks' formats: each ratio comes from its own file's figures
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import render
    meta = {"gpu": "Some GPU", "torch": "2.x", "triton": "3.x", "date": "2026-01-01", "command": "python b.py"}
    files = {
        "layouts": [{**meta, "mode": "forward", "view": "x[:, ::2]", "dtype": "bfloat16", "log2": 27, "streams": 2,
                     "elements": 10**6, "itemsize": 2, "clone_us": 9.0, "eager_us": 20.0, "compile_us": 15.0,
                     "fastelu_us": 10.0}],
        "compile": [{**meta, "graph": "t + act(0.5t + 0.1)", "mode": "fwd", "dtype": "bf16", "log2": 27,
                     "stock_us": 12.0, "elu_op.elu_us": 10.0, "no act_us": 9.5},
                    {**meta, "graph": "t + act(0.5t + 0.1)", "mode": "fwd+bwd", "dtype": "bf16", "log2": 27,
                     "stock_us": 30.0, "elu_op.elu_us": 25.0, "no act_us": 20.0}],
        "calls": [{**meta, "entry point": "function", "elements": 4096, "dtype": "fp32", "pytorch_us": 7.0,
                   "fastelu_us": 6.0}],
    }
    for name, data in files.items():
        (tmp_path / f"Some_GPU_{name}.json").write_text(json.dumps(data))
    monkeypatch.setattr(render, "RESULTS", str(tmp_path))
    table = render.headline()
    assert "| forward bf16, view `x[:, ::2]` | 90.0% of its clone() | 400 | 2.00 | 1.50 |" in table, table
    assert ("| compiled bf16 `t + act(0.5t + 0.1)`, forward / forward + backward | 95.0% of the graph without act, forward "
            "| | | 1.20 / 1.20 |") in table
    assert "| one call, 4096 fp32 elements | | | 1.17 | |" in table
    assert table.count("Some GPU, torch 2.x, triton 3.x, 2026-01-01") == 3
    # with the dense sizes too: at most 8 rows, the dense ones last in line giving way
    sizes = sorted(pathlib.Path(ROOT, "benchmarks", "results").glob("*_sizes.json"))[0]
    (tmp_path / "Some_GPU_sizes.json").write_text(sizes.read_text())
    table = render.headline()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| case")]
    assert len(rows) == 8 and rows[0].startswith("| forward bf16") and rows[-1].startswith("| one call"), rows
    assert not any(r.startswith("| backward fp32") for r in rows)
