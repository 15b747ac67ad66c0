"""Launch configuration tables: built-in per architecture, and the tuning cache that overrides them."""
import pytest
import torch
from conftest import needs_cuda

import elu_op
from elu_op import configs, kernel


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def _table(config):
    return {size: (config,) * (len(configs.BUCKETS) + 1) for size in configs.ITEMSIZES}


def test_built_in_tables(cache_home):
    table, source = configs.load_table("Some RTX 4090", (8, 9))
    assert source == "built-in table for sm_89"
    assert all(table[size] == configs.TABLES[8, 9] for size in configs.ITEMSIZES)
    table, _ = configs.load_table("Some H100", (9, 0))
    assert table[2] == configs.SM90_16BIT and table[4] == configs.TABLES[9, 0]
    table, source = configs.load_table("Some future GPU", (12, 3))
    assert source == "built-in default (no table for this GPU)"
    assert all(table[size] == configs.DEFAULT for size in configs.ITEMSIZES)


def test_saved_table_is_loaded_for_that_gpu_only(cache_home):
    path = configs.save_table("Fake GPU 80GB", _table((4096, 8)))
    assert path.parent == cache_home / "fastelu"
    table, source = configs.load_table("Fake GPU 80GB", (9, 0))
    assert table == _table((4096, 8)) and source == str(path)
    assert configs.load_table("Another GPU", (9, 0))[1] == "built-in table for sm_90"


@pytest.mark.parametrize("text", [
    "not json", '{"4": 5}', '{"two": []}', "[]",
    '{"2": [[512, 4]], "4": [[512, 4]], "8": [[512, 4]]}',  # one bucket where four are needed
    '{"4": [[512, 4], [512, 4], [512, 4], [512, 4]]}',  # itemsizes missing
    '{"2": [[500, 4], [512, 4], [512, 4], [512, 4]], "4": [[512, 4], [512, 4], [512, 4], [512, 4]], '
    '"8": [[512, 4], [512, 4], [512, 4], [512, 4]]}',  # a BLOCK that is no power of two
])
def test_unusable_cache_warns_and_falls_back(cache_home, text):
    path = configs.cache_path("Fake GPU")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.warns(UserWarning, match="ignoring unreadable tuning cache"):
        table, source = configs.load_table("Fake GPU", (8, 0))
    assert source == "built-in table for sm_80" and table[4] == configs.TABLES[8, 0]


@needs_cuda
def test_forget_makes_every_path_use_a_new_table(cache_home):
    # After forget() the next call must run the new configuration, in the C++ fast path too:
    # a kernel compiled for BLOCK 4096 shows that the call went back through the lookup.
    index = torch.cuda.current_device()
    x = torch.randn(2**20 + 7, device="cuda")
    elu_op.elu(x)
    path = configs.save_table(torch.cuda.get_device_name(index), _table((4096, 8)))
    try:
        configs.forget()
        assert configs.lookup(index, 4, x.numel()) == (4096, 8)
        kernel._compiled.pop((index, torch.float32, 4096, 8, False, False, 0), None)
        torch.testing.assert_close(elu_op.elu(x), torch.nn.functional.elu(x), rtol=4e-7, atol=0)
        assert (index, torch.float32, 4096, 8, False, False, 0) in kernel._compiled
    finally:
        path.unlink()
        configs.forget()
    assert configs.lookup(index, 4, x.numel()) != (4096, 8)  # back to the built-in table
