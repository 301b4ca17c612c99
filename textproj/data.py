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
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textproj import fsio
from textproj.errors import DataError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DataError",
    "Dataset",
    "blank_texts",
    "check_data_file",
    "dataset_of",
    "has_columns",
    "is_blank",
    "iter_dataset",
    "iter_texts",
    "lone_surrogate",
    "name_parts",
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
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# A row's label as read: one string, or a list of strings (JSONL list, several fastText labels).
Row = tuple[int, str, str | list[str]]
# The (text, label) columns or fields to read; a label of None reads texts only.
Fields = tuple[str, str | None]
# A dataset's label: one string, or for multi-label data a tuple of strings.
Label = str | tuple[str, ...]
MULTI_LABEL_SEPARATOR = "|"  # multi-label TSV/CSV (and JSONL string) labels: "a|b"
TEXT_COLUMN = "text"  # the TSV/CSV column (JSONL field) read as the text, unless one is named
LABEL_COLUMN = "label"  # ... and as the label
DEFAULT_COLUMNS = (TEXT_COLUMN, LABEL_COLUMN)
COLUMN_HINT = "--text-column / --label-column name others"
MULTI_LABEL_HINT = "read it as multi-label data (--multi-label, multi_label=True)"
TEXT_COLUMN_HINT = "--text-column names another"  # where only texts are read
NO_SUCH_FILE = "no such file"  # a data file's path that names nothing on disk


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


def _rows_of(records: Iterator[tuple[int, list[str]]], name: str, fields: Fields) -> Iterator[Row]:
    """Rows of a delimited file's records ``(first line, fields)`` whose header names the text
    and the label column ``fields`` (other columns are ignored; no label column: texts only,
    each label ``""``). A row with more non-empty fields than the header is refused: an
    unquoted delimiter in a text would shift its label. No header (an empty file) gives no
    rows, as a header-only file and an empty file of any other format do: what no rows means
    is the caller's (:func:`read_dataset` refuses it, predict warns)."""
    header_record = next(records, None)
    if header_record is None:
        return
    start, header = header_record
    columns = [column.strip() for column in header]
    hint = COLUMN_HINT if fields[1] is not None else TEXT_COLUMN_HINT
    for required in fields:
        if required is not None and required not in columns:
            raise _fail(
                name, start, f"header has no {required!r} column (found: {header!r}; {hint})"
            )
    text_at = columns.index(fields[0])
    label_at = None if fields[1] is None else columns.index(fields[1])
    needed = max(text_at, -1 if label_at is None else label_at) + 1
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
        label = "" if label_at is None else row[label_at]
        if label_at is not None:
            _label_set([label], f"{name}:{start}")
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


def _iter_tsv(content: str, name: str, fields: Fields) -> Iterator[Row]:
    """Rows of a tab-separated file."""
    return _rows_of(_tsv_records(content, name), name, fields)


def _iter_csv(content: str, name: str, fields: Fields) -> Iterator[Row]:
    """Rows of a comma-separated file."""
    return _rows_of(_csv_records(content, name), name, fields)


def _physical_lines(content: str) -> Iterator[tuple[int, str]]:
    """Numbered lines split on ``\\n`` only (``str.splitlines`` also splits on U+2028 etc.)."""
    for line_no, line in enumerate(content.split("\n"), start=1):
        yield line_no, line.removesuffix("\r")


def lone_surrogate(value: str, what: str) -> str | None:
    """Why ``value`` (called ``what``) cannot be read, if it holds a lone surrogate (as a JSON
    ``\\udc80`` escape can): no UTF-8 file can hold one, so neither a model file (its labels)
    nor an output file could be written, and the C and wasm runtimes, which read UTF-8, could
    never be given that text. Such input is refused, as invalid UTF-8 is; nothing is replaced."""
    found = _LONE_SURROGATE.search(value)
    if found is None:
        return None
    return (
        f"{what} holds a lone surrogate (U+{ord(found.group()):04X}, half of a UTF-16 pair), "
        "which UTF-8 cannot encode"
    )


def _refuse_surrogates(value: str | list[str], name: str, line_no: int, key: str) -> None:
    """A DataError naming the file, line and field if a JSON string holds a lone surrogate."""
    for part in [value] if isinstance(value, str) else value:
        if problem := lone_surrogate(part, repr(key)):
            raise _fail(name, line_no, problem)


