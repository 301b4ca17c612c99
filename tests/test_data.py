"""Tests for textproj.data: every format, every error path, and write/read round trips."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
from pathlib import Path

import pytest
from conftest import EMPTY_DATA_FILES

from textproj.data import (
    DataError,
    Dataset,
    blank_texts,
    iter_dataset,
    iter_texts,
    read_dataset,
    write_dataset,
)

TRICKY_TEXTS = [
    "plain text",
    'a "quoted" word',
    "tab\there",
    "line one\nline two",
    "carriage\rreturn and\r\nwindows break",
    "non-ASCII: café, naïve, Ελληνικά, 日本語, emoji 🙂",
    "comma, separated, text",
    "",
    "  leading and trailing spaces  ",
    "separator\u2028inside",
]
TRICKY_LABELS = [
    "simple",
    'la"bel',
    "tab\tlabel",
    "multi\nline label",
    "cr\rlabel",
    "étiquette",
    "with,comma",
    "empty-text",
    "spaces",
    "ls",
]


def write_bytes(tmp_path: Path, name: str, data: bytes | str) -> Path:
    """Write raw bytes (str is UTF-8 encoded) to tmp_path/name and return the path."""
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def assert_data_error(path: Path, line: int | None, fragment: str) -> None:
    """read_dataset(path) must raise DataError naming the file, the line and the cause."""
    with pytest.raises(DataError) as caught:
        read_dataset(path)
    message = str(caught.value)
    assert path.name in message
    if line is not None:
        assert f"{path.name}:{line}:" in message
    else:
        assert not re.search(rf"{re.escape(path.name)}:\d+:", message)
    assert fragment in message


# --- reading each format ---


def test_read_tsv_with_quoted_newline_and_tab(tmp_path: Path) -> None:
    content = 'text\tlabel\nhello world\tgreet\n"two\nlines\tand a tab"\tmulti\n"say ""hi"""\tq\n'
    dataset = read_dataset(write_bytes(tmp_path, "d.tsv", content))
    assert dataset.texts == ["hello world", "two\nlines\tand a tab", 'say "hi"']
    assert dataset.labels == ["greet", "multi", "q"]
    assert len(dataset) == 3
    assert dataset.source.endswith("d.tsv")


def test_read_csv_columns_in_any_order_extra_ignored(tmp_path: Path) -> None:
    content = 'id,label,text\n1,pos,"good, really"\n2,neg,"line\nbreak\tand tab"\n'
    dataset = read_dataset(write_bytes(tmp_path, "d.csv", content))
    assert dataset.texts == ["good, really", "line\nbreak\tand tab"]
    assert dataset.labels == ["pos", "neg"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.tsv", "id\tsentence\tintent\n1\thello there\tgreet\n2\tbye\tleave\n"),
        ("d.csv", 'intent,sentence\ngreet,hello there\nleave,"bye"\n'),
        ("d.jsonl", '{"sentence": "hello there", "intent": "greet"}\n'
                    '{"sentence": "bye", "intent": "leave"}\n'),
    ],
)  # fmt: skip
def test_named_text_and_label_columns_are_read(tmp_path: Path, name: str, content: str) -> None:
    path = write_bytes(tmp_path, name, content)
    dataset = read_dataset(path, text_column="sentence", label_column="intent")
    assert (dataset.texts, dataset.labels) == (["hello there", "bye"], ["greet", "leave"])
    with pytest.raises(DataError, match=r"no 'text' (column|field) .*--text-column"):
        read_dataset(path)
    with pytest.raises(DataError, match=r"no 'utterance' (column|field)"):
        read_dataset(path, text_column="utterance", label_column="intent")


def test_a_fasttext_file_refuses_named_columns(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "d.txt", "__label__a hello\n")
    with pytest.raises(DataError, match=r"d.txt: a fastText file has no named columns"):
        read_dataset(path, text_column="sentence")


