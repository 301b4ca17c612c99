"""Data-parallel training over processes and machines with ``torch.distributed`` (under
``torchrun``): every rank holds both networks, takes its own slice of each global batch, and the
ranks average their gradients before the one optimiser step, so all ranks keep equal weights.

The global batch stays ``TrainConfig.batch_size`` whatever the number of processes: rank ``r``
of ``N`` takes the ``r``-th of ``N`` near-equal contiguous slices of the batch and scales its
loss by its share of the batch, so the summed gradients are the global batch's mean gradient,
the one a single process computes. The learning rate therefore stays as configured (no linear
scaling rule is needed: the step is the same step). Only the dropout noise differs by rank.

Only rank 0 scores dev; its scores are broadcast, so early stopping is decided once. Only rank 0
writes checkpoints and the output directory (``textproj.training``).

Backend: gloo (CPU). The training engine places its tensors on the CPU, so NCCL (GPU tensors
only) is not offered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

BACKEND = "gloo"
WORLD_ENV = "WORLD_SIZE"  # set by torchrun for every worker
BUCKETED = True  # one flat all-reduce of all gradients per step (benchmarks/scale.py measures)


def launched() -> bool:
    """Whether this process is a worker that torchrun started."""
    return WORLD_ENV in os.environ


def initialise() -> None:
    """Join the process group torchrun describes in the environment (no-op outside torchrun)."""
    if launched() and not dist.is_initialized():
        dist.init_process_group(BACKEND)


def shutdown() -> None:
    """Leave the process group, if this process joined one, once every rank is done (rank 0
    evaluates and writes after the others finish stepping)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) outside a process group."""
    if not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def is_main() -> bool:
    """Whether this process is rank 0 (the one that evaluates and writes files)."""
    return world()[0] == 0


@dataclass
class DataParallel:
    """One rank's share of the data-parallel step: its batch slice and the gradient average."""

    rank: int
    size: int
    bucketed: bool = BUCKETED
    reduce_seconds: float = 0.0  # time spent in gradient all-reduces
    reductions: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, index: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's contiguous slice of a global batch and its share of the batch."""
        bounds = np.linspace(0, len(index), self.size + 1).round().astype(int)
        local = index[bounds[self.rank] : bounds[self.rank + 1]]
        return local, len(local) / max(1, len(index))

    def reduce_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Sum every rank's (share-weighted) gradients, in one flat buffer or one per tensor."""
        started = time.perf_counter()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        if self.bucketed:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            reduced = torch.split(flat, [g.numel() for g in grads])
            for parameter, grad in zip(parameters, reduced, strict=True):
                parameter.grad = grad.view_as(parameter)
        else:
            for parameter, grad in zip(parameters, grads, strict=True):
                dist.all_reduce(grad)
                parameter.grad = grad
        self.reduce_seconds += time.perf_counter() - started
        self.reductions += 1

    def start_epoch(self, step: Any, epoch: int) -> None:
        """Ranks other than 0 draw each epoch's dropout from a stream of (seed, rank, epoch), so
        a run resumed at an epoch's end (whose checkpoint holds rank 0's stream) goes on as the
        uninterrupted run would."""
        if self.rank > 0:
            with torch.random.fork_rng(devices=[]):
                stream = np.random.SeedSequence([step.config.seed, self.rank, epoch])
                torch.manual_seed(int(stream.generate_state(1)[0]))
                step.rng_state = torch.get_rng_state()

    def from_main(self, names: Sequence[str], compute: Callable[[], dict[str, float]]) -> dict:
        """Rank 0's ``compute()`` (floats named ``names``) on every rank: decided once."""
        values = torch.zeros(len(names), dtype=torch.float64)
        if self.is_main:
            result = compute()
            values = torch.tensor([result[name] for name in names], dtype=torch.float64)
        dist.broadcast(values, src=0)
        return {name: float(v) for name, v in zip(names, values.tolist(), strict=True)}

    def broadcast_parameters(self, modules: Sequence[torch.nn.Module]) -> None:
        """Make every rank start from rank 0's weights."""
        for module in modules:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def report(self) -> dict[str, float]:
        """What metrics.json records of the parallel run."""
        return {
            "processes": self.size,
            "bucketed_allreduce": self.bucketed,
            "allreduce_seconds": round(self.reduce_seconds, 3),
            "allreduce_ms_per_step": round(1000 * self.reduce_seconds / max(1, self.reductions), 3),
        }


def attach(step: Any) -> DataParallel | None:
    """Make ``step`` (a ``training.JointStep``) one rank of a data-parallel run when this process
    is in a process group of more than one, starting from rank 0's weights. None in a single
    process."""
    rank, size = world()
    if size == 1:
        return None
    parallel = DataParallel(rank, size)
    parallel.broadcast_parameters(list(step.networks().values()))
    step.parallel = parallel
    return parallel


def launch(processes: int, train_args: Sequence[str]) -> int:
    """Run ``processes`` workers of ``textproj train train_args`` on this machine through
    ``torch.distributed.run`` (torchrun's own launcher); their exit code."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={processes}", "-m", "textproj.train", *train_args,
    ]  # fmt: skip
    return subprocess.run(command, check=False).returncode
