"""Golden vectors: features, tokens and bits of fixed texts must never change by accident.

``tests/golden/projection.json`` holds the inputs (texts, feature configs, projector
parameters) and the outputs computed when it was generated. Every output is recomputed here
from the stored inputs and compared exactly, so any change to hashing, normalisation,
tokenisation, features or projection fails these tests. If such a change is intended (it
invalidates every trained model), regenerate the file with ``tests/golden/make_golden.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from textproj.config import FeatureConfig
from textproj.features import featurize, tokens
from textproj.projector import Projector

GOLDEN = json.loads(
    (Path(__file__).parent / "golden" / "projection.json").read_text(encoding="utf-8")
)
TEXTS: list[str] = GOLDEN["texts"]
CONFIGS = {name: FeatureConfig.from_dict(d) for name, d in GOLDEN["feature_configs"].items()}


def test_golden_file_covers_what_it_should() -> None:
    # Guards against a truncated or emptied golden file passing vacuously.
    assert len(TEXTS) >= 15
    assert "" in TEXTS
    assert any(t and not t.strip() for t in TEXTS)
    assert set(CONFIGS) == {"default", "custom", "capped"}
    assert CONFIGS["default"] == FeatureConfig()
    assert CONFIGS["custom"].sublinear and CONFIGS["custom"].skip_grams == 2
    assert sum(len(f["hashes"]) for f in GOLDEN["features"]["default"]) > 500
    assert len(GOLDEN["token_bits"]["rows"]) == GOLDEN["token_bits"]["offsets"][-1] > 50


@pytest.mark.parametrize("name", sorted(GOLDEN["features"]))
def test_features(name: str) -> None:
    hashes, weights, offsets = featurize(TEXTS, CONFIGS[name])
    expected = GOLDEN["features"][name]
    assert len(offsets) == len(expected) + 1
    for i, (text, exp) in enumerate(zip(TEXTS, expected, strict=True)):
        lo, hi = offsets[i], offsets[i + 1]
        got_h = [f"{int(h):016x}" for h in hashes[lo:hi]]
        got_w = [int(w) for w in weights[lo:hi]]
        assert got_h == exp["hashes"], f"feature hashes of {text!r} ({name}) changed"
        assert got_w == exp["weights"], f"feature weights of {text!r} ({name}) changed"


def test_tokens() -> None:
    for text, expected in zip(TEXTS, GOLDEN["tokens"], strict=True):
        assert tokens(text) == expected, text


@pytest.mark.parametrize("name", sorted(GOLDEN["packed"]))
@pytest.mark.parametrize("n_jobs", [1, -1])
def test_packed_bits(name: str, n_jobs: int) -> None:
    spec = GOLDEN["packed"][name]
    projector = Projector(
        spec["num_projections"],
        spec["bits_per_projection"],
        features=CONFIGS[spec.get("features", "default")],
        seed=spec["seed"],
        n_jobs=n_jobs,
    )
    packed = projector.transform_packed(TEXTS)
    assert packed.shape == (len(TEXTS), (projector.n_bits + 7) // 8)
    for text, row, expected in zip(TEXTS, packed, spec["bits"], strict=True):
        assert bytes(row).hex() == expected, f"bits of {text!r} ({name}) changed"


def test_token_bits() -> None:
    spec = GOLDEN["token_bits"]
    projector = Projector(
        spec["num_projections"], spec["bits_per_projection"], seed=spec["seed"], n_jobs=1
    )
    bits, offsets = projector.transform_tokens(TEXTS)
    assert offsets.tolist() == spec["offsets"]
    rows = [bytes(r).hex() for r in np.packbits(bits, axis=1, bitorder="little")]
    assert rows == spec["rows"]


def test_token_bits_rows_match_golden_tokens() -> None:
    # The stored offsets and the stored tokens describe the same segmentation.
    offsets = GOLDEN["token_bits"]["offsets"]
    assert np.diff(offsets).tolist() == [len(t) for t in GOLDEN["tokens"]]
