"""Killing ``textproj train`` at any moment leaves the old set of output files or the new one.

A first run writes a directory; a second run with another seed is started into the same
directory and killed (SIGKILL: no clean-up code runs) early, while its staging directory exists,
and at random moments up to past its end. After every kill, model.tpn, trainer.npz,
trainer.json and metrics.json must all come from one run, and model.tpn must be byte-for-byte
the old model or the new one (training is deterministic, so an uninterrupted run elsewhere gives
the new one's bytes). A final complete run leaves no staging directory or temporary file.
"""

from __future__ import annotations

import json
import os
import random
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
from textproj.model_file import read_model

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


def _run_seeds(out: Path) -> set[int]:
    """The seed each file of the output set says it was trained with (a complete set: one)."""
    header, _ = read_model(out / "model.tpn")
    with np.load(out / "trainer.npz", allow_pickle=False) as arrays:
        assert arrays.files  # a complete zip
    trainer = json.loads((out / "trainer.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["model_bytes"] == (out / "model.tpn").stat().st_size
    return {
        header["train_config"]["seed"],
        trainer["train_config"]["seed"],
        metrics["config"]["train"]["seed"],
    }


@pytest.mark.slow
def test_killed_training_leaves_the_old_or_the_new_set_of_files(tmp_path: Path) -> None:
    data = tmp_path / "train.tsv"
    write_dataset(tiny_banking(120), data)
    out, reference = tmp_path / "out", tmp_path / "reference"
    _run(_train(data, out, seed=0))
    started = time.monotonic()
    _run(_train(data, reference, seed=1))
    full_run = time.monotonic() - started
    model_bytes = {0: (out / "model.tpn").read_bytes(), 1: (reference / "model.tpn").read_bytes()}
    assert model_bytes[0] != model_bytes[1]

    def staging_exists(seconds: float) -> str:
        return (
            "staging directory"
            if any(p.name.startswith(".out.") for p in tmp_path.iterdir())
            else ""
        )

    def after(at: float) -> Callable[[float], str]:
        return lambda seconds: f"random, {at:.2f} s" if seconds > at else ""

    rng = random.Random(0)
    moments = [after(rng.uniform(0.2, 1.1) * full_run) for _ in range(3)]
    seen = []
    for ready in [lambda s: "starting up" if s > 0.3 else "", staging_exists, *moments]:
        reason = _kill_when(_train(data, out, seed=1), ready)
        seeds = _run_seeds(out)
        assert len(seeds) == 1, f"killed at {reason!r}: files of two runs {seeds}"
        (seed,) = seeds
        assert (out / "model.tpn").read_bytes() == model_bytes[seed], reason
        seen.append((reason, seed))
        clf = textproj.load(out)
        assert clf.predict(["I lost my card"])[0] in clf.labels
    assert seen[0] == ("starting up", 0), seen
    _run(_train(data, out, seed=1))
    assert _run_seeds(out) == {1}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert not leftovers and not _temp_files(out), leftovers


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_says_how_to_resume_and_the_resume_finishes(tmp_path: Path) -> None:
    data = tmp_path / "train.tsv"
    write_dataset(tiny_banking(300), data)
    out = tmp_path / "run"
    long_run = ["--epochs", "40", "--patience", "40", "--trainer-buckets", "4096"]
    long_run += ["--checkpoint-every", "0"]  # a checkpoint at every epoch end
    # Ctrl-C raises KeyboardInterrupt even when this test runs where SIGINT is ignored (a
    # background job, which the child would otherwise inherit)
    interruptible = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
                     "signal.default_int_handler); " + CLI[-1]]  # fmt: skip
    args = [*interruptible, "train", "--train", str(data), "--output", str(out), "--quiet"]
    process = subprocess.Popen(
        [*args, *OPTIONS[2:], *long_run], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").is_file():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert f"continue with `textproj train --resume {out}`" in " ".join(stderr.split())
    assert "Traceback" not in stderr and not _temp_files(out)
    _run([*CLI, "train", "--resume", str(out), "--quiet"])
    assert textproj.load(out).labels and not (out / "checkpoint.pt").exists()
    assert not _temp_files(out)
