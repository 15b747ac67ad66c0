"""Launch configurations: the rule from device properties, tuned tables, and the tuning cache."""
import pytest
import torch
from conftest import needs_cuda

import elu_op
from elu_op import configs
from elu_op.build import C as _C


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTELU_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tuning_cache_is_fastelus_cache(tmp_path, monkeypatch):
    # as the build: $FASTELU_CACHE, else fastelu's directory in the user's cache
    monkeypatch.setenv("FASTELU_CACHE", str(tmp_path / "here"))
    assert configs.cache_path("Some GPU") == tmp_path / "here" / "Some_GPU.json"
    monkeypatch.delenv("FASTELU_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert configs.cache_path("Some GPU") == tmp_path / "fastelu" / "Some_GPU.json"


def _table(config):
    return {d: {size: (config,) * (len(configs.BUCKETS) + 1) for size in configs.ITEMSIZES} for d in configs.DIRECTIONS}


def test_rule_and_tuned_tables(cache_home):
    table, source = configs.load_table("Some H200", 132, 2048, 4.8e12)
    assert source.startswith("rule: 4.80 TB/s, 132 SMs x 2048 threads")
    assert table == configs.rule(132, 2048, 4.8e12)
    # one 16-byte vector per thread and 4 warps for large tensors, smaller blocks for small ones
    forward = table["forward"]
    assert forward[2][-1] == (1024, 4) and forward[4][-1] == (512, 4) and forward[8][-1] == (256, 4)
    assert forward[2][0] == (512, 2) and forward[4][0] == (256, 2)
    assert table["backward"] == forward  # two tensors loaded: twice the bytes in flight, the same shapes
    # a GPU with far more bandwidth per SM than its threads cover gets more loads per thread
    assert configs.rule(66, 2048, 4.8e12)["forward"][2][-1] == (2048, 4)  # 47 KB per SM: two loads a thread
    name = next(iter(configs.TUNED))
    table, source = configs.load_table(name, 132, 2048, 3.35e12)
    assert source == f"table tuned on {name}" and table == configs.TUNED[name]
    assert configs.load_table("Some future GPU")[1].startswith("rule for a generic GPU")


def test_saved_table_is_loaded_for_that_gpu_only(cache_home):
    path = configs.save_table("Fake GPU 80GB", _table((4096, 8)))
    assert path.parent == cache_home
    table, source = configs.load_table("Fake GPU 80GB", 132, 2048, 3e12)
    assert table == _table((4096, 8)) and source == f"tuning cache {path}"
    assert configs.load_table("Another GPU", 132, 2048, 3e12)[1].startswith("rule")


_FOUR = "[[512, 4], [512, 4], [512, 4], [512, 4]]"
_SIZES = f'{{"2": {_FOUR}, "4": {_FOUR}, "8": {_FOUR}}}'


@pytest.mark.parametrize("text", [
    "not json", '{"4": 5}', '{"two": []}', "[]",
    _SIZES,  # the format before the backward had its own table
    f'{{"forward": {_SIZES}}}',  # a direction missing
    f'{{"forward": {_SIZES}, "backward": 7}}',
    f'{{"forward": {_SIZES}, "backward": {{"2": [[512, 4]], "4": [[512, 4]], "8": [[512, 4]]}}}}',  # one bucket
    f'{{"forward": {_SIZES}, "backward": {{"4": {_FOUR}}}}}',  # itemsizes missing
    f'{{"forward": {_SIZES}, "backward": {{"2": [[500, 4], [512, 4], [512, 4], [512, 4]], "4": {_FOUR}, '
    f'"8": {_FOUR}}}}}',  # a BLOCK that is no power of two
])
def test_unusable_cache_warns_and_falls_back(cache_home, text):
    path = configs.cache_path("Fake GPU")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.warns(UserWarning, match="ignoring unreadable tuning cache"):
        table, source = configs.load_table("Fake GPU", 108, 2048, 2e12)
    assert source.startswith("rule") and table == configs.rule(108, 2048, 2e12)


@needs_cuda
def test_forget_makes_every_path_use_a_new_table(cache_home, monkeypatch):
    # After forget() the next call must run the new configuration, in the C++ fast path too:
    # a kernel compiled for BLOCK 4096 shows that the call went back through the lookup.
    index = torch.cuda.current_device()
    x = torch.randn(2**20 + 7, device="cuda")
    elu_op.elu(x)
    path = configs.save_table(torch.cuda.get_device_name(index), _table((4096, 8)))
    try:
        configs.forget()
        assert _C.plan(index, 4, x.numel()) == _C.plan(index, 4, x.numel(), backward=True) == (4096, 8, 0)
        runs = []
        run = elu_op.launch.run  # the first launch of a configuration goes through Triton's launcher
        monkeypatch.setattr(elu_op.launch, "run", lambda args, grid, warps: runs.append((args["BLOCK"], warps)) or run(args, grid, warps))
        torch.testing.assert_close(elu_op.elu(x), torch.nn.functional.elu(x), rtol=4e-7, atol=0)
        assert runs == [(4096, 8)]
    finally:
        path.unlink()
        configs.forget()
    assert _C.plan(index, 4, x.numel())[:2] != (4096, 8)  # back to the rule or the tuned table
