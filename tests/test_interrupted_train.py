"""Killing ``textproj train`` at any moment never leaves a partial model.tpn behind.

A first run writes a model into a directory; a second run with another seed is started into the
same directory and killed (SIGKILL: no clean-up code runs) at several moments, early, while a
temporary file exists, and just after the new model.tpn appears. After every kill the directory's
model.tpn must load and be byte-for-byte the old model or the new one (training is
deterministic, so an uninterrupted run elsewhere gives the new one's bytes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_banking

import textproj
from textproj.data import write_dataset

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
    pytest.mark.slow,  # training subprocesses
]

OPTIONS = ["--epochs", "1", "-T", "8", "-d", "16", "--bottleneck", "16", "--filters", "16"]
CLI = [sys.executable, "-c", "from textproj.cli import app; app(prog_name='textproj')"]


def _train(data: Path, out: Path, seed: int) -> list[str]:
    # --force: the second run overwrites the first run's directory on purpose
    return [*CLI, "train", "--train", str(data), "--output", str(out), "--seed", str(seed),
            "--quiet", "--force", *OPTIONS]  # fmt: skip


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def _temp_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if ".tmp" in name]


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def _kill_when(args: list[str], ready: Callable[[float], str]) -> str:
    """Start ``args`` and SIGKILL it as soon as ``ready(seconds since start)`` names a reason;
    return that reason, or "finished" if the run ended first."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        while process.poll() is None:
            reason = ready(time.monotonic() - start)
            if reason:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
                return reason
            time.sleep(0.0005)
        return "finished"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)


def test_killed_training_leaves_the_old_or_the_new_model(tmp_path: Path) -> None:
    data = tmp_path / "train.tsv"
    write_dataset(tiny_banking(120), data)
    out, reference = tmp_path / "out", tmp_path / "reference"
    _run(_train(data, out, seed=0))
    _run(_train(data, reference, seed=1))
    old = (out / "model.tpn").read_bytes()
    new = (reference / "model.tpn").read_bytes()
    assert old != new
    model = out / "model.tpn"

    def model_written(before: tuple[int, int]) -> Callable[[float], str]:
        def ready(seconds: float) -> str:
            if any(name.startswith(".model.tpn.") for name in _temp_files(out)):
                return "model temporary file"
            return "model.tpn replaced" if _identity(model) != before else ""

        return ready

    moments: dict[str, Callable[[], Callable[[float], str]]] = {
        "early": lambda: lambda seconds: "starting up" if seconds > 0.5 else "",
        "first temporary file": lambda: lambda seconds: ",".join(_temp_files(out)),
        "model written": lambda: model_written(_identity(model)),
    }
    seen = {}
    for moment, make_ready in moments.items():
        reason = _kill_when(_train(data, out, seed=1), make_ready())
        content = model.read_bytes()
        assert content in (old, new), f"killed at {reason!r}: model.tpn is neither old nor new"
        seen[moment] = (reason, "new" if content == new else "old")
        clf = textproj.load(out)
        assert clf.predict(["I lost my card"])[0] in clf.labels
        with np.load(out / "trainer.npz", allow_pickle=False) as arrays:
            assert arrays.files  # a complete zip, old or new
        json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert seen["early"] == ("starting up", "old"), seen
    reason, content = seen["model written"]
    assert content == "new" or reason == "model temporary file", seen
