"""`--compile`: torch.compile for the training forward on CUDA, eager on a CPU, and eager after a compile error."""

import os
import warnings

import pytest
import torch

from tasbench.compiled import VARIABLE, compiled, compiles
from tasbench.presets import resnet20
from tasbench.resnet import seeded_resnet

from helpers import run_cli


def test_only_cuda_with_the_switch_compiles(monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    assert not compiles(torch.device("cuda")) and not compiles(torch.device("cpu"))
    monkeypatch.setenv(VARIABLE, "1")
    assert compiles(torch.device("cuda")) and not compiles(torch.device("cpu"))
    model = seeded_resnet(resnet20(), 0)
    assert compiled(model, torch.device("cpu")) is model


def test_a_compile_error_falls_back_to_eager_once(monkeypatch):
    def broken(model):
        def call(x):
            raise RuntimeError("inductor: no C++ compiler\nmore detail")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    model = seeded_resnet(resnet20(), 0).eval()
    forward = compiled(model, torch.device("cpu"), enabled=True)
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            first, second = forward(x), forward(x)
    assert torch.equal(first, model(x)) and torch.equal(second, first)
    assert [str(w.message) for w in caught] == [
        "torch.compile failed (RuntimeError: inductor: no C++ compiler); training eager"
    ]


def test_train_with_compile_on_a_cpu_trains_eager_and_says_so(tmp_path, capsys, monkeypatch, one_thread):
    monkeypatch.delenv(VARIABLE, raising=False)
    argv = ["train", "--dataset", "proxy", "--epochs", "1", "--proxy-train", "64", "--proxy-test", "32"]
    code, metrics, err = run_cli(capsys, *argv, "--compile", "--device", "cpu", "--out", str(tmp_path), "--no-progress")
    assert code == 0, err
    assert metrics["environment"]["compiled"] is False
    assert VARIABLE not in os.environ  # main() leaves the process as it found it


@pytest.mark.parametrize("command", ["train", "sweep", "prune"])
def test_compile_is_offered_where_training_runs(capsys, command):
    with pytest.raises(SystemExit):
        run_cli(capsys, command, "--help")
    assert "--compile" in capsys.readouterr().out