def test_read_tsv_crlf_and_bom(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbftext\tlabel\r\nfirst\ta\r\nsecond\tb\r\n"
    dataset = read_dataset(write_bytes(tmp_path, "d.tsv", content))
    assert dataset.texts == ["first", "second"]
    assert dataset.labels == ["a", "b"]


def test_read_tsv_long_field(tmp_path: Path) -> None:
    long_text = "x" * 300_000  # over csv's default 131072-character field limit
    dataset = read_dataset(write_bytes(tmp_path, "d.tsv", f"text\tlabel\n{long_text}\tlong\n"))
    assert dataset.texts == [long_text]


def test_read_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "hello", "label": "greet", "id": 1}),
        "",
        "   ",
        json.dumps({"label": "x", "text": "a\nb\tc \u2028 d"}, ensure_ascii=True),
        json.dumps({"text": "日本語", "label": "ja"}, ensure_ascii=False),
    ]
    dataset = read_dataset(write_bytes(tmp_path, "d.jsonl", "\n".join(lines) + "\n"))
    assert dataset.texts == ["hello", "a\nb\tc \u2028 d", "日本語"]
    assert dataset.labels == ["greet", "x", "ja"]


@pytest.mark.parametrize("suffix", [".txt", ".ft"])
def test_read_fasttext(tmp_path: Path, suffix: str) -> None:
    content = "__label__pos great film\n\n__label__neg  awful,\tjust awful \r\n__label__pos\n"
    dataset = read_dataset(write_bytes(tmp_path, f"d{suffix}", content))
    assert dataset.texts == ["great film", "awful,\tjust awful", ""]
    assert dataset.labels == ["pos", "neg", "pos"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.tsv.gz", 'text\tlabel\n"multi\nline"\tA\nsecond\tB\n'),
        (
            "d.jsonl.gz",
            '{"text": "multi\\nline", "label": "A"}\n{"text": "second", "label": "B"}\n',
        ),
    ],
)
def test_read_gzip(tmp_path: Path, name: str, content: str) -> None:
    path = write_bytes(tmp_path, name, gzip.compress(content.encode("utf-8")))
    dataset = read_dataset(path)
    assert dataset.texts == ["multi\nline", "second"]
    assert dataset.labels == ["A", "B"]


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    dataset = read_dataset(write_bytes(tmp_path, "D.TSV", "text\tlabel\nhi\tx\n"))
    assert dataset.labels == ["x"]


def test_dataset_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        Dataset(texts=["a", "b"], labels=["x"], source="mem")


# --- errors: each names the file and, where it applies, the line ---


def test_missing_file(tmp_path: Path) -> None:
    assert_data_error(tmp_path / "absent.tsv", None, "no such file")


@pytest.mark.parametrize(
    "read",
    [read_dataset, lambda path: list(iter_dataset(path)), lambda path: list(iter_texts(path))],
    ids=["read_dataset", "iter_dataset", "iter_texts"],
)
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("abc", "no such file"),  # was 'unknown file extension': judged before it was looked for
        ("abc.tsv", "no such file"),
        ("d.tsv/abc.tsv", "no such file"),  # under a file: was 'cannot read file: Not a directory'
        ("folder", "is a directory, not a data file"),
        ("folder.tsv", "is a directory, not a data file"),
    ],
)
def test_a_missing_path_or_a_directory_is_named_before_its_extension(
    read, name: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_bytes(tmp_path, "d.tsv", "text\tlabel\ngood\tpos\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.tsv").mkdir()
    with pytest.raises(DataError) as caught:
        read(name)
    assert str(caught.value) == f"{name}: {message}"


def test_an_existing_file_is_still_judged_by_its_extension(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "abc", "text\tlabel\ngood\tpos\n")
    for read in (read_dataset, lambda path: list(iter_dataset(path))):
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: unknown file extension"):
            read(path)


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "d.parquet", "whatever")
    with pytest.raises(DataError) as caught:
        read_dataset(path)
    message = str(caught.value)
    assert "d.parquet" in message
    for extension in (".tsv", ".csv", ".jsonl", ".txt", ".ft"):
        assert extension in message


