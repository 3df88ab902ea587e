"""The GPU paths, on a CUDA machine (`nox -s gpu_check`, `pytest -m cuda`); skipped where torch sees no GPU (CI).

- the static-shape TAS search forward on CUDA equals the dynamic-shape one on the CPU for the same picks;
- a bf16-autocast training run of the proxy ResNet-20 on CUDA trains (finite, better than chance) and its first
  logits agree with fp32 on the CPU within bf16 tolerance;
- a run under torchrun with NCCL on two GPUs, where the machine has two.
"""

import json
import socket
import subprocess
import sys

import pytest
import torch
from runner_helpers import write_spec

from tas.search_model import Pick, SearchResNet
from tas.search_space import search_space
from tasbench.data import DataConfig, load_data
from tasbench.presets import resnet20, resnet56
from tasbench.resnet import seeded_resnet
from tasbench.runner.spec import load_sweep
from tasbench.train import TrainConfig, autocast, train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (these run in nox -s gpu_check)"),
]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("arch", [resnet20(), resnet56()], ids=["resnet20", "resnet56"])
def test_static_search_forward_on_cuda_equals_the_dynamic_cpu_one(arch):
    torch.manual_seed(0)
    dynamic = SearchResNet(search_space(arch)).double()
    static = SearchResNet(search_space(arch), static_shapes=True).double()
    static.load_state_dict(dynamic.state_dict())
    picks, depth = dynamic.sample(tau=3.0, generator=torch.Generator().manual_seed(0))
    images = torch.randn(8, 3, 32, 32, dtype=torch.float64)
    cpu = dynamic.forward_picked(images, picks, depth)
    # The static model draws the same picks on the CPU (same logits, same generator); then both go to the GPU.
    static_picks, static_depth = static.sample(tau=3.0, generator=torch.Generator().manual_seed(0))
    static = static.to(CUDA)
    moved = [
        Pick(*(f.to(CUDA) if torch.is_tensor(f) else f for f in (p.index, p.weight, p.widths, p.widest)))
        for p in static_picks
    ]
    gpu = static.forward_picked(images.to(CUDA), moved, static_depth.to(CUDA))
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-9), (gpu.cpu() - cpu).abs().max()


def test_a_bf16_training_run_on_cuda_trains_and_matches_fp32_logits():
    data = load_data(DataConfig("proxy"))
    model = seeded_resnet(resnet20(), 0)
    reference = seeded_resnet(resnet20(), 0).eval()
    images = data.test.images[:64].float() / 255
    with torch.no_grad():
        fp32 = reference(images)
        with autocast(CUDA):
            bf16 = model.to(CUDA).eval()(images.to(CUDA)).float().cpu()
    assert (bf16 - fp32).abs().max() <= 0.05 * fp32.abs().max() + 1e-3
    result = train(model, data, TrainConfig(epochs=2), device=CUDA, progress=False)
    assert torch.isfinite(torch.tensor(result["history"][-1]["train_loss"])) and result["top1"] > 20


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP with NCCL needs 2 GPUs")
def test_a_run_under_torchrun_with_nccl_on_two_gpus(tmp_path):
    spec = write_spec(tmp_path, ratios=[0.5])
    (cfg,) = load_sweep(spec).runs
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port)]
    argv += ["-m", "tasbench.runner.ddp", str(spec), "--index", "0", "--out", str(tmp_path / "runs")]
    argv += ["--device", "cuda"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((cfg.directory(tmp_path / "runs") / "metrics.json").read_text())
    assert metrics["timing"]["ddp_world_size"] == 2
