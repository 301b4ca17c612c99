"""Read and write labelled text datasets in every format the project accepts.

One entry point, :func:`read_dataset`, picks the format from the file extension
(``.tsv``, ``.csv``, ``.jsonl``, fastText ``.txt``/``.ft``, each optionally ``.gz``) so
that malformed input always fails the same way: a :class:`DataError` whose message
names the file and, where it applies, the 1-based line (``data.tsv:17: row has no label``).

Each format is a small row iterator yielding ``(line_no, text, label)``; adding a
format means adding one iterator. Multi-label data (``multi_label=True``) gives each text a
tuple of labels: ``a|b`` in a TSV/CSV ``label`` column (or a JSONL string), a JSON list in
JSONL, several leading ``__label__`` tokens in fastText format.

TSV fields split at tabs; a field is quoted only when it starts with ``"`` and ends with ``"``
before a tab or the line end (as csv writes a field holding tabs or line breaks), so a quote
inside plain text stays text. CSV follows RFC 4180 strictly. Labels lose surrounding white
space (``a``, ``a `` and `` a`` are one class); texts are kept exactly, empty ones included
(:func:`blank_texts` counts them).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textproj.errors import DataError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DataError",
    "Dataset",
    "blank_texts",
    "iter_dataset",
    "read_dataset",
    "read_lines",
    "write_dataset",
]

_UTF8_BOM = b"\xef\xbb\xbf"
# Texts can be long (whole e-mails); csv refuses fields over 128 KiB by default.
# 2**31 - 1 fits the C long that csv uses on every platform.
_CSV_FIELD_LIMIT = 2**31 - 1
# fastText label token at the start of a line, with the white space after it.
_FASTTEXT_LABEL = re.compile(r"__label__(\S*)\s*")

# A row's label as read: one string, or a list of strings (JSONL list, several fastText labels).
Row = tuple[int, str, str | list[str]]
# A dataset's label: one string, or for multi-label data a tuple of strings.
Label = str | tuple[str, ...]
MULTI_LABEL_SEPARATOR = "|"  # multi-label TSV/CSV (and JSONL string) labels: "a|b"
TEXT_COLUMN = "text"  # the TSV/CSV column (JSONL field) read as the text, unless one is named
LABEL_COLUMN = "label"  # ... and as the label
DEFAULT_COLUMNS = (TEXT_COLUMN, LABEL_COLUMN)
COLUMN_HINT = "--text-column / --label-column name others"
TEXT_COLUMN_HINT = "--text-column names another"  # where only texts are read


@dataclass(frozen=True)
class Dataset:
    """Parallel lists of texts and their labels, plus where they came from.

    Labels are strings, or for multi-label data tuples of strings.
    """

    texts: list[str]
    labels: list[Label]
    source: str

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"{self.source}: {len(self.texts)} texts but {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.texts)


def _fail(name: str, line: int | None, message: str) -> DataError:
    """Build a DataError in the ``file:line: message`` form."""
    where = name if line is None else f"{name}:{line}"
    return DataError(f"{where}: {message}")


# --- readers: each turns decoded file content into (line_no, text, label) rows ---


def _rows_of(
    records: Iterator[tuple[int, list[str]]], name: str, fields: tuple[str, str]
) -> Iterator[Row]:
    """Rows of a delimited file's records ``(first line, fields)`` whose header names the text
    and the label column ``fields`` (other columns are ignored). A row with more non-empty
    fields than the header is refused: an unquoted delimiter in a text would shift its label."""
    header_record = next(records, None)
    if header_record is None:
        raise _fail(name, None, "file is empty")
    start, header = header_record
    columns = [column.strip() for column in header]
    for required in fields:
        if required not in columns:
            raise _fail(
                name, start, f"header has no {required!r} column (found: {header!r}; {COLUMN_HINT})"
            )
    text_at, label_at = columns.index(fields[0]), columns.index(fields[1])
    needed = max(text_at, label_at) + 1
    for start, row in records:
        if len(row) < needed:
            raise _fail(name, start, f"row has {len(row)} field(s), expected at least {needed}")
        if len(row) > len(header) and any(field.strip() for field in row[len(header) :]):
            raise _fail(
                name,
                start,
                f"row has {len(row)} fields, the header {len(header)}: quote a text that holds "
                "the delimiter",
            )
        label = row[label_at]
        if not label.strip():
            raise _fail(name, start, "row has no label")
        yield start, row[text_at], label


def _quoted_field(lines: list[str], n: int, pos: int) -> tuple[str, int, int] | None:
    """The quoted TSV field whose opening quote is just before ``lines[n][pos]``: (value, line
    index and position after its closing quote), or None when a quote inside it is followed
    by other text (then the field is plain text that starts with a quote)."""
    parts = []
    line = lines[n]
    while True:
        quote = line.find('"', pos)
        if quote < 0:
            parts.append(line[pos:] + "\n")
            n += 1
            if n == len(lines):
                raise _UnclosedQuote
            line, pos = lines[n], 0
        elif line.startswith('"', quote + 1):
            parts.append(line[pos : quote + 1])
            pos = quote + 2
        elif line[quote + 1 :] in ("", "\r") or line.startswith("\t", quote + 1):
            parts.append(line[pos:quote])
            return "".join(parts), n, quote + 1
        else:
            return None


class _UnclosedQuote(Exception):
    """A quoted TSV field runs to the end of the file."""


def _tsv_records(content: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record of a TSV file.

    Fields are split at tabs. A field that starts with ``"`` and ends with ``"`` before a tab or
    the line end is quoted (it may hold tabs and line breaks; ``""`` is one quote), as csv
    writes it; any other quote is plain text, so ``"Pending" payment here`` keeps its quotes.
    Blank lines are skipped.
    """
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    n = 0
    while n < len(lines):
        start, line = n + 1, lines[n].removesuffix("\r")
        if '"' not in line:
            n += 1
            if line:
                yield start, line.split("\t")
            continue
        fields, pos = [], 0
        while True:
            quoted = None
            if line.startswith('"', pos):
                try:
                    quoted = _quoted_field(lines, n, pos + 1)
                except _UnclosedQuote:
                    raise _fail(
                        name, start, 'a field opens with \'"\' that never closes (a quoted field '
                        'ends with \'"\' before a tab or the line end; double a quote inside it)',
                    ) from None  # fmt: skip
            if quoted is not None:
                value, n, pos = quoted
                line = lines[n].removesuffix("\r")
            else:
                tab = line.find("\t", pos)
                value, pos = (
                    line[pos : len(line) if tab < 0 else tab],
                    len(line) if tab < 0 else tab,
                )
            fields.append(value)
            if not line.startswith("\t", pos):
                break
            pos += 1
        n += 1
        yield start, fields


