"""The published figures are what the benchmarks' data renders: none is typed by hand."""
import os
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