def _iter_jsonl(content: str, name: str, fields: Fields) -> Iterator[Row]:
    """Rows of a JSON Lines file: one object per line with a string text field and a label
    field (``fields``: by default ``text`` and ``label``; no label field: texts only, each
    label ``""``, and a line may also be a bare JSON string)."""
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
        if label_key is None and isinstance(record, str):
            _refuse_surrogates(record, name, line_no, text_key)
            yield line_no, record, ""
            continue
        if not isinstance(record, dict):
            raise _fail(name, line_no, f"expected a JSON object, got {type(record).__name__}")
        hint = COLUMN_HINT if label_key is not None else TEXT_COLUMN_HINT
        for key in fields:
            if key is not None and key not in record:
                raise _fail(name, line_no, f"object has no {key!r} field ({hint})")
        text = record[text_key]
        if not isinstance(text, str):
            raise _fail(name, line_no, f"{text_key!r} must be a string, got {type(text).__name__}")
        _refuse_surrogates(text, name, line_no, text_key)
        if label_key is None:
            yield line_no, text, ""
            continue
        label = record[label_key]
        if isinstance(label, list) and all(isinstance(item, str) for item in label):
            _refuse_surrogates(label, name, line_no, label_key)
            yield line_no, text, label
            continue
        if not isinstance(label, str):
            kind = type(label).__name__
            raise _fail(
                name, line_no, f"{label_key!r} must be a string or a list of strings, got {kind}"
            )
        _label_set([label], f"{name}:{line_no}")
        _refuse_surrogates(label, name, line_no, label_key)
        yield line_no, text, label


def _fasttext_labels(line: str) -> tuple[list[str], int]:
    """The ``__label__`` tokens a fastText line starts with, and where its text begins."""
    labels: list[str] = []
    position = len(line) - len(line.lstrip())
    while match := _FASTTEXT_LABEL.match(line, position):
        labels.append(match.group(1))
        position = match.end()
    return labels, position


def _iter_fasttext(content: str, name: str, fields: Fields) -> Iterator[Row]:
    """Rows of a fastText file: ``__label__X`` at the start of the line, then the text (it has
    no named columns, so ``fields`` is not read)."""
    for line_no, line in _physical_lines(content):
        if not line.strip():
            continue
        labels, position = _fasttext_labels(line)
        if not labels:
            raise _fail(name, line_no, "line does not start with a __label__ token")
        for label in labels:
            _label_set([label], f"{name}:{line_no}", " (empty __label__ token)")
        yield line_no, line[position:].rstrip(), labels[0] if len(labels) == 1 else labels


def _iter_lines(content: str, name: str, fields: Fields) -> Iterator[Row]:
    """Texts of a file of one text per line, blank lines kept (as empty texts, so outputs stay
    aligned with input lines) and no labels: a fastText line's leading ``__label__`` tokens are
    dropped and its text read as :func:`_iter_fasttext` reads it; any other line is kept as it
    is. ``name`` and ``fields`` are not read (a reader's signature)."""
    lines = list(_physical_lines(content))
    if lines[-1][1] == "":
        lines.pop()  # after the last line break
    for line_no, line in lines:
        labels, position = _fasttext_labels(line)
        yield line_no, line[position:].rstrip() if labels else line, ""


_READERS: dict[str, Callable[[str, str, Fields], Iterator[Row]]] = {
    ".tsv": _iter_tsv,
    ".csv": _iter_csv,
    ".jsonl": _iter_jsonl,
    ".txt": _iter_fasttext,
    ".ft": _iter_fasttext,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_READERS)
# Texts only (predict --input, train --unlabeled): a TSV/CSV/JSONL file by the readers of
# labelled data, its labels not read; any other file (fastText, plain text) one text per line
# (_iter_lines).
_TEXT_READERS: dict[str, Callable[[str, str, Fields], Iterator[Row]]] = {
    extension: _READERS[extension] for extension in (".tsv", ".csv", ".jsonl")
}


def name_parts(path: Path) -> tuple[str, bool]:
    """The file's extension before any ``.gz`` (e.g. ``.tsv``, or ``""``), and whether it is
    gzipped."""
    name = path.name.lower()
    return Path(name.removesuffix(".gz")).suffix, name.endswith(".gz")


def _unreadable(name: str, error: OSError) -> DataError:
    """The DataError for an OSError opening file ``name``: a path naming nothing (a missing
    file, or one under a file) is NO_SUCH_FILE, anything else says why it cannot be read."""
    if isinstance(error, FileNotFoundError | NotADirectoryError):
        return _fail(name, None, NO_SUCH_FILE)
    return _fail(name, None, f"cannot read file: {error.strerror or error}")


