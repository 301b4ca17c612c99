"""``torchrun --nproc-per-node N -m textproj.train [options]``: one worker of a data-parallel
``textproj train`` (the same options; docs/scale.md). ``textproj train --processes N`` starts
the same workers through ``torch.distributed.run``.

The package's ``textproj.train`` is the training function; importing this module would replace
that attribute with the module, so the module is callable and its call is that function.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import types
from collections.abc import Sequence
from typing import Any

PR_SET_PDEATHSIG = 1  # Linux prctl: the signal this process gets when its parent ends


def main(argv: Sequence[str] | None = None) -> None:
    """Join torchrun's process group, run ``textproj train`` with ``argv``, leave the group
    (exit 1 if another rank failed while this one finished: that rank reported why). Ctrl-C
    before training starts (while torch loads) exits 130 without a traceback."""
    from textproj.cli import INTERRUPTED

    _end_with_the_launcher()
    try:
        _join_and_train(argv)
    except KeyboardInterrupt:
        raise SystemExit(INTERRUPTED) from None


def _end_with_the_launcher() -> None:
    """A worker of ``textproj train --processes`` exits 130 without a word if its launcher is
    gone, and on Linux gets SIGTERM when it goes: a stop signal to the launcher while
    torchrun starts the workers can leave one that torchrun never recorded, which would wait
    in ``init_process_group`` for a store that is gone (a quarter of an hour and more), holding
    the launcher's stderr open (a pipe to ``tee`` or a caller never saw it end)."""
    from textproj.cli import INTERRUPTED, LAUNCHER_ENV

    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher:
        return
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(launcher):
        raise SystemExit(INTERRUPTED)


def _join_and_train(argv: Sequence[str] | None) -> None:
    from textproj import distributed
    from textproj.cli import app

    distributed.initialise()
    finished = False
    try:
        app(["train", *(sys.argv[1:] if argv is None else argv)], prog_name="textproj.train")
    except SystemExit as stop:
        finished = stop.code in (0, None)
        raise
    finally:
        if not distributed.shutdown(wait=finished):
            raise SystemExit(1)


class _CallableModule(types.ModuleType):
    """This module, callable as ``textproj.training.train``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from textproj.training import train

        return train(*args, **kwargs)


if __name__ == "__main__":
    main()
else:
    sys.modules[__name__].__class__ = _CallableModule
