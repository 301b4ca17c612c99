"""Write ``projection.json``: fixed texts with their features, tokens and bits.

Run this only when a change to hashing, features or projection is intended (it changes every
trained model), then commit the new JSON with that change::

    python tests/golden/make_golden.py

``tests/test_golden.py`` reads the inputs stored in the JSON, recomputes every output with the
library and compares exactly; it never imports this script.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np

from textproj.config import FeatureConfig
from textproj.features import featurize, tokens
from textproj.projector import Projector

OUT = Path(__file__).with_name("projection.json")

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "I lost my card, can you block it? I need a new one ASAP!!",
    "Привет, мир! Где ближайший банкомат?",
    "東京タワーは高いです。",
    "我的银行卡丢了怎么办",
    "مرحبا بالعالم، أين بطاقتي؟",
    "Great job 👍🏽🎉 ❤️ 👨\u200d👩\u200d👧 lol",
    "ＨＥＬＬＯ Ｗｏｒｌｄ ﬁnance Straße ΣΊΣΥΦΟΣ",
    "Café CAFÉ cafe\u0301 naïve Ångström",
    "",
    "   \t\n\u00a0\u3000  ",
    "!?.,;:…—()[]«»",
    "transfer transfer transfer money money to my account",
    "x",
    "año 2024: 3.14% of $5+3 = 8 (supercalifragilisticexpialidocious)",
]

FEATURE_CONFIGS = {
    "default": FeatureConfig(),
    "custom": FeatureConfig(
        word_ngrams=3,
        skip_grams=2,
        char_ngram_min=2,
        char_ngram_max=5,
        word_weight=3,
        char_weight=1,
        sublinear=True,
    ),
    "capped": FeatureConfig(max_chars=12, max_tokens=3),
}

PACKED = {
    "default_80x14_seed0": {"num_projections": 80, "bits_per_projection": 14, "seed": 0},
    "custom_80x14_seed0": {
        "num_projections": 80,
        "bits_per_projection": 14,
        "seed": 0,
        "features": "custom",
    },
}

TOKENS_PROJECTOR = {"num_projections": 16, "bits_per_projection": 16, "seed": 3}


def _projector(spec: dict) -> Projector:
    features = FEATURE_CONFIGS[spec.get("features", "default")]
    return Projector(
        spec["num_projections"],
        spec["bits_per_projection"],
        features=features,
        seed=spec["seed"],
        n_jobs=1,
    )


def _hex_rows(rows: np.ndarray) -> list[str]:
    return [bytes(row).hex() for row in np.packbits(rows, axis=1, bitorder="little")]


def build() -> dict:
    features = {}
    for name, config in FEATURE_CONFIGS.items():
        hashes, weights, offsets = featurize(TEXTS, config)
        features[name] = [
            {
                "hashes": [f"{int(h):016x}" for h in hashes[lo:hi]],
                "weights": [int(w) for w in weights[lo:hi]],
            }
            for lo, hi in itertools.pairwise(offsets)
        ]
    packed = {}
    for name, spec in PACKED.items():
        bits = _projector(spec).transform_packed(TEXTS)
        packed[name] = {**spec, "bits": [bytes(row).hex() for row in bits]}
    token_bits, token_offsets = _projector(TOKENS_PROJECTOR).transform_tokens(TEXTS)
    return {
        "about": (
            "Golden outputs of textproj hashing, features and projection. Regenerate with "
            "`python tests/golden/make_golden.py` only for an intended, model-breaking change."
        ),
        "texts": TEXTS,
        "feature_configs": {n: dataclasses.asdict(c) for n, c in FEATURE_CONFIGS.items()},
        "features": features,
        "tokens": [tokens(text) for text in TEXTS],
        "packed": packed,
        "token_bits": {
            **TOKENS_PROJECTOR,
            "rows": _hex_rows(token_bits),
            "offsets": [int(o) for o in token_offsets],
        },
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
