"""Data-parallel training (torch.distributed, gloo): ``textproj train --processes 2`` writes a
valid model with the single-process model's labels that scores well above chance; a killed
2-process run resumes to the uninterrupted run's model; ``textproj.train`` stays the training
function after ``import textproj.train`` (the torchrun entry module)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import per_intent

import textproj
from textproj.config import TrainConfig
from textproj.corpora import load_corpus
from textproj.data import read_dataset, write_dataset
from textproj.distributed import DataParallel
from textproj.layout import CHECKPOINT_NAME, METRICS_NAME, MODEL_NAME
from textproj.runtime import load

OPTIONS = ["-T", "8", "-d", "16", "--bottleneck", "16", "--filters", "16", "--batch-size", "32",
           "--trainer-buckets", "4096", "--quiet"]  # fmt: skip
CLI = [sys.executable, "-c", "from textproj.cli import app; app(prog_name='textproj')"]
N_LABELS = 5


def test_train_stays_callable_after_importing_the_entry_module() -> None:
    module = importlib.import_module("textproj.train")
    assert textproj.train is module and callable(textproj.train)
    data = per_intent(load_corpus("banking77", "train"), 2, 10)
    config = TrainConfig(epochs=1, batch_size=8, trainer_buckets=256, trainer_dim=4,
                         trainer_hidden=4, bottleneck=4, filters=4, num_projections=2,
                         bits_per_projection=8)  # fmt: skip
    result = textproj.train(data.texts, data.labels, config=config, progress=False)
    assert result.labels == sorted(set(data.labels))


def test_shards_cover_each_batch_once_with_shares_summing_to_one() -> None:
    batch = np.array([5, 3, 9, 1, 7])
    parts = [DataParallel(rank, 2).shard(batch) for rank in range(2)]
    assert np.concatenate([index for index, _ in parts]).tolist() == batch.tolist()
    assert sum(share for _, share in parts) == 1.0
    sizes = sorted(DataParallel(rank, 2).shard(np.array([4]))[0].size for rank in range(2))
    assert sizes == [0, 1]  # a batch smaller than the world leaves a rank without items


def _cli(args: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "train", *args], capture_output=True, text=True, timeout=900,
                          **kwargs)  # fmt: skip


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it (torchrun starts its workers in sessions of
    their own, so killing the launcher's group would leave them running)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.tsv"
    write_dataset(per_intent(load_corpus("banking77", "train"), N_LABELS, 40), path)
    return path


@pytest.mark.slow
def test_two_processes_write_a_model_above_chance_with_the_same_labels(
    corpus: Path, tmp_path: Path
) -> None:
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        args = ["--train", str(corpus), "--output", str(out), "--epochs", "6", *OPTIONS]
        result = _cli([*args, "--processes", str(processes)])
        assert result.returncode == 0, result.stderr
        runs[processes] = json.loads((out / METRICS_NAME).read_text())
        model = load(out / MODEL_NAME)
        assert model.labels == runs[processes]["labels"]
    assert runs[2]["labels"] == runs[1]["labels"]
    assert runs[2]["distributed"]["processes"] == 2 and "distributed" not in runs[1]
    assert runs[2]["projection"]["dev"]["accuracy"] >= 3 / N_LABELS  # chance is 1 / N_LABELS
    assert not (tmp_path / "p2" / CHECKPOINT_NAME).exists()
    shared = tmp_path / "shared"  # a trainer frozen halfway: its gradients skip the reduction
    args = ["--train", str(corpus), "--output", str(shared), "--epochs", "6", *OPTIONS]
    result = _cli([*args, "--trainer-share", "0.5", "--processes", "2"])
    assert result.returncode == 0, result.stderr
    history = json.loads((shared / METRICS_NAME).read_text())["history"]
    assert history[3]["dev_trainer"] == history[4]["dev_trainer"] == history[5]["dev_trainer"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc (Linux)")
def test_killed_two_process_run_resumes_to_the_uninterrupted_model(
    corpus: Path, tmp_path: Path
) -> None:
    args = ["--train", str(corpus), "--epochs", "12", "--checkpoint-every", "0", "--processes",
            "2", *OPTIONS]  # fmt: skip
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert _cli([*args, "--output", str(whole)]).returncode == 0
    process = subprocess.Popen([*CLI, "train", *args, "--output", str(cut)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               )  # fmt: skip
    deadline = time.monotonic() + 600
    while not (cut / CHECKPOINT_NAME).exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _kill_tree(process.pid)
    process.wait()
    assert (cut / CHECKPOINT_NAME).exists() and not (cut / MODEL_NAME).exists()
    resumed = _cli(["--resume", str(cut), "--processes", "2", "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert (cut / MODEL_NAME).read_bytes() == (whole / MODEL_NAME).read_bytes()
    history = json.loads((cut / METRICS_NAME).read_text())["history"]
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))
    assert torch.distributed.is_available()


def _workers_writing(out: Path) -> list[int]:
    """The pids of the processes whose command line names ``out`` (torchrun workers of a run)."""
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and str(out).encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc (Linux)")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_two_process_run_says_how_to_resume_and_resumes_in_one_process(
    stop: signal.Signals, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["--train", str(corpus), "--output", str(out), "--epochs", "40", "--patience", "40",
            "--checkpoint-every", "0", "--processes", "2", *OPTIONS]  # fmt: skip
    # Ctrl-C raises KeyboardInterrupt even where this test runs with SIGINT ignored
    interruptible = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
                     "signal.default_int_handler); " + CLI[-1]]  # fmt: skip
    process = subprocess.Popen([*interruptible, "train", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not (out / CHECKPOINT_NAME).exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(stop)  # to the launcher only, as Ctrl-C or `kill` do
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + stop, stderr
    assert stderr.splitlines() == [
        f"interrupted; the latest checkpoint is {out / CHECKPOINT_NAME}: continue with "
        f"`textproj train --resume {out}`"
    ], stderr
    assert _workers_writing(out) == [] and not (out / MODEL_NAME).exists()
    assert [p.name for p in out.iterdir()] == [CHECKPOINT_NAME]
    resumed = _cli(["--resume", str(out), "--quiet"])  # one process resumes a 2-process run
    assert resumed.returncode == 0, resumed.stderr
    assert load(out / MODEL_NAME).labels == sorted(set(read_dataset(corpus).labels))
    assert not (out / CHECKPOINT_NAME).exists()


# A sitecustomize for the workers: each ignores SIGINT, as does a worker blocked inside
# init_process_group for a peer that the same Ctrl-C ended (SIGINT waits for Python code to run)
# or one that lost its KeyboardInterrupt while Python started, says it is up, and waits.
DEAF_WORKER = """import os, pathlib, signal, time
if "RANK" in os.environ:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pathlib.Path(os.environ["TEST_READY_DIR"], os.environ["RANK"]).touch()
    time.sleep(900)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc (Linux)")
