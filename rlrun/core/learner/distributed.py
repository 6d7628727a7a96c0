"""The torch.distributed side of data-parallel learners: the process group and the DDP forward.

Every rank receives the whole batch, builds the same training rows from it
(so GAE and advantage normalisation see the whole batch, exactly as one local
learner would), then trains on its own equal shard. Gradients are averaged by
DDP before each optimizer step, so all copies stay identical.
"""

from __future__ import annotations

import datetime
import socket

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

TensorDict = dict[str, torch.Tensor]
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=10)


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def free_address() -> tuple[str, int]:
    """This node's IP and a free TCP port, for rank 0 to host the rendezvous."""
    import ray

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return ray.util.get_node_ip_address(), port


def init_process_group(backend: str, address: str, port: int, rank: int, world_size: int) -> None:
    dist.init_process_group(
        backend, init_method=f"tcp://{address}:{port}", rank=rank, world_size=world_size,
        timeout=PROCESS_GROUP_TIMEOUT,
    )


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _ForwardTrain(nn.Module):
    """Makes an RLModule's `forward_train` its `forward`, the only method DDP intercepts."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, batch: TensorDict) -> TensorDict:
        return self.module.forward_train(batch)


def ddp_forward_train(module: nn.Module, device: torch.device) -> DistributedDataParallel:
    """`module.forward_train` under DDP: calling the result prepares the gradient all-reduce of the backward."""
    return DistributedDataParallel(_ForwardTrain(module), device_ids=[device] if device.type == "cuda" else None)


def shard(rows: TensorDict, rank: int, world_size: int) -> TensorDict:
    """This rank's contiguous slice of `rows`; every rank gets the same number (a remainder is dropped)."""
    n = len(next(iter(rows.values())))
    per_rank = n // world_size
    if per_rank == 0:
        raise ValueError(f"a batch of {n} training rows cannot be split over {world_size} learners")
    return {k: v[rank * per_rank:(rank + 1) * per_rank] for k, v in rows.items()}


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all ranks (so every rank reports, and adapts to, the same metrics)."""
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()
