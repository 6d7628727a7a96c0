"""The torch.distributed side of data-parallel learners: the process group and the gradient average.

Every rank receives the whole batch and builds the same training rows from it
(so GAE and advantage normalisation see the whole batch, exactly as one local
learner would). All ranks draw the same minibatch permutation; each trains on
its slice of every minibatch, and before each optimizer step the gradients are
averaged, weighted by the rows each rank held. The step therefore uses the
gradient of the whole minibatch: a DDP update equals the local learner's
update to float tolerance, for any loss that is a mean over rows.

The average is an explicit all-reduce of all of a module's gradients in one
flat buffer, not `DistributedDataParallel`: DDP reduces only parameters that
the autograd graph reached in the way it saw first, so a loss that leaves some
parameters without gradients (behaviour cloning ignores the value head), a
loss that changes between updates, or several optimizers per module silently
skip the average or hang. A parameter that no rank gave a gradient keeps
`grad=None`, so optimizers skip it exactly as they would locally.
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

TensorDict = dict[str, torch.Tensor]
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=10)


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def listen_on_node_ip() -> tuple[socket.socket, str, int]:
    """A listening socket on this node's IP (127.0.0.1 on a local instance), for rank 0's rendezvous store.

    Bound here and handed to the store, so the store listens on that address
    only (not on every interface) and no other process can take the port between
    choosing and binding it.
    """
    import ray

    address = ray.util.get_node_ip_address()
    listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((address, 0))
    listener.listen()
    return listener, address, listener.getsockname()[1]


def init_process_group(
    backend: str, address: str, port: int, rank: int, world_size: int, listener: socket.socket | None = None
) -> None:
    """Join the process group whose store rank 0 serves on `listener` (the socket `listen_on_node_ip` made)."""
    store = dist.TCPStore(
        address, port, world_size, is_master=rank == 0, timeout=PROCESS_GROUP_TIMEOUT,
        master_listen_fd=listener.detach() if listener is not None else None,
    )
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=PROCESS_GROUP_TIMEOUT)


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_parameters(module: nn.Module) -> None:
    """Make every rank start from rank 0's weights (and buffers)."""
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def rank_rows(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's contiguous slice of one minibatch's row indices; slice sizes differ by at most one row."""
    n = len(indices)
    if n < world_size:
        raise ValueError(
            f"a minibatch of {n} rows cannot be split over {world_size} learners; "
            "raise algo.minibatch_size or lower learners.num"
        )
    return indices[rank * n // world_size:(rank + 1) * n // world_size]


def average_gradients(params: Sequence[torch.Tensor], weight: float) -> None:
    """Replace each rank's gradients by their weighted sum over all ranks, in one all-reduce.

    `weight` is this rank's share of the minibatch's rows (the shares sum to 1),
    so for a loss that is a mean over rows the result is the gradient of the
    mean over the whole minibatch. One presence flag per parameter travels in
    the same buffer: a parameter no rank reached keeps `grad=None`.
    """
    device = params[0].device
    grads = [p.grad.reshape(-1) * weight if p.grad is not None else torch.zeros(p.numel(), device=device)
             for p in params]
    present = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype, device=device)
    flat = torch.cat([*grads, present])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    reached = flat[-len(params):].tolist()
    offset = 0
    for p, flag in zip(params, reached):
        numel = p.numel()
        p.grad = flat[offset:offset + numel].view_as(p) if flag > 0 else None
        offset += numel


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of a tensor over all ranks (for row-weighted metrics, so every rank reports the same numbers)."""
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
