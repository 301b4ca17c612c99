"""Progress displays (Rich): the one home of where they go, and the training loop's, as loop
callbacks chained before the caller's."""

from __future__ import annotations

import dataclasses
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

PREPARE_BAR_FROM = 50_000  # featurisation shows a bar from this many training texts


def display(*columns: str | ProgressColumn, enabled: bool, transient: bool = False) -> Progress:
    """A progress display on stderr, shown only when ``enabled`` and stderr is a terminal:
    stdout carries a command's output alone, and a pipe or log file gets no bar lines (Rich
    prints a disabled-by-no-terminal display's last frame, or a blank line, when it stops)."""
    console = Console(stderr=True)
    return Progress(
        *columns,
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=transient,
    )


class TrainingProgress:
    """``with TrainingProgress(enabled, callbacks) as hooks``: ``hooks`` are ``callbacks`` with
    bars for featurisation (large inputs) and for each epoch's steps, with its dev scores
    (named ``metric``: accuracy, or micro-F1 for multi-label); where stderr is no terminal for
    the bars (a log file), one plain line per epoch there instead, so a log still shows them."""

    def __init__(self, enabled: bool, callbacks: Any, metric: str) -> None:
        self.callbacks = callbacks
        self.metric = metric
        self.bars = display(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            enabled=enabled,
        )
        self.task: Any = None
        self.prepare_task: Any = None
        self.epoch = 0
        # no terminal for the bars (a log file, a pipe): each epoch's summary as a plain line
        self.log = Console(stderr=True) if enabled and self.bars.disable else None

    def __enter__(self) -> Any:
        self.bars.__enter__()
        user = self.callbacks
        return dataclasses.replace(
            user,
            on_prepare=self._chain(self._prepare, user.on_prepare),
            on_epoch_start=self._chain(self._epoch_start, user.on_epoch_start),
            on_step=self._chain(self._step, user.on_step),
            on_epoch=self._chain(self._epoch, user.on_epoch),
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.bars.__exit__(kind, error, trace)

    @staticmethod
    def _chain(first: Any, second: Any) -> Any:
        if second is None:
            return first

        def both(*args: Any) -> None:
            first(*args)
            second(*args)

        return both

    def _prepare(self, done: int, total: int) -> None:
        if total < PREPARE_BAR_FROM:
            return
        if self.prepare_task is None:
            self.prepare_task = self.bars.add_task("featurise", total=total, status="texts")
        self.bars.update(self.prepare_task, completed=done)

    def _epoch_start(self, epoch: int, steps: int) -> None:
        self.epoch = epoch
        self.task = self.bars.add_task(f"epoch {epoch}", total=steps, status="")

    def _step(self, step: int, loss: float) -> None:
        self.bars.update(self.task, completed=step, status=f"loss {loss:.3f}")

    def _epoch(self, row: dict[str, Any]) -> None:
        status = f"loss {row['loss']:.3f}  {self.metric} {row['dev_projection']:.4f}"
        status = f"{status} (trainer {row['dev_trainer']:.4f})"
        self.bars.update(self.task, status=status)
        if self.log is not None:
            self.log.print(f"epoch {self.epoch}  {status}", highlight=False, markup=False)