def check_data_file(path: str | os.PathLike[str]) -> None:
    """A DataError naming ``path`` if it is missing, a directory or does not open, before its
    extension or content is judged: every reader calls it first, so that ``abc`` (no such file)
    is not blamed for its extension, and a directory is not an Errno. The CLI calls it too, for
    every data file before any is read or a model is loaded."""
    path = Path(path)
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
    except OSError as error:
        raise _unreadable(str(path), error) from None
    if is_dir:
        raise _fail(str(path), None, "is a directory, not a data file")
    try:
        path.open("rb").close()
    except OSError as error:
        raise _unreadable(str(path), error) from None


def _format_of(path: Path) -> tuple[str, bool]:
    """Return the format extension (e.g. ``.tsv``) and whether the file is gzipped."""
    extension, gzipped = name_parts(path)
    if extension not in _READERS:
        supported = ", ".join(f"{ext}[.gz]" for ext in SUPPORTED_EXTENSIONS)
        raise _fail(str(path), None, f"unknown file extension; supported: {supported}")
    return extension, gzipped


def _read_text(path: Path, gzipped: bool) -> str:
    """Read, decompress and decode a file, turning every failure into a DataError."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise _unreadable(name, error) from None
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


def _label_set(parts: Iterable[str], where: str, note: str = "") -> tuple[str, ...]:
    """The labels among ``parts``, by the one rule for labels (of every file format and of data
    in memory): each trimmed of surrounding white space, blank ones dropped, repeats dropped
    (first order kept). A DataError ``<where>: row has no label`` (``note`` appended) if none is
    left. The readers call it too, so that in a streamed block a row with no label is refused
    before a later row's error, as when the file is read whole."""
    label_set = tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if not label_set:
        raise DataError(f"{where}: row has no label{note}")
    return label_set


def _label_of(raw: str | list[str], multi_label: bool, where: str) -> Label:
    """A row's label for the dataset (:func:`_label_set`'s rule): a string, or with
    ``multi_label`` a tuple of strings (``raw`` split at ``|``); a DataError starting with
    ``where`` if it has none, or (without ``multi_label``) several."""
    if not multi_label:
        if isinstance(raw, list) and len(raw) != 1:
            raise DataError(f"{where}: row has {len(raw)} labels; {MULTI_LABEL_HINT}")
        (label,) = _label_set([raw] if isinstance(raw, str) else raw, where)
        return label
    return _label_set(raw.split(MULTI_LABEL_SEPARATOR) if isinstance(raw, str) else raw, where)


