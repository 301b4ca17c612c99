"""Streaming input (``textproj.streaming``): a streamed run gives the in-memory run's model
bytes (block shuffle, chunked cache writes and page release exercised with small blocks); a
stale or damaged cache is rebuilt; a killed streaming run resumes; ``iter_dataset`` reads the
rows and errors ``read_dataset`` does, a block at a time."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from conftest import TINY_CONFIG, tiny_banking

from textproj import data as data_module
from textproj import inputs, streaming
from textproj.config import FeatureConfig, TrainConfig
from textproj.corpora import load_corpus
from textproj.data import DataError, Dataset, iter_dataset, read_dataset, write_dataset
from textproj.errors import CheckpointError, ConfigError
from textproj.layout import CHECKPOINT_NAME, MODEL_NAME
from textproj.projector import Projector
from textproj.training import train

CONFIG = TrainConfig(**{**TINY_CONFIG, "epochs": 2})


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shuffle blocks, featurisation chunks and read blocks far smaller than the data."""
    monkeypatch.setattr(inputs, "SHUFFLE_BLOCK", 64)
    monkeypatch.setattr(streaming, "SHUFFLE_BLOCK", 64)
    monkeypatch.setattr(streaming, "PREPARE_CHUNK", 50)
    monkeypatch.setattr(data_module, "STREAM_BLOCK_BYTES", 1000)


def _model(out: Path) -> bytes:
    return (out / MODEL_NAME).read_bytes()


@pytest.mark.parametrize("design", ["token", "text"])
def test_streamed_run_gives_the_in_memory_model(
    design: str, small_blocks: None, tmp_path: Path
) -> None:
    data, test = tiny_banking(400), tiny_banking(460)
    test = Dataset(test.texts[400:], test.labels[400:], "test")
    write_dataset(data, tmp_path / "train.tsv.gz")
    write_dataset(test, tmp_path / "test.jsonl")
    config = TrainConfig(**{**TINY_CONFIG, "design": design, "epochs": 2})
    memory = train(data, None, test, config=config, output_dir=tmp_path / "mem", progress=False)
    streamed = train(
        tmp_path / "train.tsv.gz", None, tmp_path / "test.jsonl", config=config,
        output_dir=tmp_path / "stream", progress=False, stream_cache=tmp_path / "cache",
    )  # fmt: skip
    assert _model(tmp_path / "stream") == _model(tmp_path / "mem")
    assert streamed.metrics["projection"] == memory.metrics["projection"]
    assert streamed.labels == memory.labels


