"""Data-parallel training over processes and machines with ``torch.distributed`` (under
``torchrun``): every rank holds both networks, takes its own slice of each global batch, and the
ranks sum their share-weighted gradients before the one optimiser step, so all keep equal weights.

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

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from textproj.errors import ConfigError

BACKEND = "gloo"
WORLD_ENV = "WORLD_SIZE"  # set by torchrun for every worker
ALLREDUCE_MODES = ("flat", "tensor", "rows")  # how gradients are summed (DataParallel)
ALLREDUCE = "flat"  # the fastest measured (docs/scale.md; benchmarks/scale.py allreduce)
ALLREDUCE_ENV = "TEXTPROJ_ALLREDUCE"  # benchmarks override the mode with this
ELASTIC_LOGGER = "torch.distributed.elastic"  # torchrun's log, hushed under --processes
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")  # those torchrun's launcher handles


def launched() -> bool:
    """Whether this process is a worker that torchrun started."""
    return WORLD_ENV in os.environ


def initialise() -> None:
    """Join the process group torchrun describes in the environment (no-op outside torchrun)."""
    if launched() and not dist.is_initialized():
        dist.init_process_group(BACKEND)


def shutdown(wait: bool = True) -> bool:
    """Leave the process group, if this process joined one; with ``wait``, once every rank is
    done (rank 0 evaluates and writes after the others finish stepping). A rank that stopped on
    an error or a signal leaves without waiting: the others may be gone or inside another
    collective, where a barrier fails or hangs. False: a rank left while this one waited."""
    if not dist.is_initialized():
        return True
    try:
        if wait:
            dist.barrier()
        return True
    except RuntimeError:  # torch's DistBackendError: a peer closed its connection
        return False
    finally:
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) outside a process group."""
    if not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if dist.is_initialized():
        dist.barrier()


def is_main() -> bool:
    """Whether this process is rank 0 (the one that evaluates and writes files)."""
    return world()[0] == 0


@dataclass
class DataParallel:
    """One rank's share of the data-parallel step: its batch slice and the gradient average."""

    rank: int
    size: int
    mode: str = ALLREDUCE
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

    def reduce_gradients(
        self, parameters: Sequence[torch.nn.Parameter], table: torch.nn.Parameter | None = None
    ) -> None:
        """Sum every rank's (share-weighted) gradients: all in one flat buffer ("flat"), one
        all-reduce per tensor ("tensor"), or ("rows") the hashed ``table``'s touched rows
        gathered from every rank and the other tensors flat."""
        started = time.perf_counter()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        if self.mode == "tensor":
            for grad in grads:
                dist.all_reduce(grad)
        else:
            dense = [
                i for i, p in enumerate(parameters) if not (self.mode == "rows" and p is table)
            ]
            flat = torch.cat([grads[i].reshape(-1) for i in dense])
            dist.all_reduce(flat)
            for i, grad in zip(dense, flat.split([grads[i].numel() for i in dense]), strict=True):
                grads[i] = grad.view_as(parameters[i])
            if len(dense) < len(parameters):
                i = next(i for i, p in enumerate(parameters) if p is table)
                grads[i] = self._gather_rows(grads[i])
        for parameter, grad in zip(parameters, grads, strict=True):
            parameter.grad = grad
        self.reduce_seconds += time.perf_counter() - started
        self.reductions += 1

    def _gather_rows(self, grad: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of a gradient with few non-zero rows, from each rank's rows."""
        rows = torch.nonzero(grad.ne(0).any(dim=1)).squeeze(1)
        counts = [torch.zeros(1, dtype=torch.int64) for _ in range(self.size)]
        dist.all_gather(counts, torch.tensor([len(rows)]))
        most = int(max(counts).item())
        padded_rows = torch.zeros(most, dtype=torch.int64)
        padded_rows[: len(rows)] = rows
        values = torch.zeros(most, grad.shape[1], dtype=grad.dtype)
        values[: len(rows)] = grad[rows]
        all_rows = [torch.empty_like(padded_rows) for _ in range(self.size)]
        all_values = [torch.empty_like(values) for _ in range(self.size)]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_values, values)
        total = torch.zeros_like(grad)
        for count, rank_rows, rank_values in zip(counts, all_rows, all_values, strict=True):
            n = int(count.item())
            total.index_add_(0, rank_rows[:n], rank_values[:n])
        return total

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
            "allreduce": self.mode,
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
    mode = os.environ.get(ALLREDUCE_ENV, ALLREDUCE)
    if mode not in ALLREDUCE_MODES:
        raise ConfigError(f"{ALLREDUCE_ENV}={mode!r}: not one of {', '.join(ALLREDUCE_MODES)}")
    parallel = DataParallel(rank, size, mode)
    parallel.broadcast_parameters(list(step.networks().values()))
    step.parallel = parallel
    return parallel


@contextmanager
def _workers_stopped_by_sigterm(received: list[int]) -> Iterator[None]:
    """While torchrun runs in this process, a stop signal to it (``STOP_SIGNALS``) is noted in
    ``received`` and torchrun sends the workers SIGTERM, not the signal itself. SIGTERM ends a
    worker at once wherever it is; Ctrl-C's SIGINT waits for Python code to run, so a worker
    inside ``init_process_group``, waiting for a peer the same Ctrl-C had ended, held the
    launcher for torchrun's 30 s shutdown timeout, and a worker still starting Python printed a
    traceback or lost the KeyboardInterrupt. torchrun installs its handler by the name
    ``_terminate_process_handler`` (torch 2.4 to 2.13), replaced here (left alone where torch
    has no such name); this process's handlers are restored after."""
    from torch.distributed.elastic.multiprocessing import api

    if not hasattr(api, "_terminate_process_handler"):  # a torch that names it otherwise
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise api.SignalException(f"got signal {signum}", sigval=signal.SIGTERM)

    signals = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    torchrun_handler = api._terminate_process_handler
    api._terminate_process_handler = stop
    try:
        yield
    finally:
        api._terminate_process_handler = torchrun_handler
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def launch(processes: int, train_args: Sequence[str]) -> int:
    """Run ``processes`` workers of ``textproj train train_args`` on this machine with
    ``torch.distributed.run`` (torchrun's own launcher, in this process); the exit code of the
    first worker that failed (0: none), or 128 + the signal (Ctrl-C: 130) that stopped this
    process, after which torchrun ends the workers with SIGTERM before it returns. Workers
    report their own errors; torchrun's report of a failed worker is kept to one line, its log
    to none."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # what torchrun sets, without its banner
    command = [
        "--standalone", f"--nproc-per-node={processes}", "-m", "textproj.train", *train_args,
    ]  # fmt: skip
    elastic = [  # torchrun's loggers each have a level of their own
        logging.getLogger(name)
        for name in [ELASTIC_LOGGER, *logging.root.manager.loggerDict]
        if name.startswith(ELASTIC_LOGGER)
    ]
    levels = [logger.level for logger in elastic]
    for logger in elastic:
        logger.setLevel(logging.CRITICAL)
    received: list[int] = []
    try:
        with _workers_stopped_by_sigterm(received):
            run(parse_args(command))
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        if failure.exitcode not in (1, 2):  # 1, 2: the worker printed its own error line
            print(f"error: worker {rank} failed (exit code {failure.exitcode})", file=sys.stderr)
        return failure.exitcode if failure.exitcode > 0 else 1
    except SignalException as error:
        return 128 + (received[0] if received else int(error.sigval))
    finally:
        for logger, level in zip(elastic, levels, strict=True):
            logger.setLevel(level)
    return 0
