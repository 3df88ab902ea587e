"""tasbench.batch_norm: the NCHW detour gives PyTorch's batch norm results, keeps the layout, and is taken only
where it pays (CPU, several threads, a channels-last map with a channel count that is not a multiple of 8)."""

import pytest
import torch
from torch import nn

import tasbench.batch_norm as bn_module
from tasbench.batch_norm import BatchNorm2d


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def run(layer: nn.Module, x: torch.Tensor):
    x = x.clone().requires_grad_()
    out = layer(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out, x.grad, layer.weight.grad, layer.running_mean, layer.running_var


@pytest.mark.parametrize("channels", [11, 16])
def test_same_numbers_and_layout_as_pytorch(threads, channels):
    threads(2)
    x = torch.randn(8, channels, 6, 6).contiguous(memory_format=torch.channels_last) * 3 + 1
    ours, theirs = BatchNorm2d(channels), nn.BatchNorm2d(channels)
    for a, b in zip(run(ours, x), run(theirs, x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert run(ours, x)[0].is_contiguous(memory_format=torch.channels_last)


def test_the_detour_is_taken_only_where_it_pays(threads, monkeypatch):
    taken = []
    monkeypatch.setattr(bn_module.F, "batch_norm", lambda x, *a, **k: taken.append(x.is_contiguous()) or x)
    cl = lambda c: torch.zeros(2, c, 4, 4).contiguous(memory_format=torch.channels_last)  # noqa: E731
    threads(2)
    for x in (cl(11), cl(16), torch.zeros(2, 11, 4, 4)):
        bn_module.batch_norm(x, None, None, training=True)
    threads(1)
    bn_module.batch_norm(cl(11), None, None, training=True)
    assert taken == [True, False, True, False]  # NCHW only for 11 channels, channels-last, 2 threads