@pytest.mark.parametrize("name", ["empty.tsv", "empty.csv", "empty.jsonl", "empty.txt"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = write_bytes(tmp_path, name, "")
    with pytest.raises(DataError, match=re.escape(name)):
        read_dataset(path)


def test_header_only_has_no_rows(tmp_path: Path) -> None:
    assert_data_error(write_bytes(tmp_path, "d.tsv", "text\tlabel\n"), None, "no data rows")


def test_blank_lines_only_jsonl_has_no_rows(tmp_path: Path) -> None:
    assert_data_error(write_bytes(tmp_path, "d.jsonl", "\n  \n"), None, "no data rows")


@pytest.mark.parametrize("missing", ["text", "label"])
def test_header_missing_column(tmp_path: Path, missing: str) -> None:
    header = "\t".join(column for column in ("text", "label", "id") if column != missing)
    path = write_bytes(tmp_path, "d.tsv", f"{header}\na\tb\n")
    assert_data_error(path, 1, f"no '{missing}' column")


def test_empty_label_reports_physical_line(tmp_path: Path) -> None:
    # Line 2-3 hold one quoted row spanning two lines, so the bad row is on line 5.
    content = 'text\tlabel\n"first\nrow"\tA\nsecond\tB\nthird\t\n'
    assert_data_error(write_bytes(tmp_path, "d.tsv", content), 5, "row has no label")


def test_missing_field(tmp_path: Path) -> None:
    content = "text,label\nok,A\nno label field here\n"
    assert_data_error(write_bytes(tmp_path, "d.csv", content), 3, "1 field(s)")


def test_unterminated_quote_names_the_row_start_and_says_why(tmp_path: Path) -> None:
    content = 'text\tlabel\nok\tA\n"unterminated\tB\nmore\tC\n'
    assert_data_error(write_bytes(tmp_path, "d.tsv", content), 3, "that never closes")
    csv_content = 'text,label\nok,A\n"unterminated,B\nmore,C\n'
    assert_data_error(write_bytes(tmp_path, "d.csv", csv_content), 3, "never closes")


def test_quotes_inside_a_plain_tsv_field_are_text(tmp_path: Path) -> None:
    content = (
        'text\tlabel\n"Pending" payment here\tpending\nsay "hi" "there"\tq\n'
        '"quoted ""whole"" field"\tq\n'
    )
    dataset = read_dataset(write_bytes(tmp_path, "d.tsv", content))
    assert dataset.texts == ['"Pending" payment here', 'say "hi" "there"', 'quoted "whole" field']
    assert dataset.labels == ["pending", "q", "q"] and len(dataset) == 3


def test_lone_quote_field_never_closing_is_refused(tmp_path: Path) -> None:
    assert_data_error(write_bytes(tmp_path, "d.tsv", 'text\tlabel\n"\tq\n'), 2, "never closes")


def test_text_after_a_closing_quote_in_csv_says_why(tmp_path: Path) -> None:
    content = 'text,label\nok,A\n"Pending" payment,B\n'
    assert_data_error(write_bytes(tmp_path, "d.csv", content), 3, "text after its closing quote")


@pytest.mark.parametrize("name", ["d.tsv", "d.csv", "d.jsonl", "d.txt"])
def test_labels_lose_surrounding_white_space(tmp_path: Path, name: str) -> None:
    rows = [("one", "a"), ("two", "a "), ("three", " a"), ("four", "b")]
    if name == "d.txt":
        content = "".join(f"__label__{label.strip()}  {text}\n" for text, label in rows)
    elif name == "d.jsonl":
        content = "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows)
    else:
        sep = "\t" if name == "d.tsv" else ","
        content = f"text{sep}label\n" + "".join(f"{t}{sep}{label}\n" for t, label in rows)
    dataset = read_dataset(write_bytes(tmp_path, name, content))
    assert dataset.labels == ["a", "a", "a", "b"]


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    assert_data_error(tmp_path, None, "is a directory")
    assert_data_error(Path("."), None, "is a directory")


def test_blank_texts_are_counted(tmp_path: Path) -> None:
    content = "__label__a hello\n__label__b\n__label__a   \n__label__b world\n"
    dataset = read_dataset(write_bytes(tmp_path, "d.txt", content))
    assert dataset.texts == ["hello", "", "", "world"]
    assert blank_texts(dataset) == 2


def test_error_in_multiline_row_names_its_first_line(tmp_path: Path) -> None:
    content = 'text\tlabel\nok\tA\n"spans\nthree\nlines"\t\n'
    assert_data_error(write_bytes(tmp_path, "d.tsv", content), 3, "row has no label")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ('["text", "label"]', "expected a JSON object, got list"),
        ('{"text": "no label"}', "no 'label' field"),
        ('{"label": "x"}', "no 'text' field"),
        ('{"text": "t", "label": 3}', "'label' must be a string or a list of strings, got int"),
        ('{"text": null, "label": "x"}', "'text' must be a string"),
        ('{"text": "t", "label": ""}', "row has no label"),
        ('{"text": "t", "label": [" "]}', "row has no label"),  # once read as the label ""
    ],
)
def test_jsonl_errors(tmp_path: Path, line: str, fragment: str) -> None:
    content = '{"text": "fine", "label": "A"}\n\n' + line + "\n"
    assert_data_error(write_bytes(tmp_path, "d.jsonl", content), 3, fragment)


