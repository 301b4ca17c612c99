"""The one home of the feature and projection defaults; both serialise to JSON for the model file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FeatureConfig:
    """Which sparse features a text yields before projection, and how they are weighted.

    Texts are normalised (Unicode NFKC, then casefold), cut to ``max_chars`` code points, and split
    into tokens at white space and punctuation (symbols such as emoji, and each CJK ideograph or
    kana, are tokens of their own). Features are hashed with a fixed 64-bit hash, one namespace
    per kind.
    """

    word_ngrams: int = 2  # word n-grams of order 1..word_ngrams (SGNN: uni- and bi-grams)
    skip_grams: int = 1  # word pairs with 1..skip_grams words skipped between them; 0 turns off
    char_ngram_min: int = 3  # character n-grams over "<word>" (with boundary marks) ...
    char_ngram_max: int = 4  # ... of min..max code points; char_ngram_max = 0 turns them off
    word_weight: int = 2  # integer weight of each word, word n-gram and skip-gram occurrence
    char_weight: int = 1  # integer weight of each character n-gram occurrence
    sublinear: bool = False  # weight kind_weight * (1 + floor(log2(count))) instead of counts
    max_chars: int = 20_000  # cap on code points per text after normalisation (bounds time, memory)
    max_tokens: int = 1_000  # cap on tokens per text; later tokens are ignored

    def __post_init__(self) -> None:
        checks = {
            "word_ngrams": self.word_ngrams >= 1,
            "skip_grams": self.skip_grams >= 0,
            "char_ngram_min": self.char_ngram_max == 0 or 2 <= self.char_ngram_min,
            "char_ngram_max": self.char_ngram_max == 0 or self.char_ngram_max >= self.char_ngram_min,
            "word_weight": 0 <= self.word_weight <= 255,
            "char_weight": 0 <= self.char_weight <= 255,
            "max_chars": self.max_chars >= 1,
            "max_tokens": self.max_tokens >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"FeatureConfig.{name}={getattr(self, name)!r} is out of range")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error, missing keys default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown feature config keys: {', '.join(unknown)}")
        return cls(**data)
