"""Damaged model files and awkward data files: clean one-line CLI errors, ModelFormatError in
Python, file:line for bad rows, unseen test labels reported, odd labels kept exactly."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TINY_CONFIG, per_intent, tiny_banking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import textproj
from textproj.cli import app
from textproj.config import TrainConfig
from textproj.data import Dataset, read_dataset, write_dataset
from textproj.model_file import FORMAT_VERSION, ModelFormatError

runner = CliRunner()


def _header_end(raw: bytes) -> int:
    return 16 + struct.unpack("<I", raw[12:16])[0]


def _flip(position: Callable[[bytes], int]) -> Callable[[bytes], bytes]:
    def damage(raw: bytes) -> bytes:
        data = bytearray(raw)
        data[position(raw)] ^= 0x04
        return bytes(data)

    return damage


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda raw: b"", "empty"),
    "only the magic": (lambda raw: raw[:8], "too small"),
    "cut in the header": (lambda raw: raw[: _header_end(raw) - 3], "truncated"),
    "cut in the blob": (lambda raw: raw[: (_header_end(raw) + len(raw)) // 2], "checksum"),
    "checksum cut off": (lambda raw: raw[:-32], "checksum"),
    "one byte short": (lambda raw: raw[:-1], "checksum"),
    "flip in the magic": (_flip(lambda raw: 3), "not a textproj model"),
    "flip in the header length": (_flip(lambda raw: 15), "exceeds the limit"),
    "flip in the header": (_flip(lambda raw: _header_end(raw) // 2), "checksum"),
    "flip in the blob": (_flip(lambda raw: (_header_end(raw) + len(raw)) // 2), "checksum"),
    "flip in the checksum": (_flip(lambda raw: len(raw) - 5), "checksum"),
    "wrong magic": (lambda raw: b"PK\x03\x04" + raw[4:], "not a textproj model"),
    "numpy file": (lambda raw: b"\x93NUMPY\x01\x00" + raw[8:], "not a textproj model"),
    "future version": (
        lambda raw: raw[:8] + struct.pack("<I", FORMAT_VERSION + 1) + raw[12:],
        "needs a newer textproj",
    ),
    "text file": (lambda raw: b"this is not a model, just some words\n" * 3, "not a textproj"),
}


@pytest.fixture(scope="module")
def good_model(tiny_models: dict[str, Path]) -> bytes:
    return (tiny_models["token"] / "model.tpn").read_bytes()


@pytest.fixture(scope="module")
def test_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "test.tsv"
    write_dataset(tiny_banking(20), path)
    return path


def _command(name: str, model: Path, test_file: Path) -> list[str]:
    return {
        "predict": ["predict", str(model), "I lost my card"],
        "evaluate": ["evaluate", str(model), "--test", str(test_file)],
        "info": ["info", str(model)],
    }[name]


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_model_is_a_model_format_error(kind: str, good_model: bytes, tmp_path: Path):
    damage, expected = DAMAGE[kind]
    path = tmp_path / "model.tpn"
    path.write_bytes(damage(good_model))
    with pytest.raises(ModelFormatError, match=expected) as caught:
        textproj.load(path)
    assert str(caught.value).startswith(str(path))
    with pytest.raises(ModelFormatError, match=expected):
        textproj.load(tmp_path)  # the directory holding it


@pytest.mark.parametrize("command", ["predict", "evaluate", "info"])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_model_gets_a_clean_cli_error(
    kind: str, command: str, good_model: bytes, test_file: Path, tmp_path: Path
) -> None:
    damage, expected = DAMAGE[kind]
    (tmp_path / "model.tpn").write_bytes(damage(good_model))
    result = runner.invoke(app, _command(command, tmp_path / "model.tpn", test_file))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.startswith("error:")
    assert expected in " ".join(result.output.split())  # (Rich may wrap a long line)


def test_cli_error_stays_on_one_line_with_a_long_path(tmp_path: Path, test_file: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "model.tpn"
    deep.parent.mkdir()
    deep.write_bytes(b"")
    result = runner.invoke(app, _command("predict", deep, test_file))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_good_model_still_works_through_the_same_commands(
    tiny_models: dict[str, Path], test_file: Path
) -> None:
    for command in ("predict", "evaluate", "info"):
        result = runner.invoke(app, _command(command, tiny_models["token"], test_file))
        assert result.exit_code == 0, result.output


# --- data files ------------------------------------------------------------------------------

BAD_DATA = {
    "bad.tsv": ("text\tlabel\nfine\tpos\nfine too\tneg\nno label\t\n", "bad.tsv:4"),
    "bad.csv": ('text,label\nfine,pos\n"open quote,neg\n', "bad.csv:3"),
    "bad.jsonl": ('{"text": "a", "label": "x"}\n\n{"text": "b"}\n', "bad.jsonl:3"),
    "bad.txt": ("__label__a fine\nno label at all\n", "bad.txt:2"),
}


@pytest.mark.parametrize("name", list(BAD_DATA))
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_bad_data_rows_name_file_and_line_in_the_cli(
    name: str, command: str, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    content, where = BAD_DATA[name]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    if command == "train":
        args = ["train", "--train", str(path), "--output", str(tmp_path / "out"), "--quiet"]
    else:
        args = ["evaluate", str(tiny_models["text"]), "--test", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert where in " ".join(result.output.split()).replace(" ", "")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_unseen_test_labels_are_listed_and_counted(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    known = textproj.load(tiny_models["text"]).labels
    path = tmp_path / "test.jsonl"
    labels = [known[0], "never_seen", "also_new", "also_new"]
    write_dataset(Dataset(["my card is lost", "x", "y", "z"], labels, "t"), path)
    args = ["evaluate", str(tiny_models["text"]), "--test", str(path)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["unseen_labels"] == ["also_new", "never_seen"]
    assert scores["unseen_examples"] == 3 and scores["n"] == 4
    assert scores["accuracy"] <= 0.25
    plain = runner.invoke(app, args)
    assert "3 examples carry 2 labels the model was not trained on" in plain.output
    assert "also_new, never_seen" in plain.output


# --- labels that need quoting -------------------------------------------------------------

ODD_LABELS = [
    "tab\there",
    'say "hi"',
    "it's",
    "comma, then space",
    "café ☕",
    "👩‍👩‍👧 family",
    "line\nbreak",
    "العربية",
    "back\\slash",
    "inner  spaces",
]
FASTTEXT_LABELS = ['say"hi"', "it's", "café☕", "日本語", "back\\slash", "a,b"]


def _relabelled(labels: list[str], per_label: int = 40) -> Dataset:
    """Banking77 texts of a few intents, each intent renamed to one of ``labels``."""
    data = per_intent(tiny_banking(2000), len(labels), per_label)
    rename = dict(zip(sorted(set(data.labels)), labels, strict=True))
    return Dataset(data.texts, [rename[intent] for intent in data.labels], "relabelled")


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("data.tsv", ODD_LABELS),
        ("data.csv", ODD_LABELS),
        ("data.jsonl", ODD_LABELS),
        ("data.tsv.gz", ODD_LABELS),
        ("data.txt", FASTTEXT_LABELS),
    ],
)
def test_odd_labels_round_trip_through_data_files(name: str, labels: list[str], tmp_path: Path):
    data = _relabelled(labels, per_label=3)
    write_dataset(data, tmp_path / name)
    back = read_dataset(tmp_path / name)
    assert back.labels == data.labels
    assert back.texts == data.texts


_any_text = st.text(st.characters(codec="utf-8"), max_size=40)
_any_label = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(str.strip)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(_any_text, _any_label), min_size=1, max_size=5))
@pytest.mark.parametrize("name", ["data.tsv", "data.csv", "data.jsonl", "data.csv.gz"])
def test_any_text_and_label_round_trips_exactly(
    name: str, rows: list[tuple[str, str]], tmp_path: Path
) -> None:
    data = Dataset([text for text, _ in rows], [label for _, label in rows], "rows")
    write_dataset(data, tmp_path / name)
    back = read_dataset(tmp_path / name)
    # Texts round trip exactly; labels lose surrounding white space (" a" and "a" are one class).
    assert (back.texts, back.labels) == (data.texts, [label.strip() for label in data.labels])


def test_odd_labels_round_trip_through_training_and_the_model_file(tmp_path: Path) -> None:
    from textproj.training import train

    name = "train.tsv"  # the strictest format: labels hold tabs, quotes and line breaks
    data = _relabelled(ODD_LABELS, per_label=25)
    write_dataset(data, tmp_path / name)
    out = tmp_path / "model"
    train(read_dataset(tmp_path / name), config=TrainConfig(**TINY_CONFIG), output_dir=out,
          progress=False)  # fmt: skip
    clf = textproj.load(out)
    assert clf.labels == sorted(ODD_LABELS)
    assert json.loads((out / "trainer.json").read_text(encoding="utf-8"))["labels"] == clf.labels
    assert set(clf.predict(data.texts)) <= set(ODD_LABELS)
    info = json.loads(runner.invoke(app, ["info", str(out), "--json"]).output)
    assert info["labels"] == sorted(ODD_LABELS)
    predicted = runner.invoke(app, ["predict", str(out), "--json", *data.texts[:5]])
    records = [json.loads(line) for line in predicted.output.splitlines()]
    assert [r["label"] for r in records] == clf.predict(data.texts[:5])
    assert set().union(*(r["probabilities"] for r in records)) <= set(ODD_LABELS)
    scored = runner.invoke(app, ["evaluate", str(out), "--test", str(tmp_path / name), "--json"])
    assert json.loads(scored.output)["unseen_labels"] == []  # every label matched exactly
