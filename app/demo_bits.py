"""A text's projection bits as a labelled grid, and which of them changed since the last text.

Whole-text model: one row per projection function (T rows of d bits). Per-token model: one row
of T·d bits per token. A token's bits depend on that token only, so for token models the rows of
two texts are matched by aligning their token sequences (``difflib``): an unchanged token has the
same bits, an edited one shows its flipped bits, an inserted or deleted one counts all its bits.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from textproj import Classifier
from textproj.features import tokens


@dataclass(frozen=True)
class BitGrid:
    """Bits of one text: ``bits`` (rows, columns) 0/1 uint8 and one name per row."""

    rows: list[str]
    bits: np.ndarray
    per_token: bool


@dataclass(frozen=True)
class BitChange:
    """How a grid differs from the previous one.

    ``flips`` has the grid's shape: +1 a bit that turned on, -1 one that turned off, 0 unchanged
    (rows with no previous counterpart compare against all-zero bits). ``hamming`` counts every
    differing bit, including those of rows that were deleted.
    """

    flips: np.ndarray
    hamming: int


def bit_grid(classifier: Classifier, text: str) -> BitGrid:
    """The bits ``classifier`` feeds its network for ``text``, as a grid."""
    projector = classifier.projector
    if classifier.design == "text":
        bits = classifier.projection_bits([text])[0]
        grid = bits.reshape(projector.num_projections, projector.bits_per_projection)
        rows = [f"P{k + 1}" for k in range(projector.num_projections)]
        return BitGrid(rows, grid, per_token=False)
    bits, _ = classifier.projection_bits([text])
    names = tokens(text, projector.features)
    return BitGrid(names, bits, per_token=True)


def _row_pairs(current: BitGrid, previous: BitGrid) -> tuple[list[int | None], list[int]]:
    """For each current row, the previous row it corresponds to (or None); unmatched old rows."""
    if not current.per_token:
        return list(range(len(current.rows))), []
    matcher = difflib.SequenceMatcher(a=previous.rows, b=current.rows, autojunk=False)
    partner: list[int | None] = [None] * len(current.rows)
    deleted: list[int] = []
    for _, a0, a1, b0, b1 in matcher.get_opcodes():
        common = min(a1 - a0, b1 - b0)
        for offset in range(common):
            partner[b0 + offset] = a0 + offset
        deleted.extend(range(a0 + common, a1))
    return partner, deleted


def compare(current: BitGrid, previous: BitGrid) -> BitChange:
    """Which bits of ``current`` flipped relative to ``previous``, and the Hamming distance."""
    if current.per_token != previous.per_token or current.bits.shape[1:] != previous.bits.shape[1:]:
        raise ValueError("grids come from different projections and cannot be compared")
    partner, deleted = _row_pairs(current, previous)
    before = np.zeros_like(current.bits)
    for row, old in enumerate(partner):
        if old is not None:
            before[row] = previous.bits[old]
    flips = current.bits.astype(np.int8) - before.astype(np.int8)
    hamming = int(np.count_nonzero(flips)) + int(previous.bits[deleted].sum())
    return BitChange(flips, hamming)
