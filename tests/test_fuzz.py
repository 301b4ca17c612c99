"""Hostile text through the whole data path: features, bits and predictions never crash, repeat
exactly, do not depend on the rest of the batch, and stay within the documented caps."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import textproj
from textproj._kernels.features import feature_bound
from textproj.config import FeatureConfig
from textproj.errors import ConfigError
from textproj.features import (
    MAX_FEATURE_BOUND,
    STREAM_SAFE_RUN,
    check_limits,
    featurize,
    kernel_params,
    normalize,
    tokens,
)
from textproj.projector import Projector

# Pieces that break naive text handling: controls, separators the csv/json/str APIs treat
# specially, bidi controls, zero-width and joiner characters, variation selectors, combining
# marks, NFKC expanders, tag characters, noncharacters, and emoji ZWJ/flag/keycap sequences.
TRICKY = [
    "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\r\n", "\u2028", "\u2029", "\ufeff",
    "\u200b", "\u200c", "\u200d", "\u2060", "\u202e", "\u202d", "\u2066", "\u061c",
    "\ufe0f", "\ufe0e", "\U000e0100", "\u0301", "\u0316", "\u0345", "\u034f", "\u0f73",
    "\ufdfa", "\ufb03", "ß", "İ", "\U000e0067", "\U000e007f", "\uffff", "\U0010ffff",
    "\ufffd", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "1️⃣", "👍🏽", "🧑🏿‍🚀",
    "مرحبا بالعالم", "שלום", "東京", "ｶﾀｶﾅ", "Ｆｕｌｌ",
]  # fmt: skip

_pieces = st.one_of(
    st.text(st.characters(codec=None), max_size=8),  # any code point but surrogates
    st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates
    st.sampled_from(TRICKY),
    st.sampled_from([" ", "\t", "\n", "  \u3000\u00a0 "]),
    st.text("\u0301\u0316\u0345\u05b0\u0e31", min_size=25, max_size=70),  # long mark runs
)
hostile_text = st.lists(_pieces, max_size=12).map("".join)
hostile_batch = st.lists(hostile_text, min_size=1, max_size=6)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_CAPS = FeatureConfig(max_chars=40, max_tokens=6)  # small caps, so examples hit them
CONFIGS = [FeatureConfig(), SMALL_CAPS, FeatureConfig(sublinear=True, skip_grams=2)]


def _split(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def _nonstarter_runs(text: str) -> int:
    """Longest run of code points with a non-zero canonical combining class."""
    longest = run = 0
    for char in text:
        run = run + 1 if unicodedata.combining(char) else 0
        longest = max(longest, run)
    return longest


# --- features and tokens ------------------------------------------------------------------


@FUZZ
@given(texts=hostile_batch, config=st.sampled_from(CONFIGS))
def test_featurize_is_deterministic_per_text_and_bounded(
    texts: list[str], config: FeatureConfig
) -> None:
    hashes, weights, offsets = featurize(texts, config)
    again = featurize(texts, config)
    for got, expected in zip(again, (hashes, weights, offsets), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert offsets[0] == 0 and np.all(np.diff(offsets) >= 0) and offsets[-1] == len(hashes)
    assert np.all(weights > 0)
    params = kernel_params(config)
    for text, h, w in zip(texts, _split(hashes, offsets), _split(weights, offsets), strict=True):
        alone_h, alone_w, _ = featurize([text], config)
        np.testing.assert_array_equal(alone_h, h)
        np.testing.assert_array_equal(alone_w, w)
        n_bytes = len(normalize(text, config.max_chars).encode("utf-8", "surrogatepass"))
        assert len(h) <= feature_bound(n_bytes, params)


@FUZZ
@given(text=hostile_text, config=st.sampled_from(CONFIGS))
def test_tokens_are_capped_pieces_of_the_normalised_text(text: str, config: FeatureConfig) -> None:
    found = tokens(text, config)
    assert found == tokens(text, config)
    assert len(found) <= config.max_tokens
    normal = normalize(text, config.max_chars)
    assert len(normal) <= config.max_chars
    assert all(token and token in normal for token in found)
    # Projection rows agree with the tokens the kernels report.
    _, rows = Projector(2, 8, features=config, n_jobs=1).transform_tokens([text])
    assert rows.tolist() == [0, len(found)]


@FUZZ
@given(text=hostile_text)
def test_normalisation_is_stream_safe(text: str) -> None:
    # NFKC may turn one code point into a few marks, so a cut run can grow a little.
    assert _nonstarter_runs(normalize(text, 10_000)) <= 3 * STREAM_SAFE_RUN


@FUZZ
@given(text=st.text(st.characters(codec="utf-8"), max_size=60))
def test_ordinary_text_normalises_as_plain_nfkc_casefold(text: str) -> None:
    if _nonstarter_runs(unicodedata.normalize("NFKD", text)) <= STREAM_SAFE_RUN:
        assert normalize(text, 1000) == unicodedata.normalize("NFKC", text).casefold()[:1000]


def test_long_mark_runs_are_cut_by_a_grapheme_joiner() -> None:
    text = "a" + "\u0301\u0316" * 5_000  # NFKC would sort 10,000 marks: quadratic time
    normal = normalize(text, 20_000)
    assert _nonstarter_runs(normal) <= STREAM_SAFE_RUN
    assert normal.count("\u034f") == 2 * 5_000 // STREAM_SAFE_RUN
    assert tokens(text) == [normal]  # marks and the joiner stay inside the one word


# --- bits ------------------------------------------------------------------------------------


@FUZZ
@given(texts=hostile_batch, config=st.sampled_from(CONFIGS))
def test_bits_repeat_and_do_not_depend_on_the_batch(
    texts: list[str], config: FeatureConfig
) -> None:
    whole = Projector(8, 16, features=config, n_jobs=1)
    per_token = Projector(4, 16, features=config, n_jobs=1)
    bits = whole.transform(texts)
    assert bits.shape == (len(texts), 128) and bits.dtype == np.uint8 and bits.max(initial=0) <= 1
    np.testing.assert_array_equal(whole.transform(texts), bits)
    rows, offsets = per_token.transform_tokens(texts)
    again_rows, again_offsets = per_token.transform_tokens(texts)
    np.testing.assert_array_equal(again_rows, rows)
    np.testing.assert_array_equal(again_offsets, offsets)
    assert np.all(np.diff(offsets) <= config.max_tokens)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(whole.transform([text])[0], bits[i])
        alone_rows, alone_offsets = per_token.transform_tokens([text])
        assert alone_offsets[-1] == offsets[i + 1] - offsets[i]
        np.testing.assert_array_equal(alone_rows, rows[offsets[i] : offsets[i + 1]])


# --- predictions -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifiers(tiny_models: dict[str, Path]) -> dict[str, textproj.Classifier]:
    return {design: textproj.load(path, n_jobs=1) for design, path in tiny_models.items()}


@FUZZ
@given(texts=hostile_batch)
def test_predictions_repeat_and_do_not_depend_on_the_batch(
    classifiers: dict[str, textproj.Classifier], texts: list[str]
) -> None:
    for clf in classifiers.values():
        proba = clf.predict_proba(texts)
        assert proba.shape == (len(texts), len(clf.labels))
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(clf.predict_proba(texts), proba)
        labels = clf.predict(texts)
        assert labels == clf.predict(texts) and set(labels) <= set(clf.labels)
        alone = np.concatenate([clf.predict_proba([text]) for text in texts])
        # Equal up to float32 rounding: BLAS sums in another order for other matrix sizes.
        assert np.abs(alone - proba).max() <= 1e-5


# --- 10 MB texts -----------------------------------------------------------------------------

TEN_MB = 10 * 2**20
HUGE_KINDS = {
    "ascii words": "card declined again ",
    "one word": "x",
    "emoji ZWJ": "👩‍👩‍👧‍👦",
    "CJK": "東京銀行",
    "alternating marks": "\u0301\u0316",
    "NFKC expander": "\ufdfa",
    "lone surrogates": "\udc80a\ud800 ",
    "white space": " \t\n\u3000",
}


@pytest.mark.parametrize("kind", list(HUGE_KINDS))
def test_ten_megabyte_text_stays_within_the_caps(
    kind: str, classifiers: dict[str, textproj.Classifier]
) -> None:
    unit = HUGE_KINDS[kind]
    text = "a" + unit * (TEN_MB // len(unit.encode("utf-8", "surrogatepass")))
    config = FeatureConfig()
    found = tokens(text, config)
    assert len(found) <= config.max_tokens
    assert sum(map(len, found)) <= config.max_chars
    _, _, offsets = featurize([text, "hi"], config)
    assert offsets[1] <= feature_bound(4 * config.max_chars, kernel_params(config))
    for clf in classifiers.values():
        bits = clf.projection_bits([text])
        if clf.design == "token":
            assert len(bits[0]) == len(found) <= config.max_tokens
        proba = clf.predict_proba([text, "hi", text])
        assert np.isfinite(proba).all()
        np.testing.assert_array_equal(proba[0], proba[2])
        assert clf.predict([text]) == clf.predict([text])


def test_white_space_and_empty_texts_have_no_features_and_zero_bits() -> None:
    blanks = ["", " ", "\t\n\r", "\u3000\u00a0\u2028", "\ufe0f\u200b", "\x00\x01"]
    hashes, _, offsets = featurize(blanks)
    assert len(hashes) == 0 and offsets.tolist() == [0] * (len(blanks) + 1)
    assert Projector(8, 16).transform(blanks).sum() == 0


# --- configured caps -------------------------------------------------------------------------


def test_default_caps_are_well_inside_the_kernel_limit() -> None:
    config = FeatureConfig()
    assert check_limits(config) == config
    assert feature_bound(4 * config.max_chars, kernel_params(config)) * 10 < MAX_FEATURE_BOUND


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_chars": 10**7}, "features per text"),
        ({"word_ngrams": 10**6}, "features per text"),
        ({"char_ngram_max": 10**5}, "features per text"),
        ({"skip_grams": 10**5}, "features per text"),
    ],
)
def test_unsafe_feature_configs_are_refused_before_any_work(changes: dict, message: str) -> None:
    """As a ConfigError (a TextprojError, as every refusal of bad input; a ValueError too)."""
    config = FeatureConfig(**changes)
    with pytest.raises(ConfigError, match=message):
        featurize(["some text"], config)
    with pytest.raises(ConfigError, match=message):
        Projector(8, 16, features=config).transform(["some text"])