def test_streamed_unlabeled_texts_give_the_in_memory_model(
    small_blocks: None, tmp_path: Path
) -> None:
    import gzip

    data = tiny_banking(300)
    unlabeled = list(load_corpus("banking77", "test").texts[:150])
    write_dataset(data, tmp_path / "train.tsv")
    with gzip.open(tmp_path / "unlabeled.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join([*unlabeled[:70], "", "   ", *unlabeled[70:]]) + "\n")  # blanks: skipped
    config = TrainConfig(**{**TINY_CONFIG, "epochs": 2})
    memory = train(
        data, config=config, output_dir=tmp_path / "mem", progress=False, unlabeled=unlabeled
    )
    streamed = train(
        tmp_path / "train.tsv", config=config, output_dir=tmp_path / "stream", progress=False,
        stream_cache=tmp_path / "cache", unlabeled=tmp_path / "unlabeled.txt.gz",
    )  # fmt: skip
    assert streamed.metrics["transfer_texts"] == memory.metrics["transfer_texts"] == 150
    assert _model(tmp_path / "stream") == _model(tmp_path / "mem")
    from_file = train(  # in memory, a Path is read as the file of texts it names
        data, config=config, progress=False, unlabeled=tmp_path / "unlabeled.txt.gz"
    )
    assert from_file.model_bytes() == _model(tmp_path / "mem")
    with pytest.raises(ConfigError, match="streamed run reads its unlabeled texts from a file"):
        train(
            tmp_path / "train.tsv", config=config, progress=False,
            stream_cache=tmp_path / "cache", unlabeled=unlabeled,
        )  # fmt: skip
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty.txt: no texts"):
        train(
            tmp_path / "train.tsv", config=config, progress=False,
            stream_cache=tmp_path / "cache", unlabeled=tmp_path / "empty.txt",
        )  # fmt: skip


def test_a_streamed_small_set_warns_that_it_gets_no_augmented_copies(tmp_path: Path) -> None:
    write_dataset(tiny_banking(200), tmp_path / "train.tsv")
    files = {"train": tmp_path / "train.tsv"}
    default = TrainConfig(**{**TINY_CONFIG, "augment_copies": None})
    with pytest.warns(
        UserWarning, match=r"train.tsv: streamed, so its 180 training texts get none"
    ):
        streaming.prepare(files, _projector(default), default, FeatureConfig(), tmp_path / "c")
    asked = TrainConfig(**{**TINY_CONFIG, "augment_copies": 1})
    with pytest.raises(ConfigError, match="augment_copies=1: a streamed run makes no augmented"):
        streaming.prepare(files, _projector(asked), asked, FeatureConfig(), tmp_path / "c")


def test_a_streamed_set_too_small_for_a_dev_split_is_refused(tmp_path: Path) -> None:
    write_dataset(Dataset(["hello there", "bye now"], ["greet", "leave"], "a"), tmp_path / "a.tsv")
    config = TrainConfig(**TINY_CONFIG)
    with pytest.raises(ConfigError, match=r"a.tsv: 2 training examples leave none for a dev"):
        streaming.prepare(
            {"train": tmp_path / "a.tsv"}, _projector(config), config, FeatureConfig(), tmp_path
        )


def _projector(config: TrainConfig) -> Projector:
    return Projector(*config.projection_shape, features=FeatureConfig(), seed=config.seed)


def _cache_dir(root: Path) -> Path:
    (directory,) = [p for p in root.iterdir() if not p.name.startswith(".")]
    return directory


def test_stale_and_damaged_caches_are_rebuilt(small_blocks: None, tmp_path: Path) -> None:
    path, root = tmp_path / "train.tsv", tmp_path / "cache"
    write_dataset(tiny_banking(200), path)

    def run(name: str) -> bytes:
        train(path, config=CONFIG, output_dir=tmp_path / name, progress=False, stream_cache=root)
        return _model(tmp_path / name)

    first = run("first")
    directory = _cache_dir(root)
    with pytest.warns(UserWarning, match="damaged"):
        (directory / "train" / "buckets").write_bytes(b"\0" * 64)  # truncated
        assert run("truncated") == first
    flipped = bytearray((directory / "dev" / "words").read_bytes())
    flipped[0] ^= 1
    (directory / "dev" / "words").write_bytes(bytes(flipped))
    with pytest.warns(UserWarning, match="damaged"):
        assert run("flipped") == first
    (directory / streaming.MANIFEST).unlink()
    with pytest.warns(UserWarning, match="damaged"):
        assert run("no-manifest") == first
    changed = tiny_banking(220)
    write_dataset(changed, path)
    with pytest.warns(UserWarning, match="stale"):
        stale = run("changed")
    train(changed, config=CONFIG, output_dir=tmp_path / "changed-mem", progress=False)
    assert stale == _model(tmp_path / "changed-mem") and _cache_dir(root) == directory


def test_a_resume_after_the_training_file_changed_is_refused_before_featurising(
    tmp_path: Path,
) -> None:
    path, root, out = tmp_path / "train.tsv", tmp_path / "cache", tmp_path / "run"
    write_dataset(tiny_banking(200), path)

    def stop_after_first_epoch(row: dict) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(path, config=CONFIG, output_dir=out, progress=False, stream_cache=root,
              on_epoch=stop_after_first_epoch, checkpoint_seconds=0)  # fmt: skip
    built = (_cache_dir(root) / streaming.MANIFEST).stat().st_mtime_ns
    write_dataset(tiny_banking(220), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "stale: rebuilding it" before the refusal
        with pytest.raises(CheckpointError) as refused:
            train(path, config=CONFIG, output_dir=out, progress=False, stream_cache=root,
                  resume=True)  # fmt: skip
    assert str(refused.value) == (
        f"{out / CHECKPOINT_NAME}: the data differ from the interrupted run's (a data file "
        "changed since); cannot resume"
    )
    assert (_cache_dir(root) / streaming.MANIFEST).stat().st_mtime_ns == built
    assert (out / CHECKPOINT_NAME).is_file()


def test_a_file_that_grows_between_the_scan_and_featurising_leaves_no_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, root = tmp_path / "train.tsv", tmp_path / "cache"
    write_dataset(tiny_banking(200), path)
    scan_then_append = streaming.plan

    def plan(*args: object, **kwargs: object) -> streaming.Plan:
        planned = scan_then_append(*args, **kwargs)
        write_dataset(tiny_banking(230), path)  # a writer still appending to the file
        return planned

    monkeypatch.setattr(streaming, "plan", plan)
    with pytest.raises(DataError) as refused:
        train(path, config=CONFIG, output_dir=tmp_path / "out", progress=False, stream_cache=root)
    assert str(refused.value) == _changed(path)
    assert [p.name for p in root.iterdir()] == [] and not (tmp_path / "out").exists()


def _changed(path: Path) -> str:
    return (
        f"{path}: changed during training (the featurise pass read other rows than the scan); "
        "train again once it is complete"
    )


@pytest.mark.parametrize("edited", ["train.tsv", "unlabeled.txt.gz"])
def test_a_file_edited_between_the_scan_and_featurising_leaves_no_cache(
    edited: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import gzip

    root, out = tmp_path / "cache", tmp_path / "out"
    data = tiny_banking(200)
    write_dataset(data, tmp_path / "train.tsv")
    texts = list(load_corpus("banking77", "test").texts[:60])
    with gzip.open(tmp_path / "unlabeled.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    scan_then_edit = streaming.plan

    def plan(*args: object, **kwargs: object) -> streaming.Plan:
        planned = scan_then_edit(*args, **kwargs)
        if edited == "train.tsv":  # as many rows, other texts: the scan's labels would not fit
            write_dataset(Dataset(data.texts[::-1], data.labels, "edited"), tmp_path / edited)
        else:
            with gzip.open(tmp_path / edited, "wt", encoding="utf-8") as f:
                f.write("\n".join(text.upper() for text in texts) + "\n")
        return planned

    monkeypatch.setattr(streaming, "plan", plan)
    with pytest.raises(DataError) as refused:
        train(
            tmp_path / "train.tsv", config=CONFIG, output_dir=out, progress=False,
            stream_cache=root, unlabeled=tmp_path / "unlabeled.txt.gz",
        )  # fmt: skip
    assert str(refused.value) == _changed(tmp_path / edited)
    assert [p.name for p in root.iterdir()] == [] and not out.exists()


def test_iter_dataset_reads_what_read_dataset_reads_a_block_at_a_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data_module, "STREAM_BLOCK_BYTES", 257)
    spam = load_corpus("spamassassin", "train")  # e-mails: quoted fields over many lines
    data = Dataset(spam.texts[:40], spam.labels[:40], "spam")
    for name in ("a.tsv", "a.csv", "a.jsonl", "a.tsv.gz"):
        write_dataset(data, tmp_path / name)
        expected = read_dataset(tmp_path / name)
        rows = list(iter_dataset(tmp_path / name))
        assert [t for t, _ in rows] == expected.texts and [x for _, x in rows] == expected.labels
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\n" + "a\tb\n" * 500 + "no label here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:502: row has 1 field"):
        list(iter_dataset(bad))
    late = tmp_path / "late.jsonl"  # a label refused past the first block: its line counted once
    late.write_text('{"text": "t", "label": "a"}\n' * 300 + '{"text": "t", "label": ["a", "b"]}\n')
    with pytest.raises(DataError) as caught:
        list(iter_dataset(late))
    assert str(caught.value) == (
        f"{late}:301: row has 2 labels; read it as multi-label data "
        "(--multi-label, multi_label=True)"
    )


CLI = [sys.executable, "-c", "from textproj.cli import app; app(prog_name='textproj')"]
OPTIONS = ["-T", "8", "-d", "16", "--bottleneck", "16", "--filters", "16", "--batch-size", "16",
           "--trainer-buckets", "4096", "--quiet", "--epochs", "10",
           "--checkpoint-every", "0"]  # fmt: skip


@pytest.mark.slow
def test_killed_streaming_run_resumes_to_the_uninterrupted_model(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv.gz"
    write_dataset(tiny_banking(600), path)
    args = [*CLI, "train", "--train", str(path), "--stream", "--cache-dir", str(tmp_path / "c"),
            *OPTIONS]  # fmt: skip
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    done = subprocess.run([*args, "--output", str(whole)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen([*args, "--output", str(cut)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (cut / CHECKPOINT_NAME).exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert (cut / CHECKPOINT_NAME).exists() and not (cut / MODEL_NAME).exists()
    resumed = subprocess.run([*CLI, "train", "--resume", str(cut), "--quiet"],
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert _model(cut) == _model(whole)
