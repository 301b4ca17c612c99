"""Transfer texts: texts without labels that the projection network learns from through the
distillation term alone, the trainer's soft outputs labelling them (semi-supervised training,
the next step the ProjectionNet authors name).

Two sources: a file of unlabelled texts (:func:`read_unlabeled`, streamed line by line), and
augmented copies of the training texts (:func:`augment`, after Tang et al. 2019: token masking,
n-gram sampling, swapping neighbouring words).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from textproj.data import TEXT_COLUMN, TEXT_COLUMN_HINT
from textproj.errors import DataError

MASK_TOKEN = "[mask]"  # what token masking puts in place of a word (one token of its own)
MASK_PROBABILITY = 0.1  # per word (Tang et al. 2019)
NGRAM_PROBABILITY = 0.25  # per copy: keep only a random n-gram of the words
NGRAM_MAX = 5
SWAP_PROBABILITY = 0.1  # per neighbouring pair
_FASTTEXT_LABELS = re.compile(r"^\s*(?:__label__\S*\s+)*")
_PROGRESS_EVERY = 10_000  # lines between progress reports while reading


DATA_SUFFIXES = (".tsv", ".csv", ".jsonl")  # files whose text is a named column or field


def is_data_file(path: Path) -> bool:
    """Whether ``path`` (``.gz`` or not) is a TSV, CSV or JSONL file, read by its text column."""
    return path.name.lower().removesuffix(".gz").endswith(DATA_SUFFIXES)


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _texts_of(
    path: Path, handle: io.TextIOBase, column: str = TEXT_COLUMN
) -> Iterator[tuple[int, str]]:
    """(line number, text) of every record: TSV/CSV ``column``, JSONL ``column`` field (or a
    JSON string), otherwise one text per line with any leading ``__label__`` tokens dropped."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".csv")):
        csv.field_size_limit(2**31 - 1)
        reader = csv.reader(handle, delimiter="\t" if name.endswith(".tsv") else ",")
        header = next(reader, None)
        names = [name.strip() for name in header or []]
        if column not in names:
            raise DataError(f"{path}:1: header has no {column!r} column ({TEXT_COLUMN_HINT})")
        at = names.index(column)
        for row in reader:
            if len(row) > at:
                yield reader.line_num, row[at]
        return
    for line_no, line in enumerate(handle, start=1):
        line = line.rstrip("\r\n")
        if name.endswith(".jsonl"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{line_no}: invalid JSON: {error.msg}") from None
            text = record.get(column) if isinstance(record, dict) else record
            if not isinstance(text, str):
                raise DataError(f"{path}:{line_no}: expected a {column!r} string")
            yield line_no, text
        else:
            yield line_no, _FASTTEXT_LABELS.sub("", line, count=1)


def iter_texts(
    path: str | os.PathLike[str],
    on_progress: Callable[[int], None] | None = None,
    text_column: str = TEXT_COLUMN,
) -> Iterator[str]:
    """Every text of a file, blank ones included (labels, if any, ignored); ``.gz`` too; of a
    TSV, CSV or JSONL file its ``text_column``, otherwise one text per line.

    Read as a stream, reporting lines read to ``on_progress``. A missing or unreadable file
    is a DataError naming it (and the line, for bad UTF-8 or JSON).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    line_no = 0
    try:
        with _open_text(path) as handle:
            for line_no, text in _texts_of(path, handle, text_column):
                yield text
                if on_progress is not None and line_no % _PROGRESS_EVERY == 0:
                    on_progress(line_no)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}:{line_no + 1}: invalid UTF-8 ({error.reason})") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read file: {error}") from None


def read_texts(
    path: str | os.PathLike[str],
    on_progress: Callable[[int], None] | None = None,
    text_column: str = TEXT_COLUMN,
) -> list[str]:
    """The texts of :func:`iter_texts`, as a list."""
    return list(iter_texts(path, on_progress, text_column))


def iter_unlabeled(
    path: str | os.PathLike[str],
    on_progress: Callable[[int], None] | None = None,
    text_column: str = TEXT_COLUMN,
) -> Iterator[str]:
    """The non-blank texts of :func:`iter_texts`; none at all is a DataError naming the file."""
    empty = True
    for text in iter_texts(path, on_progress, text_column):
        if text.strip():
            empty = False
            yield text
    if empty:
        raise DataError(f"{path}: no texts (the file is empty or every line is blank)")


def read_unlabeled(
    path: str | os.PathLike[str],
    on_progress: Callable[[int], None] | None = None,
    text_column: str = TEXT_COLUMN,
) -> list[str]:
    """The texts of :func:`iter_unlabeled`, as a list."""
    return list(iter_unlabeled(path, on_progress, text_column))


def augment_text(text: str, rng: np.random.Generator) -> str:
    """One augmented copy of ``text``: each word masked with MASK_PROBABILITY, neighbours
    swapped with SWAP_PROBABILITY, and with NGRAM_PROBABILITY only a random 1..NGRAM_MAX-gram
    of the words kept."""
    words = text.split()
    if not words:
        return text
    words = [MASK_TOKEN if rng.random() < MASK_PROBABILITY else word for word in words]
    for i in range(len(words) - 1):
        if rng.random() < SWAP_PROBABILITY:
            words[i], words[i + 1] = words[i + 1], words[i]
    if len(words) > 1 and rng.random() < NGRAM_PROBABILITY:
        n = int(rng.integers(1, min(NGRAM_MAX, len(words)) + 1))
        start = int(rng.integers(0, len(words) - n + 1))
        words = words[start : start + n]
    return " ".join(words)


def augment(texts: Sequence[str], copies: int, seed: int) -> list[str]:
    """``copies`` augmented copies of every text, deterministic for a ``seed``."""
    rng = np.random.default_rng([seed, 0x7A55])
    return [augment_text(text, rng) for _ in range(copies) for text in texts]
