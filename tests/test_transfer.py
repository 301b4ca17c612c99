"""Transfer texts: reading unlabelled files, augmented copies, and training with them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONFIG, tiny_banking
from typer.testing import CliRunner

from textproj import TrainConfig
from textproj.cli import app
from textproj.config import SMALL_DATA_AUGMENT, SMALL_DATA_TEXTS
from textproj.errors import DataError
from textproj.training import train
from textproj.transfer import MASK_TOKEN, augment, read_unlabeled

runner = CliRunner()


def test_unlabeled_lines_gz_and_data_files_give_their_texts(tmp_path: Path) -> None:
    plain = tmp_path / "texts.txt"
    plain.write_text("first text\r\n\n   \n__label__x second text\nthird\n", encoding="utf-8")
    assert read_unlabeled(plain) == ["first text", "second text", "third"]
    packed = tmp_path / "texts.lines.gz"
    packed.write_bytes(gzip.compress(b"a\nb\n"))
    assert read_unlabeled(packed) == ["a", "b"]
    table = tmp_path / "data.tsv"
    table.write_text('label\ttext\nx\t"with\ttab"\ny\tplain\n', encoding="utf-8")
    assert read_unlabeled(table) == ["with\ttab", "plain"]
    lines = tmp_path / "data.jsonl"
    lines.write_text(json.dumps({"text": "json text"}) + "\n" + json.dumps("bare") + "\n")
    assert read_unlabeled(lines) == ["json text", "bare"]
    named = tmp_path / "named.csv"
    named.write_text("intent,utterance\nx,first\ny,second\n", encoding="utf-8")
    assert read_unlabeled(named, text_column="utterance") == ["first", "second"]
    with pytest.raises(DataError, match=r"named.csv:1: header has no 'text' column") as caught:
        read_unlabeled(named)
    assert str(caught.value).endswith(  # training's message, naming no label column
        "(found: ['intent', 'utterance']; --text-column names another)"
    )
    fields = tmp_path / "named.jsonl"
    fields.write_text(json.dumps({"utterance": "json text", "text": "other"}) + "\n")
    assert read_unlabeled(fields, text_column="utterance") == ["json text"]


@pytest.mark.parametrize("name", ["a.tsv", "a.csv", "a.jsonl", "a.ft", "a.csv.gz"])
def test_unlabeled_texts_are_the_training_readers_texts_a_block_at_a_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    from textproj import data as data_module
    from textproj.data import Dataset, iter_texts, read_dataset, write_dataset

    monkeypatch.setattr(data_module, "STREAM_BLOCK_BYTES", 64)  # records span blocks
    texts = ['"Pending" payment', 'say "hi"', "tab\there", "two\nlines", "x" * 150, "plain"]
    if name == "a.ft":  # fastText: one line each, no surrounding white space
        texts = [t.replace("\n", " ").replace("\t", " ") for t in texts]
    path = tmp_path / name
    write_dataset(Dataset(texts, ["a", "b"] * 3, "made"), path)
    assert read_dataset(path).texts == texts
    assert list(iter_texts(path)) == texts  # the label tokens of a.ft are not text
    assert read_unlabeled(path) == texts


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [  # each a silent loss or merge before: the lax csv.reader
        ("u.csv", 'text\n"fine\nlost\nmore\n',
         "u.csv:2: malformed CSV: a quote opened here never closes"),
        ("u.csv", "id,text\n1,fine\n2\n3,more\n",
         "u.csv:3: row has 1 field(s), expected at least 2"),
        ("u.tsv", 'text\n"open\tquote\nlost\n',
         "u.tsv:2: a field opens with '\"' that never closes"),
        ("u.csv", "text\na,b\n",
         "u.csv:2: row has 2 fields, the header 1: quote a text that holds"),
        ("u.jsonl", '{"text": "a"}\n{"body": "b"}\n',
         "u.jsonl:2: object has no 'text' field (--text-column names another)"),
        ("u.jsonl", '{"text": "a"}\n[1]\n', "u.jsonl:2: expected a JSON object, got list"),
    ],
)  # fmt: skip
def test_malformed_unlabeled_records_are_refused_naming_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_unlabeled(path)
    assert str(caught.value).startswith(f"{tmp_path / message}")


def test_invalid_utf8_is_reported_at_its_line_past_read_ahead(tmp_path: Path) -> None:
    path = tmp_path / "u.txt"
    path.write_bytes(b"".join(b"text %d\n" % i for i in range(1, 3000)) + b"bad \xff\n")
    with pytest.raises(DataError) as caught:
        read_unlabeled(path)
    assert str(caught.value) == f"{path}:3000: invalid UTF-8 (byte 0xff)"


def test_unlabeled_reader_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"text {i}\n" for i in range(25_000)), encoding="utf-8")
    seen: list[int] = []
    assert len(read_unlabeled(path, seen.append)) == 25_000
    assert seen == [10_000, 20_000]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no texts"),
        (b"\n  \n", "no texts"),
        (b"good\n\xff bad\n", r"invalid UTF-8"),
    ],
)
def test_empty_or_unreadable_unlabeled_files_are_refused(tmp_path, content, message) -> None:
    path = tmp_path / "u.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        read_unlabeled(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("absent.txt", "no such file"),
        ("abc", "no such file"),
        ("u.txt/abc", "no such file"),  # under a file: was 'cannot read file: Not a directory'
        ("folder", "is a directory, not a data file"),
    ],
)
def test_missing_file_and_directory_are_named(
    name: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "u.txt").write_text("good\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError) as caught:
        read_unlabeled(name)
    assert str(caught.value) == f"{name}: {message}"


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_train_unlabeled_str_naming_no_file_says_how_to_give_texts(
    stream: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train(..., unlabeled="abc")`` said only 'abc: no such file'; a str naming no file is
    most likely texts, so it says how to give them (as a split given as a str does)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.tsv").write_text("text\tlabel\ngood\tpos\nbad\tneg\n", encoding="utf-8")
    cache = {"stream_cache": "cache"} if stream else {}
    with pytest.raises(DataError) as caught:
        train("train.tsv", unlabeled="abc", output_dir="out", progress=False, **cache)
    assert str(caught.value) == (
        "abc: no such file (unlabeled as a str is read as a file's path; "
        "give the texts as a list: train(..., unlabeled=texts))"
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_augmentation_is_deterministic_for_a_seed() -> None:
    texts = [f"please tell me how to change the pin of card number {i} today" for i in range(50)]
    copies = augment(texts, 2, seed=3)
    assert len(copies) == 100
    assert copies == augment(texts, 2, seed=3)
    assert copies != augment(texts, 2, seed=4)
    assert copies[:50] != texts  # something changed
    assert any(MASK_TOKEN in copy for copy in copies)
    assert any(len(copy.split()) <= 5 for copy in copies)  # an n-gram sample
    assert augment(texts, 0, seed=3) == []


def test_unlabeled_texts_reach_the_projection_network() -> None:
    data = tiny_banking(150)
    extra = tiny_banking(400).texts[150:]
    config = TrainConfig(**TINY_CONFIG)
    plain = train(data, config=config, progress=False)
    semi = train(data, config=config, progress=False, unlabeled=extra)
    assert semi.metrics["transfer_texts"] == len(extra)
    assert plain.metrics["transfer_texts"] == 0
    assert semi.tensors["output.weight"].tobytes() != plain.tensors["output.weight"].tobytes()
    augmented = train(
        data, config=TrainConfig(**{**TINY_CONFIG, "augment_copies": 2}), progress=False
    )
    assert augmented.metrics["transfer_texts"] == 2 * (len(data) - 15)  # 15 texts went to dev


def test_small_training_sets_get_augmented_copies_by_default() -> None:
    config = TrainConfig(**{**TINY_CONFIG, "augment_copies": None})
    assert config.copies_for(SMALL_DATA_TEXTS - 1) == SMALL_DATA_AUGMENT
    assert config.copies_for(SMALL_DATA_TEXTS) == 0
    assert TrainConfig(augment_copies=0).copies_for(10) == 0
    assert TrainConfig(augment_copies=1).copies_for(10**6) == 1
    assert TrainConfig(lambda_distill=0.0).copies_for(10) == 0  # trained alone: no teacher
    result = train(tiny_banking(150), config=config, progress=False)
    assert result.metrics["transfer_texts"] == SMALL_DATA_AUGMENT * (150 - 15)  # 15 went to dev


def test_a_batch_above_the_transfer_sets_size_takes_each_transfer_text_once(
    monkeypatch,
) -> None:
    from textproj.training import JointStep

    seen: list[tuple[int, np.ndarray]] = []
    real_step = JointStep.__call__

    def spy(self, batch, index, lr_scale=1.0, apply=True, transfer=None) -> float:
        seen.append((len(index), transfer[1]))
        assert len(transfer[1]) <= len(transfer[0])  # checked before the step does the work
        return real_step(self, batch, index, lr_scale, apply, transfer)

    monkeypatch.setattr(JointStep, "__call__", spy)
    huge = {**TINY_CONFIG, "augment_copies": 2, "batch_size": 10**6, "epochs": 1}
    result = train(tiny_banking(40), config=TrainConfig(**huge), progress=False)
    n_transfer = result.metrics["transfer_texts"]
    assert n_transfer == 2 * 36  # 4 of the 40 went to dev
    assert len(seen) == 1 and seen[0][0] == 36  # one step: the whole training set
    assert sorted(seen[0][1]) == list(range(n_transfer))  # every transfer text, once

    seen.clear()
    extra = tiny_banking(400).texts[150:]  # more transfer texts than the batch: batch_size each
    train(tiny_banking(150), config=TrainConfig(**TINY_CONFIG), progress=False, unlabeled=extra)
    assert [len(items) for _, items in seen] == [TINY_CONFIG["batch_size"]] * len(seen)
    assert all(len(set(items)) == len(items) for _, items in seen)


@pytest.mark.slow
def test_cli_unlabeled_option(tmp_path: Path) -> None:
    from textproj.data import write_dataset

    data = tmp_path / "train.tsv"
    write_dataset(tiny_banking(120), data)
    texts = tmp_path / "more.txt.gz"
    texts.write_bytes(gzip.compress("\n".join(tiny_banking(300).texts[120:]).encode()))
    options = ["--epochs", "1", "-T", "8", "-d", "16", "--bottleneck", "16", "--filters", "16"]
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["train", "--train", str(data), "--unlabeled", str(texts), "--output", str(out),
              "--quiet", *options],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the unlabelled texts, and by default augmented copies of the 108 training texts (12 to dev)
    transfer = 180 + SMALL_DATA_AUGMENT * 108
    assert json.loads((out / "metrics.json").read_text())["transfer_texts"] == transfer
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    refused = runner.invoke(
        app, ["train", "--train", str(data), "--unlabeled", str(empty), "--output",
              str(tmp_path / "x"), "--quiet", *options],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert f"{empty}: no texts" in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "x").exists()
