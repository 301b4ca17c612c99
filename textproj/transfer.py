"""Transfer texts: texts without labels that the projection network learns from through the
distillation term alone, the trainer's soft outputs labelling them (semi-supervised training,
the next step the ProjectionNet authors name).

Two sources: a file of unlabelled texts (:func:`read_unlabeled`, streamed; read as
``data.iter_texts`` reads it), and
augmented copies of the training texts (:func:`augment`, after Tang et al. 2019: token masking,
n-gram sampling, swapping neighbouring words).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from textproj.data import TEXT_COLUMN, iter_texts
from textproj.errors import DataError

MASK_TOKEN = "[mask]"  # what token masking puts in place of a word (one token of its own)
MASK_PROBABILITY = 0.1  # per word (Tang et al. 2019)
NGRAM_PROBABILITY = 0.25  # per copy: keep only a random n-gram of the words
NGRAM_MAX = 5
SWAP_PROBABILITY = 0.1  # per neighbouring pair


def iter_unlabeled(
    path: str | os.PathLike[str],
    on_progress: Callable[[int], None] | None = None,
    text_column: str = TEXT_COLUMN,
    digest: Any = None,
) -> Iterator[str]:
    """The non-blank texts of ``data.iter_texts`` (streamed, reporting lines read to
    ``on_progress``, feeding the decompressed bytes to ``digest``); none at all is a DataError
    naming the file."""
    empty = True
    texts = iter_texts(path, text_column=text_column, on_progress=on_progress, digest=digest)
    for text in texts:
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
