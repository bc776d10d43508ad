"""Multi-process data-parallel training (torch DistributedDataParallel): who this process is,
how the data is split between processes, and the launcher behind ``seqlab train --nproc N``.

A process group is set up from the environment torchrun (or :func:`spawn`) provides:
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``. The backend is
gloo on the CPU and nccl on CUDA (each process takes ``cuda:LOCAL_RANK``).

``trainer.batch_size`` is the **global** batch: one optimizer step sees ``batch_size`` items
whatever the number of processes N, so results do not depend on N. The split:

* batches that know how to cut themselves (:class:`Shardable`, e.g. the language model's
  BPTT batch, whose rows are streams carried from batch to batch) are made at the global
  size and every process takes its rows: ``batch.shard(rank, world)``;
* any other batch is made at ``batch_size // N`` and process ``r`` takes the ``r``-th of
  every N consecutive ones (like ``DistributedSampler``: the task's order, deterministic
  by seed and epoch, is the same in every process). For a task whose batches are the
  shuffled order cut into consecutive pieces, N pieces are exactly one global batch; for
  bucketed batching a step equals a single process with ``batch_size // N`` and
  ``trainer.accumulate`` times N.

A process with no batch left at an epoch's end trains on a copy of its previous batch
with weight 0, so that every process takes part in every gradient all-reduce.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seqlab.errors import ConfigError, SeqlabError

TIMEOUT = datetime.timedelta(minutes=30)


@runtime_checkable
class Shardable(Protocol):
    """A batch that can be cut into ``world`` parts: ``shard(rank, world)`` is part ``rank``
    (the rows of a batch of streams)."""

    def shard(self, rank: int, world: int) -> Any: ...


@dataclass(frozen=True)
class Context:
    """This process's place in the group (rank 0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs, writes metrics and checkpoints."""
        return self.rank == 0


def context() -> Context:
    """The current process group's context (a single process when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Context(dist.get_rank(), dist.get_world_size(), local)


def requested_world() -> int:
    """``WORLD_SIZE`` from the environment (torchrun, :func:`spawn`), 1 when unset."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def init_from_env(device: str) -> bool:
    """Join the process group the environment describes (gloo on the CPU, nccl on CUDA);
    returns True if this call created it (and so should destroy it). On CUDA each process
    takes ``cuda:LOCAL_RANK`` as its current device, so ``cuda`` in a config means it."""
    if requested_world() <= 1 or dist.is_initialized():
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE is set but {', '.join(missing)} is not: launch with torchrun or "
            "seqlab train --nproc N"
        )
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return True


def shutdown() -> None:
    """Leave the process group. The models a process trained (their DDP reducers hold the
    group) are collected first: a reducer left to the collector at interpreter exit,
    after the group is gone, aborted the process now and then ("terminate called without
    an active exception", SIGABRT, in about one exit in ten)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def rank_batch_size(batch_size: int, world: int) -> int:
    """The per-process batch of a global ``batch_size``; it must divide evenly."""
    if batch_size % world:
        raise ConfigError(
            f"trainer.batch_size ({batch_size}) is the global batch and must be divisible by "
            f"the number of processes ({world})"
        )
    return batch_size // world


def rank_batches(
    full: Callable[[], Iterable[Any]],
    per_rank: Callable[[], Iterable[Any]],
    ctx: Context,
) -> Iterator[Any | None]:
    """This process's part of each global batch of an epoch, in order: one item per global
    batch (``None`` where the epoch's last global batch has no part for this process).

    ``full()`` makes the epoch's batches at the global size, ``per_rank()`` at the
    per-process size; the first batch of ``full()`` decides which is cut (see the module
    docstring)."""
    batches = iter(full())
    first = next(batches, None)
    if first is None:
        return
    if isinstance(first, Shardable):
        yield first.shard(ctx.rank, ctx.world)
        for batch in batches:
            yield batch.shard(ctx.rank, ctx.world)
        return
    del first, batches
    group: list[Any] = []
    for batch in per_rank():
        group.append(batch)
        if len(group) == ctx.world:
            yield group[ctx.rank]
            group = []
    if group:
        yield group[ctx.rank] if ctx.rank < len(group) else None


# ---------------------------------------------------------------------- collectives


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over the processes (float64)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    result: list[float] = tensor.tolist()
    return result


def all_min(value: float, device: torch.device) -> float:
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return float(tensor.item())


def all_any(flags: list[bool], device: torch.device) -> list[bool]:
    """Element-wise "any process says yes" (stop requests, time budgets)."""
    return [value > 0 for value in all_sum([float(f) for f in flags], device)]


def gather(obj: Any) -> list[Any]:
    """``obj`` of every process, in rank order (on every process)."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


T = TypeVar("T")


def main_first(ctx: Context, on_main: Callable[[], T], on_others: Callable[[], T]) -> T:
    """Rank 0 runs ``on_main`` (writing files the others read), then the others run
    ``on_others``; an error of rank 0's is raised in every process (not a hang)."""
    if not ctx.active:
        return on_main()
    if ctx.main:
        try:
            result = on_main()
        except SeqlabError as err:
            broadcast(err)
            raise
        except BaseException:
            broadcast(SeqlabError("process 0 failed; see its error"))
            raise
        broadcast(None)
        return result
    failure = broadcast(None)
    if failure is not None:
        raise failure
    return on_others()


# ---------------------------------------------------------------------- launcher


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(nproc: int, target: Callable[..., None], *args: Any) -> None:
    """Run ``target(*args)`` in ``nproc`` fresh processes (start method spawn) on this
    machine, with the environment torchrun would give them (rendezvous on 127.0.0.1)."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    port = free_port()
    mp.start_processes(
        _entry, args=(nproc, port, target, args), nprocs=nproc, join=True, start_method="spawn"
    )


def _entry(
    local_rank: int, nproc: int, port: int, target: Callable[..., None], args: tuple[Any, ...]
) -> None:
    os.environ.update(
        {
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    target(*args)
    # A finished process leaves without the interpreter's teardown: there, gloo's threads
    # have now and then aborted a process whose work was done and written (SIGABRT,
    # "terminate called without an active exception"), failing the whole launch.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
