"""Checkpoints: atomic writes, weights_only loading, model files that rebuild any shape, clear errors."""

import os
import pickle

import pytest
import torch

from tasbench.atomic import atomic_write
from tasbench.checkpoint import load_checkpoint, load_model, save_model
from tasbench.errors import ConfigError, StorageError
from tasbench.official_config import read_tas_config
from tasbench.resnet import build_resnet

from conftest import OFFICIAL_CONFIGS


def test_model_file_round_trip(tmp_path):
    arch = read_tas_config(OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index("C010-ResNet20")])
    model = build_resnet(arch)
    save_model(tmp_path / "m.pt", arch, model, method="test")
    loaded_arch, loaded = load_model(tmp_path / "m.pt")
    assert loaded_arch == arch
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.eval()(x), loaded.eval()(x))


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/tas-bench-pwned",))


def test_a_malicious_pickle_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Payload()}, path)  # a valid torch file whose pickle calls os.system
    with pytest.raises(ConfigError, match="is not a plain tensor checkpoint; refusing to unpickle it"):
        load_checkpoint(path)
    assert not os.path.exists("/tmp/tas-bench-pwned")


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "is truncated or not a PyTorch file"),
        (b"not a checkpoint at all", "is truncated or not a PyTorch file"),
        (pickle.dumps([1, 2]), "truncated or not a PyTorch file|holds a list"),
    ],
    ids=["empty", "text", "bare-pickle"],
)
def test_unreadable_checkpoints_are_named(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "m.pt"
    arch = read_tas_config(OFFICIAL_CONFIGS[0])
    save_model(path, arch, build_resnet(arch))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConfigError, match="is truncated or not a PyTorch file"):
        load_model(path)


def test_model_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(tmp_path / "none.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="is not a tas-bench model file"):
        load_model(tmp_path / "other.pt")
    arch = read_tas_config(OFFICIAL_CONFIGS[0])
    save_model(tmp_path / "m.pt", arch, build_resnet(arch))
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    state["state_dict"]["fc.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(ConfigError, match="weights do not fit this network \\('fc.weight' is \\(3, 3\\)"):
        load_model(tmp_path / "wrong.pt")


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write(path, b"old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="cannot write .*metrics.json': disk full"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_training_and_the_search_resume_through_one_check(tmp_path):
    """`resume_state`, used by the training loop and the TAS search: nothing yet -> None; a checkpoint of another
    configuration or one lacking an entry -> one line naming the file and what is wrong."""
    from tasbench.atomic import save_torch
    from tasbench.checkpoint import resume_state

    path = tmp_path / "checkpoint.pt"
    assert resume_state(path, {"lr": 0.1}, ("model",), "checkpoint") is None
    save_torch(path, {"model": {}, "epoch": 3, "config": {"lr": 0.1}})
    assert resume_state(path, {"lr": 0.1}, ("model", "epoch"), "checkpoint")["epoch"] == 3
    with pytest.raises(ConfigError, match=r"checkpoint '.*checkpoint.pt' belongs to another configuration"):
        resume_state(path, {"lr": 0.2}, ("model",), "checkpoint")
    with pytest.raises(ConfigError, match=r"search checkpoint '.*checkpoint.pt' has no 'w_opt' entry"):
        resume_state(path, {"lr": 0.1}, ("model", "w_opt"), "search checkpoint")
