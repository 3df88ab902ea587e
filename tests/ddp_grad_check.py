"""Run under torchrun by tests/test_ddp.py: GatheredDDP's gradient equals the one-process whole-batch gradient."""

import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tasbench.runner.ddp import GatheredDDP

dist.init_process_group("gloo")
g = torch.Generator().manual_seed(1)
x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
torch.manual_seed(0)
single = torch.nn.Linear(6, 3)
F.cross_entropy(single(x), y).backward()  # one process, whole batch
torch.manual_seed(0)
model = torch.nn.Linear(6, 3)
wrapped = GatheredDDP(model)  # held: a DDP wrapper dropped before backward() takes its gradient all-reduce along
logits = wrapped(x)
F.cross_entropy(logits, y).backward()  # every rank: the loss of the whole batch, as train() computes it
ok = torch.equal(logits, single(x)) and torch.allclose(model.weight.grad, single.weight.grad, atol=1e-6)
print(f"rank {dist.get_rank()}: logits and gradient {'match' if ok else 'DIFFER'}")
dist.barrier()  # tear down together: a rank that leaves while another still uses the group can abort (SIGABRT)
dist.destroy_process_group()
sys.exit(0 if ok else 1)