def test_ctrl_c_ends_workers_that_cannot_take_it(corpus: Path, tmp_path: Path) -> None:
    """Ctrl-C to the launcher ends workers that do not act on SIGINT: torchrun sends them
    SIGTERM. Was: it passed SIGINT on and waited for them, its shutdown timeout (30 s by
    default; 900 s here) before SIGKILL, so Ctrl-C at the moment the workers start hung."""
    hook, ready, out = tmp_path / "hook", tmp_path / "ready", tmp_path / "run"
    hook.mkdir()
    ready.mkdir()
    (hook / "sitecustomize.py").write_text(DEAF_WORKER)
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, TEST_READY_DIR=str(ready),
               TORCH_ELASTIC_SHUTDOWN_TIMEOUT="900")  # fmt: skip
    interruptible = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
                     "signal.default_int_handler); " + CLI[-1]]  # fmt: skip
    args = ["--train", str(corpus), "--output", str(out), "--processes", "2", *OPTIONS]
    process = subprocess.Popen([*interruptible, "train", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while sorted(p.name for p in ready.iterdir()) != ["0", "1"]:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # to the launcher only, as Ctrl-C does
        _, stderr = process.communicate(timeout=120)
        left = _workers_writing(out)
    finally:
        _kill_tree(process.pid)
        for pid in _workers_writing(out):  # had the launcher left them running
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == [
        "interrupted before a checkpoint was written (one is written at the end of the first "
        "epoch after every --checkpoint-every seconds)"
    ]
    assert left == [] and not out.exists()


def test_a_worker_whose_launcher_is_gone_ends_without_a_word(corpus: Path, tmp_path: Path):
    """A worker started for a launcher that is not its parent (gone: a stop signal came while
    torchrun started the workers, before it recorded this one) exits 130 at once, silent,
    writing nothing; was: it went on, into init_process_group for a store that was gone (here,
    outside torchrun, it trained)."""
    out = tmp_path / "run"
    env = dict(os.environ, TEXTPROJ_LAUNCHER="1")  # pid 1 is not this worker's parent
    worker = [sys.executable, "-m", "textproj.train", "--train", str(corpus), "--output",
              str(out), *OPTIONS]  # fmt: skip
    done = subprocess.run(worker, capture_output=True, text=True, env=env, timeout=600)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")
    assert not out.exists()


@pytest.mark.slow
def test_bad_data_under_two_processes_is_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nno label here\n", encoding="utf-8")
    result = _cli(["--train", str(bad), "--output", str(tmp_path / "out"), "--processes", "2"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}:2: row has 1 field(s), expected at least 2"
    ]
