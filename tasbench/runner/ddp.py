"""One run on several GPUs (or CPU processes) with torchrun: data-parallel retraining through DDP.

    torchrun --nproc-per-node 4 -m tasbench.runner.ddp cifar10 --index 7 --data-dir ~/data   # a GPU per rank
    python -m torch.distributed.run --nproc-per-node 2 -m tasbench.runner.ddp SPEC --index 0 --device cpu  # gloo

Rank 0 first trains or reuses the teacher and prunes (single-process, as `run_one` does), then every rank retrains
the pruned net: each batch is cut into one contiguous shard per rank, each rank runs its shard through
`DistributedDataParallel`, and the logits are all-gathered so that the loss (and KD, and the training log) see the
whole batch exactly as `train()` does on one device. Parameters, momentum and checkpoints stay identical on all
ranks; only rank 0 writes the run's files.

What differs from a one-process run: BatchNorm statistics come from each rank's shard (as in any DDP training
without SyncBatchNorm), and float sums run in another order, so accuracy is close to, not bit-equal with, the
one-process run. The world size is recorded in metrics.json (`timing.ddp_world_size`), not in the hashed config.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from tasbench.device import parse_device
from tasbench.errors import ConfigError


class GatheredDDP(nn.Module):
    """`model` under DDP, taking and returning whole batches: forward runs this rank's shard, gathers the rest.

    The other ranks' logits arrive without gradient, and this rank's are scaled so that its gradient is `world`
    times its share; DDP's gradient averaging over ranks then gives exactly the whole-batch gradient.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.ddp = DistributedDataParallel(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        if len(x) % world:  # a batch that does not split evenly: every rank computes all of it (same gradient)
            return self.ddp(x)
        local = self.ddp(x.chunk(world)[rank])
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.detach())
        parts[rank] = local * world - local.detach() * (world - 1)  # value: local; gradient: world x local's
        return torch.cat(parts)

    # Checkpoints hold the plain module's keys, so a run started under torchrun can be resumed without it.
    def state_dict(self, *args, **kwargs):
        return self.ddp.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state, strict: bool = True):
        return self.ddp.module.load_state_dict(state, strict)


def main(argv: list[str] | None = None) -> int:
    from tasbench.data import load_data
    from tasbench.runner.experiment import ensure_teacher, prune_once, run_one
    from tasbench.runner.spec import load_sweep

    p = argparse.ArgumentParser(prog="tasbench.runner.ddp", description=__doc__.split("\n")[0])
    p.add_argument("spec")
    p.add_argument("--index", type=int, required=True, help="index of the run in the expanded sweep (see --dry-run)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="runs")
    p.add_argument("--data-dir")
    p.add_argument(
        "--device", default="auto", help="auto (the default), cpu (gloo) or cuda (nccl; rank r uses cuda:LOCAL_RANK)"
    )
    p.add_argument("--latency-batches", default="1,256")
    args = p.parse_args(argv)
    if "RANK" not in os.environ:
        print("tasbench.runner.ddp: error: start it with torchrun (RANK/WORLD_SIZE are not set)", file=sys.stderr)
        return 2
    try:
        device = parse_device(args.device)
        if device.type == "cuda":  # one GPU per rank: local rank r takes cuda:r
            local = os.environ.get("LOCAL_RANK", "0")
            try:
                device = parse_device(f"cuda:{local}")
            except ConfigError as e:
                raise ConfigError(
                    f"local rank {local} takes a GPU of its own: {e}; start at most one rank per GPU, "
                    "or use --device cpu"
                ) from None
    except ConfigError as e:
        print(f"tasbench.runner.ddp: error: {e}", file=sys.stderr)
        return 2
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        runs = load_sweep(args.spec, args.set).runs
        if not 0 <= args.index < len(runs):
            raise ConfigError(f"--index {args.index} is outside the sweep's {len(runs)} runs (0..{len(runs) - 1})")
        cfg = runs[args.index]
        if rank == 0 and not (cfg.directory(args.out) / "metrics.json").exists():
            data = load_data(cfg.data, args.data_dir)
            teacher, _ = ensure_teacher(cfg, args.out, data, device)
            prune_once(cfg, cfg.directory(args.out), teacher, data, device)
        dist.barrier()  # the other ranks read the teacher and the pruned net rank 0 left on the shared disk
        metrics = run_one(
            cfg,
            args.out,
            device=device,
            data_dir=args.data_dir,
            wrap=GatheredDDP,
            writer=rank == 0,
            latency_batches=tuple(int(b) for b in args.latency_batches.split(",")),
        )
        if rank == 0:
            print(f"{cfg.directory(args.out)}: top1 {metrics['top1']:.2f} on {world} ranks", file=sys.stderr)
        dist.barrier()  # tear down together: a rank that leaves while another still uses the group can abort it
    except ConfigError as e:
        print(f"tasbench.runner.ddp: error: {e}", file=sys.stderr)
        return 2
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
