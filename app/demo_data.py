"""Data and model files handed to the demo: uploaded bytes in, checked datasets and models out.

Uploads arrive as bytes with a file name; the library reads data files, choosing the format from
the extension, so a dataset's bytes are written to a private temporary file with the same suffix
first (a model is loaded from its bytes). Any problem is raised as ``DataError`` /
``ModelFormatError`` whose message names the uploaded file (not the temporary one), ready to show
the user.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import textproj
from textproj import Classifier, DataError, Dataset
from textproj.data import COLUMN_HINT, LABEL_COLUMN, MULTI_LABEL_HINT, TEXT_COLUMN
from textproj.runtime import load_bytes

UPLOAD_TYPES = ("tsv", "csv", "jsonl", "txt", "ft", "gz")
# The demo trains single-label models: what a row with several labels can do instead.
SINGLE_LABEL_ONLY = (
    "the demo trains single-label models: keep one label per row, or train a multi-label model "
    "with `textproj train --multi-label`"
)


def _suffix(name: str) -> str:
    """The extension(s) the reader keys on: ``.tsv``, or ``.tsv.gz`` for a gzipped file."""
    suffixes = Path(name).suffixes
    return "".join(suffixes[-2:]) if suffixes[-1:] == [".gz"] else "".join(suffixes[-1:])


def _renamed(error: Exception, temporary: Path, name: str) -> str:
    return str(error).replace(str(temporary), name)


def read_uploaded_dataset(
    name: str, data: bytes, text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN
) -> Dataset:
    """Parse an uploaded TSV/CSV/JSONL/fastText file (``.gz`` too), reading the named columns of
    a TSV/CSV/JSONL one; DataError names ``name`` (and the page's column fields)."""
    if not data:
        raise DataError(f"{name}: file is empty")
    with tempfile.TemporaryDirectory(prefix="textproj-upload-") as folder:
        path = Path(folder) / f"upload{_suffix(name)}"
        path.write_bytes(data)
        try:
            dataset = textproj.read_dataset(
                path, text_column=text_column, label_column=label_column
            )
        except DataError as error:
            message = (
                _renamed(error, path, name)
                .replace(COLUMN_HINT, "name others in the column fields")
                .replace(MULTI_LABEL_HINT, SINGLE_LABEL_ONLY)
            )
            raise DataError(message) from None
    return Dataset(dataset.texts, dataset.labels, name)


def check_training_set(dataset: Dataset) -> None:
    """Raise DataError unless ``dataset`` can be trained on: two labels, each seen twice."""
    labels = set(dataset.labels)
    if len(labels) < 2:
        raise DataError(f"{dataset.source}: needs at least 2 different labels, found {len(labels)}")
    if len(dataset) < 2 * len(labels):
        raise DataError(
            f"{dataset.source}: {len(dataset)} examples for {len(labels)} labels is too few "
            "to train and carve a dev split from"
        )


def load_uploaded_model(name: str, data: bytes) -> Classifier:
    """Load an uploaded model.tpn from its bytes (no file is written, none is left behind);
    ModelFormatError names ``name``."""
    return load_bytes(data, name=name)