SURROGATE = "holds a lone surrogate (U+DC80, half of a UTF-16 pair), which UTF-8 cannot encode"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"text": "t", "label": "a\udc80"}, "label"),
        ({"text": "t", "label": ["a", "\udc80"]}, "label"),
        ({"text": "t\udc80", "label": "a"}, "text"),
    ],
)
def test_jsonl_lone_surrogates_are_refused_naming_line_and_field(
    tmp_path: Path, record: dict, field: str
) -> None:
    content = '{"text": "fine", "label": "A"}\n' + json.dumps(record) + "\n"  # json: \\udc80
    assert "\\udc80" in content and json.loads(content.splitlines()[1]) == record
    path = write_bytes(tmp_path, "d.jsonl", content)
    expected = f"{path}:2: {field!r} {SURROGATE}"
    for read in (read_dataset, lambda p: list(iter_dataset(p, multi_label=True))):
        with pytest.raises(DataError) as caught:
            read(path)
        assert str(caught.value) == expected
    if field == "text":  # predict --input, train --unlabeled
        with pytest.raises(DataError) as caught:
            list(iter_texts(path))
        assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("no label at all", "does not start with a __label__ token"),
        ("text then __label__late", "does not start with a __label__ token"),
        ("__label__a __label__b both", "row has 2 labels; read it as multi-label data"),
        ("__label__ orphan text", "row has no label"),
    ],
)
def test_fasttext_errors(tmp_path: Path, line: str, fragment: str) -> None:
    content = f"__label__ok fine\n__label__ok also fine\n{line}\n"
    assert_data_error(write_bytes(tmp_path, "d.txt", content), 3, fragment)


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    content = b"text\tlabel\nfine\tA\nbad \xff byte\tB\n"
    assert_data_error(write_bytes(tmp_path, "d.tsv", content), 3, "invalid UTF-8")


def test_invalid_utf8_inside_gzip_names_line(tmp_path: Path) -> None:
    content = gzip.compress(b'{"text": "ok", "label": "A"}\n{"text": "\xc3(", "label": "B"}\n')
    assert_data_error(write_bytes(tmp_path, "d.jsonl.gz", content), 2, "invalid UTF-8")


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "d.tsv.gz", b"this is not gzip")
    assert_data_error(path, None, "corrupt gzip")


def test_zero_byte_gzip_has_no_rows(tmp_path: Path) -> None:
    assert_data_error(write_bytes(tmp_path, "d.tsv.gz", b""), None, "no data rows")