def _csv_records(content: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record of a CSV file (RFC 4180 quoting, strictly)."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    start = 1  # physical line on which the next row begins
    try:
        for row in reader:
            if row:  # csv yields [] for a blank line
                yield start, row
            start = reader.line_num + 1
    except csv.Error as error:
        why = str(error)
        if "expected after" in why:
            why = "a quoted field has text after its closing quote (quote the whole field)"
        elif "end of data" in why:
            why = "a quote opened here never closes"
        raise _fail(name, start, f"malformed CSV: {why}") from None


def _iter_tsv(content: str, name: str, fields: tuple[str, str]) -> Iterator[Row]:
    """Rows of a tab-separated file."""
    return _rows_of(_tsv_records(content, name), name, fields)


def _iter_csv(content: str, name: str, fields: tuple[str, str]) -> Iterator[Row]:
    """Rows of a comma-separated file."""
    return _rows_of(_csv_records(content, name), name, fields)


def _physical_lines(content: str) -> Iterator[tuple[int, str]]:
    """Numbered lines split on ``\\n`` only (``str.splitlines`` also splits on U+2028 etc.)."""
    for line_no, line in enumerate(content.split("\n"), start=1):
        yield line_no, line.removesuffix("\r")


def _iter_jsonl(content: str, name: str, fields: tuple[str, str]) -> Iterator[Row]:
    """Rows of a JSON Lines file: one object per line with a string text field and a label
    field (``fields``: by default ``text`` and ``label``)."""
    text_key, label_key = fields
    for line_no, line in _physical_lines(content):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise _fail(
                name, line_no, f"invalid JSON: {error.msg} (column {error.colno})"
            ) from None
        if not isinstance(record, dict):
            raise _fail(name, line_no, f"expected a JSON object, got {type(record).__name__}")
        for key in fields:
            if key not in record:
                raise _fail(name, line_no, f"object has no {key!r} field ({COLUMN_HINT})")
        text = record[text_key]
        if not isinstance(text, str):
            raise _fail(name, line_no, f"{text_key!r} must be a string, got {type(text).__name__}")
        label = record[label_key]
        if isinstance(label, list) and all(isinstance(item, str) for item in label):
            yield line_no, text, label
            continue
        if not isinstance(label, str):
            kind = type(label).__name__
            raise _fail(
                name, line_no, f"{label_key!r} must be a string or a list of strings, got {kind}"
            )
        if not label.strip():
            raise _fail(name, line_no, "row has no label")
        yield line_no, text, label


def _iter_fasttext(content: str, name: str, fields: tuple[str, str]) -> Iterator[Row]:
    """Rows of a fastText file: ``__label__X`` at the start of the line, then the text (it has
    no named columns, so ``fields`` is not read)."""
    for line_no, line in _physical_lines(content):
        if not line.strip():
            continue
        labels: list[str] = []
        position = len(line) - len(line.lstrip())
        while match := _FASTTEXT_LABEL.match(line, position):
            labels.append(match.group(1))
            position = match.end()
        if not labels:
            raise _fail(name, line_no, "line does not start with a __label__ token")
        if not all(labels):
            raise _fail(name, line_no, "row has no label (empty __label__ token)")
        yield line_no, line[position:].rstrip(), labels[0] if len(labels) == 1 else labels


_READERS: dict[str, Callable[[str, str, tuple[str, str]], Iterator[Row]]] = {
    ".tsv": _iter_tsv,
    ".csv": _iter_csv,
    ".jsonl": _iter_jsonl,
    ".txt": _iter_fasttext,
    ".ft": _iter_fasttext,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_READERS)


def _format_of(path: Path) -> tuple[str, bool]:
    """Return the format extension (e.g. ``.tsv``) and whether the file is gzipped."""
    name = path.name.lower()
    gzipped = name.endswith(".gz")
    extension = Path(name.removesuffix(".gz")).suffix
    if extension not in _READERS:
        supported = ", ".join(f"{ext}[.gz]" for ext in SUPPORTED_EXTENSIONS)
        raise _fail(str(path), None, f"unknown file extension; supported: {supported}")
    return extension, gzipped


def _read_text(path: Path, gzipped: bool) -> str:
    """Read, decompress and decode a file, turning every failure into a DataError."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(name, None, "no such file") from None
    except OSError as error:
        raise _fail(name, None, f"cannot read file: {error.strerror or error}") from None
    if gzipped:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise _fail(name, None, f"corrupt gzip data: {error}") from None
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_no = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start]
        raise _fail(name, line_no, f"invalid UTF-8 (byte 0x{byte:02x})") from None


def _label_of(raw: str | list[str], multi_label: bool, name: str, line_no: int) -> Label:
    """A row's label for the dataset: a string, or with ``multi_label`` a tuple of strings."""
    if not multi_label:
        if isinstance(raw, str):
            return raw.strip()
        if len(raw) == 1:
            return raw[0].strip()
        raise _fail(name, line_no, f"row has {len(raw)} labels; read it as multi-label data")
    parts = raw.split(MULTI_LABEL_SEPARATOR) if isinstance(raw, str) else raw
    label_set = tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if not label_set:
        raise _fail(name, line_no, "row has no label")
    return label_set


def _checked_fields(
    name: str, extension: str, text_column: str, label_column: str
) -> tuple[str, str]:
    """The (text, label) columns to read; a fastText file has none to name."""
    fields = (text_column, label_column)
    if _READERS[extension] is _iter_fasttext and fields != (TEXT_COLUMN, LABEL_COLUMN):
        raise _fail(name, None, "a fastText file has no named columns to choose from")
    return fields


def read_dataset(
    path: str | os.PathLike[str],
    *,
    multi_label: bool = False,
    text_column: str = TEXT_COLUMN,
    label_column: str = LABEL_COLUMN,
) -> Dataset:
    """Read a labelled dataset, choosing the format from the extension.

    With ``multi_label`` every label is a tuple (see the module docstring for the formats).
    ``text_column`` and ``label_column`` name the TSV/CSV columns (JSONL fields) to read.
    Raises DataError (naming file and line) for any missing, unreadable or malformed input.
    """
    path = Path(path)
    if path.is_dir():
        raise _fail(str(path), None, "is a directory, not a data file")
    extension, gzipped = _format_of(path)
    content = _read_text(path, gzipped)
    texts: list[str] = []
    labels: list[Label] = []
    fields = _checked_fields(str(path), extension, text_column, label_column)
    for line_no, text, label in _READERS[extension](content, str(path), fields):
        texts.append(text)
        labels.append(_label_of(label, multi_label, str(path), line_no))
    if not texts:
        raise _fail(str(path), None, "no data rows")
    return Dataset(texts=texts, labels=labels, source=str(path))


STREAM_BLOCK_BYTES = 8 << 20  # decompressed bytes read at a time by :func:`iter_dataset`
_LINE_IN_ERROR = re.compile(r":(\d+): ")


def _shift_error(error: DataError, name: str, lines_before: int) -> DataError:
    """``error`` of a piece of a file with its line number counted from the file's start."""
    message = str(error)
    if message.startswith(name) and (match := _LINE_IN_ERROR.match(message, len(name))):
        line = int(match.group(1)) + lines_before
        message = f"{name}:{line}: {message[match.end() :]}"
    return DataError(message)


def iter_dataset(
    path: str | os.PathLike[str],
    *,
    multi_label: bool = False,
    digest: Any = None,
    text_column: str = TEXT_COLUMN,
    label_column: str = LABEL_COLUMN,
) -> Iterator[tuple[str, Label]]:
    """The (text, label) rows of a dataset file, read a block at a time (memory does not grow
    with the file): the same rows, labels and errors as :func:`read_dataset`. ``digest`` (a
    hashlib object) is fed the file's decompressed bytes."""
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise _fail(name, None, "is a directory, not a data file")
    extension, gzipped = _format_of(path)
    fields = _checked_fields(name, extension, text_column, label_column)
    reader, delimited = _READERS[extension], extension in (".tsv", ".csv")
    try:
        stream = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115 (with below)
    except FileNotFoundError:
        raise _fail(name, None, "no such file") from None
    header, lines_before, pending, rows = None, 0, b"", 0
    with stream:
        while True:
            try:
                block = stream.read(STREAM_BLOCK_BYTES)
            except (OSError, EOFError, zlib.error) as error:
                raise _fail(name, None, f"corrupt gzip data: {error}") from None
            if digest is not None:
                digest.update(block)
            if not lines_before and not pending:
                block = block.removeprefix(_UTF8_BOM)
            pending += block
            cut = pending.rfind(b"\n") + 1 if block else len(pending)
            if cut == 0 and block:
                continue
            raw, rest = pending[:cut], pending[cut:]
            try:
                piece = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                line_no = lines_before + raw.count(b"\n", 0, error.start) + 1
                raise _fail(
                    name, line_no, f"invalid UTF-8 (byte 0x{raw[error.start]:02x})"
                ) from None
            offset = lines_before
            if delimited and header is not None:
                piece, offset = header + piece, lines_before - 1
            try:
                parsed = [
                    (text, _label_of(label, multi_label, name, line_no + offset))
                    for line_no, text, label in reader(piece, name, fields)
                ]
            except DataError as error:
                if block and "never closes" in str(error):
                    continue  # a quoted field runs on past this block: read more first
                raise _shift_error(error, name, offset) from None
            if delimited and header is None:
                header = next((line + "\n" for line in piece.split("\n") if line.strip()), None)
            lines_before += raw.count(b"\n")
            pending = rest
            rows += len(parsed)
            yield from parsed
            if not block:
                break
    if not rows:
        raise _fail(name, None, "no data rows")


def read_lines(raw: bytes, name: str) -> list[str]:
    """Unlabelled texts, one per line, from UTF-8 bytes (a file or stdin called ``name``).

    Lines split at ``\\n`` only, a ``\\r`` before it is dropped (CRLF input), and a byte that
    is not UTF-8 is a DataError naming the line, as in every data file. Blank lines are kept
    (as empty texts) so that outputs stay aligned with input lines.
    """
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_no = raw.count(b"\n", 0, error.start) + 1
        raise _fail(name, line_no, f"invalid UTF-8 (byte 0x{raw[error.start]:02x})") from None
    lines = [line for _, line in _physical_lines(content)]
    return lines[:-1] if lines and lines[-1] == "" else lines


def blank_texts(dataset: Dataset) -> int:
    """How many texts are empty or white space only (a fastText line that is only a label)."""
    return sum(not text.strip() for text in dataset.texts)


# --- writers ---


def _write_delimited(dataset: Dataset, delimiter: str, name: str) -> str:
    """Serialise as csv/tsv with a ``text,label`` header, quoting only where needed."""
    buffer = io.StringIO()
    minimal = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    # With a "\n" line terminator csv does not quote a bare "\r", which a reader would
    # take as a line break; such rows are written fully quoted instead.
    quoted = csv.writer(buffer, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    minimal.writerow(["text", "label"])
    for row_no, (text, label) in enumerate(zip(dataset.texts, dataset.labels, strict=True), 1):
        if isinstance(label, tuple):
            if any(MULTI_LABEL_SEPARATOR in part for part in label):
                raise _fail(name, None, f"row {row_no}: multi-labels cannot hold '|'")
            label = MULTI_LABEL_SEPARATOR.join(label)
        row = (text, label)
        (quoted if any("\r" in field for field in row) else minimal).writerow(row)
    return buffer.getvalue()


def _write_jsonl(dataset: Dataset) -> str:
    """Serialise as JSON Lines, keeping non-ASCII characters readable."""
    return "".join(
        json.dumps(
            {"text": text, "label": list(label) if isinstance(label, tuple) else label},
            ensure_ascii=False,
        )
        + "\n"
        for text, label in zip(dataset.texts, dataset.labels, strict=True)
    )


def _write_fasttext(dataset: Dataset, name: str) -> str:
    """Serialise as fastText lines; refuses what the format cannot represent."""
    lines = []
    for row_no, (text, label) in enumerate(zip(dataset.texts, dataset.labels, strict=True), 1):
        label_set = label if isinstance(label, tuple) else (label,)
        if not label_set or any(not part or any(c.isspace() for c in part) for part in label_set):
            raise _fail(name, None, f"row {row_no}: fastText labels must be non-empty, no spaces")
        if "\n" in text or "\r" in text:
            raise _fail(name, None, f"row {row_no}: fastText texts cannot hold line breaks")
        if text != text.strip():
            raise _fail(
                name, None, f"row {row_no}: fastText lines lose a text's surrounding white space"
            )
        if _FASTTEXT_LABEL.match(text.lstrip()):
            raise _fail(name, None, f"row {row_no}: text starts with a __label__ token")
        lines.append("".join(f"__label__{part} " for part in label_set) + f"{text}\n")
    return "".join(lines)


def write_dataset(dataset: Dataset, path: str | os.PathLike[str]) -> None:
    """Write a dataset in the format given by the extension (gzipped if it ends in ``.gz``).

    csv, tsv and jsonl round-trip any text or label exactly; fastText refuses rows it
    cannot represent (line breaks or surrounding white space in texts, white space in labels).
    """
    path = Path(path)
    extension, gzipped = _format_of(path)
    if extension in (".tsv", ".csv"):
        content = _write_delimited(dataset, "\t" if extension == ".tsv" else ",", str(path))
    elif extension == ".jsonl":
        content = _write_jsonl(dataset)
    else:
        content = _write_fasttext(dataset, str(path))
    data = content.encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