def _checked_str(value: Any, where: str) -> str:
    """``value`` as a plain str (a numpy string too); a TypeError naming ``where`` otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{where} is {type(value).__name__} {value!r}, not a str")
    return str(value)


def dataset_of(
    texts: Any, labels: Any, multi_label: bool, where: str, source: str = "texts"
) -> Dataset:
    """Texts and labels given in memory (lists, tuples, numpy arrays, a Dataset's lists) as a
    Dataset from ``source``, by the file readers' rules: every text a str, every label a
    non-empty str trimmed of white space (with ``multi_label``, a list of them or an ``a|b``
    str). Errors start with ``where`` and name the first bad element (``labels[3]``); other
    label types (ints) are refused, not converted, so that ``1`` and ``1.0`` never silently
    become the two classes ``"1"`` and ``"1.0"``."""
    if labels is None:
        raise TypeError(f"{where}: labels are missing; give one label per text")
    for name, values in (("texts", texts), ("labels", labels)):
        if isinstance(values, str):
            raise TypeError(f"{where}: {name} is one str; give a list of {name}")
        if not isinstance(values, Iterable):
            raise TypeError(f"{where}: {name} is {type(values).__name__}; give a list of {name}")
    checked_texts = [_checked_str(text, f"{where}: texts[{i}]") for i, text in enumerate(texts)]
    checked_labels: list[Label] = []
    for i, label in enumerate(labels):
        at = f"{where}: labels[{i}]"
        if isinstance(label, str):
            raw: str | list[str] = str(label)
        elif isinstance(label, list | tuple):
            raw = [_checked_str(part, f"{at}[{j}]") for j, part in enumerate(label)]
        else:
            raise TypeError(f"{at} is {type(label).__name__} {label!r}, not a str")
        checked_labels.append(_label_of(raw, multi_label, at))
    if len(checked_texts) != len(checked_labels):
        raise ValueError(f"{where}: {len(checked_texts)} texts but {len(checked_labels)} labels")
    return Dataset(checked_texts, checked_labels, source)


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
    check_data_file(path)
    extension, gzipped = _format_of(path)
    content = _read_text(path, gzipped)
    texts: list[str] = []
    labels: list[Label] = []
    fields = _checked_fields(str(path), extension, text_column, label_column)
    for line_no, text, label in _READERS[extension](content, str(path), fields):
        texts.append(text)
        labels.append(_label_of(label, multi_label, f"{path}:{line_no}"))
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


def _stream_rows(
    path: Path, extension: str, gzipped: bool, fields: Fields, digest: Any = None
) -> Iterator[Row]:
    """The rows of the reader of ``extension`` (with no label field, of :data:`_TEXT_READERS`),
    a block at a time so that memory does not grow with the file, with line numbers (and
    errors) counted from the file's start. ``digest`` (a hashlib object) is fed the
    decompressed bytes."""
    name = str(path)
    readers = _READERS if fields[1] is not None else _TEXT_READERS
    reader, delimited = readers.get(extension, _iter_lines), extension in (".tsv", ".csv")
    try:
        stream = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115 (with below)
    except OSError as error:
        raise _unreadable(name, error) from None
    header, lines_before, pending = None, 0, b""
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
                    (line_no + offset, text, label)
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
            yield from parsed
            if not block:
                break


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
    check_data_file(path)
    extension, gzipped = _format_of(path)
    fields = _checked_fields(str(path), extension, text_column, label_column)
    rows = 0
    for line_no, text, label in _stream_rows(path, extension, gzipped, fields, digest):
        rows += 1
        yield text, _label_of(label, multi_label, f"{path}:{line_no}")
    if not rows:
        raise _fail(str(path), None, "no data rows")


TEXT_PROGRESS_LINES = 10_000  # lines between progress reports of :func:`iter_texts`


def has_columns(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (``.gz`` or not) is a TSV, CSV or JSONL file, whose texts are a named
    column or field; any other file is read by :func:`iter_texts` as one text per line."""
    return name_parts(Path(path))[0] in _TEXT_READERS


def iter_texts(
    path: str | os.PathLike[str],
    *,
    text_column: str = TEXT_COLUMN,
    on_progress: Callable[[int], None] | None = None,
    digest: Any = None,
) -> Iterator[str]:
    """Every text of a file, in order, labels not read; ``.gz`` too. A TSV, CSV or JSONL file
    is read record by record as :func:`read_dataset` reads it (its ``text_column``; a label
    column need not be there), so it gives the same texts and the same one-line errors; any
    other file is one text per line (blank lines kept, a fastText line's ``__label__`` tokens
    dropped). Read a block at a time, reporting the line reached every
    TEXT_PROGRESS_LINES lines to ``on_progress``; ``digest`` (a hashlib object) is fed the
    decompressed bytes."""
    path = Path(path)
    check_data_file(path)
    extension, gzipped = name_parts(path)
    report_at = TEXT_PROGRESS_LINES
    for line_no, text, _ in _stream_rows(path, extension, gzipped, (text_column, None), digest):
        yield text
        if on_progress is not None and line_no >= report_at:
            on_progress(line_no)
            report_at = (line_no // TEXT_PROGRESS_LINES + 1) * TEXT_PROGRESS_LINES


def read_lines(raw: bytes, name: str) -> list[str]:
    """Unlabelled texts, one per line, from UTF-8 bytes (stdin, called ``name``), as
    :func:`iter_texts` reads a file of them.

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
    return [text for _, text, _ in _iter_lines(content, name, (TEXT_COLUMN, None))]


def is_blank(text: str) -> bool:
    """Whether ``text`` is empty or white space only (``str.isspace``): it projects to all-zero
    bits, so ``textproj predict`` and the demo give it no label (the C example and the web
    page mirror this set of characters)."""
    return not text.strip()


def blank_texts(dataset: Dataset) -> int:
    """How many texts are blank (:func:`is_blank`; a fastText line that is only a label)."""
    return sum(is_blank(text) for text in dataset.texts)


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
    """Write a dataset in the format given by the extension (gzipped if it ends in ``.gz``),
    atomically: an existing file is replaced whole or left as it was.

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
    fsio.write_bytes(path, gzip.compress(data, mtime=0) if gzipped else data)