def test_every_empty_file_has_no_rows_alike(tmp_path: Path) -> None:
    """An empty TSV/CSV said "file is empty" and every other empty file "no data rows"; texts
    only (predict --input) it now gives none, as an empty .txt did, instead of an error."""
    for name, content in (*EMPTY_DATA_FILES, ("b.tsv", b"\n\n")):
        path = write_bytes(tmp_path, name, content)
        for read in (read_dataset, lambda path: list(iter_dataset(path))):
            with pytest.raises(DataError) as caught:
                read(path)
            assert str(caught.value) == f"{path}: no data rows"
        assert list(iter_texts(path)) == []


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(b"text\tlabel\n" + b"some text\tA\n" * 1000)
    path = write_bytes(tmp_path, "d.tsv.gz", data[: len(data) // 2])
    assert_data_error(path, None, "corrupt gzip")


def test_directory_is_not_readable(tmp_path: Path) -> None:
    (tmp_path / "folder.tsv").mkdir()
    assert_data_error(tmp_path / "folder.tsv", None, "is a directory, not a data file")


# --- round trips ---


@pytest.mark.parametrize(
    "name", ["out.tsv", "out.csv", "out.jsonl", "out.tsv.gz", "out.csv.gz", "out.jsonl.gz"]
)
def test_round_trip_exact(tmp_path: Path, name: str) -> None:
    original = Dataset(texts=TRICKY_TEXTS, labels=TRICKY_LABELS, source="memory")
    path = tmp_path / name
    write_dataset(original, path)
    restored = read_dataset(path)
    assert restored.texts == original.texts
    assert restored.labels == original.labels
    assert restored.source == str(path)


@pytest.mark.parametrize("name", ["out.txt", "out.ft.gz"])
def test_round_trip_fasttext(tmp_path: Path, name: str) -> None:
    original = Dataset(
        texts=["great film", 'awful,\tjust "awful"', "café 日本語"],
        labels=["pos", "neg", "fr-ja"],
        source="memory",
    )
    path = tmp_path / name
    write_dataset(original, path)
    restored = read_dataset(path)
    assert restored.texts == original.texts
    assert restored.labels == original.labels


def test_written_tsv_is_plain_csv_module_output(tmp_path: Path) -> None:
    path = tmp_path / "out.tsv"
    write_dataset(Dataset(texts=["a\tb", "plain"], labels=["x", "y"], source="m"), path)
    assert path.read_text(encoding="utf-8") == 'text\tlabel\n"a\tb"\tx\nplain\ty\n'


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    dataset = Dataset(texts=["same"], labels=["x"], source="m")
    write_dataset(dataset, tmp_path / "a.tsv.gz")
    write_dataset(dataset, tmp_path / "b.tsv.gz")
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "b.tsv.gz").read_bytes()


@pytest.mark.parametrize(
    ("text", "label", "fragment"),
    [
        ("two\nlines", "x", "line breaks"),
        ("fine", "has space", "no spaces"),
        ("fine", "", "non-empty"),
        ("__label__y sneaky", "x", "starts with a __label__ token"),
        (" padded ", "x", "surrounding white space"),
    ],
)
def test_fasttext_writer_refuses_lossy_rows(
    tmp_path: Path, text: str, label: str, fragment: str
) -> None:
    path = tmp_path / "out.txt"
    dataset = Dataset(texts=["ok", text], labels=["ok", label], source="m")
    with pytest.raises(DataError, match=re.escape(fragment)) as caught:
        write_dataset(dataset, path)
    assert "out.txt" in str(caught.value)
    assert "row 2" in str(caught.value)
    assert not path.exists()


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.tsv"
    write_dataset(Dataset(texts=["old"], labels=["a"], source="m"), path)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        write_dataset(Dataset(texts=["new"] * 100, labels=["b"] * 100, source="m"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_write_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown file extension"):
        write_dataset(Dataset(texts=["a"], labels=["b"], source="m"), tmp_path / "out.xlsx")


# --- multi-label data ---


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("m.tsv", "text\tlabel\nfirst\ta|b\nsecond\t c \n"),
        ("m.csv", 'text,label\nfirst,"a| b |a"\nsecond,c\n'),
        ("m.jsonl", '{"text": "first", "label": ["a", "b"]}\n{"text": "second", "label": "c"}\n'),
        ("m.txt", "__label__a __label__b first\n__label__c second\n"),
    ],
)
def test_read_multi_label(tmp_path: Path, name: str, content: str) -> None:
    data = read_dataset(write_bytes(tmp_path, name, content), multi_label=True)
    assert data.texts == ["first", "second"]
    assert data.labels == [("a", "b"), ("c",)]


def test_single_label_reading_keeps_pipes_and_refuses_lists(tmp_path: Path) -> None:
    tsv = read_dataset(write_bytes(tmp_path, "s.tsv", "text\tlabel\nt\ta|b\n"))
    assert tsv.labels == ["a|b"]
    content = '{"text": "ok", "label": ["a"]}\n{"text": "t", "label": ["a", "b"]}\n'
    jsonl = write_bytes(tmp_path, "s.jsonl", content)
    assert_data_error(jsonl, 2, "row has 2 labels; read it as multi-label data")


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("e.tsv", "text\tlabel\nok\ta\nt\t | \n", 3),
        ("e.jsonl", '{"text": "t", "label": []}\n', 1),
        ("e.jsonl", '{"text": "t", "label": ["a", 1]}\n', 1),
    ],
)
def test_multi_label_errors_name_the_line(tmp_path: Path, name: str, content: str, line: int):
    with pytest.raises(DataError, match=rf"{re.escape(name)}:{line}: "):
        read_dataset(write_bytes(tmp_path, name, content), multi_label=True)


@pytest.mark.parametrize("name", ["m.tsv", "m.csv", "m.jsonl", "m.txt.gz"])
def test_multi_label_round_trip(tmp_path: Path, name: str) -> None:
    data = Dataset(["one", "two", "three"], [("a", "b"), ("c",), ("é", "x")], "mem")
    write_dataset(data, tmp_path / name)
    assert read_dataset(tmp_path / name, multi_label=True).labels == data.labels


def test_multi_label_writer_refuses_separator_in_label(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape("multi-labels cannot hold '|'")):
        write_dataset(Dataset(["t"], [("a|b", "c")], "mem"), tmp_path / "m.tsv")
