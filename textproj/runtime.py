"""Torch-free inference: load a ``model.tpn`` and classify texts without torch.

The forward passes mirror ``textproj.nets`` (``TextProjectionNet`` and ``TokenProjectionNet``)
on weights dequantized once at load. The first layer reads the projector's packed bits through
nibble tables (``textproj._kernels.network``: additions only, no unpacking). The token model
computes the bottleneck and one BLAS matmul with every convolution tap once per distinct token,
then numba kernels sum the taps of each window and pool, a cache-sized chunk of rows at a time.
This module must never import torch, directly or through
``textproj.nets``: a device needs only numpy, numba and the model file.
"""

from __future__ import annotations

import math
import os
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textproj._kernels import network as _kn
from textproj.decisions import DEFAULT_THRESHOLD, label_names, softmax
from textproj.features import tokens
from textproj.model_file import (
    MAX_LABELS,
    MODEL_FILENAME,
    ModelFormatError,
    model_path,
    read_model,
    read_model_bytes,
    unicode_mismatch,
)
from textproj.netspec import check_layer, check_network, dequantize, expected_tensors, pooled_width
from textproj.projector import Projector, check_n_jobs

BATCH_TEXTS = 4096  # texts per forward pass: bounds memory whatever the input size
BATCH_TOKEN_ROWS = 262144  # token models: cap on code points (>= token rows) per forward pass
CHUNK_TOKEN_ROWS = 1024  # token models: rows per window-sum + pooling step (cache-sized)
TAPS_BYTES_CAP = 32 * 2**20  # token models: cap on the distinct tokens' tap products per pass
LABELS_SHOWN = 10  # labels named by the error for an unknown one


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


# Odd 64-bit multipliers that mix a row's words into one key (any collision is caught below).
ROW_HASH_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def unique_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, index): rows ``words[first]`` are distinct and ``words[first[index]] == words``.

    Rows are keyed by a 64-bit mix of their words and sorted by key (much faster than sorting
    whole rows); should two different rows ever share a key, whole rows are sorted instead.
    """
    key = words[:, 0].copy()
    for w in range(1, words.shape[1]):
        key *= ROW_HASH_MULTIPLIERS[w % len(ROW_HASH_MULTIPLIERS)]
        key ^= words[:, w]
    _, first, index = np.unique(key, return_index=True, return_inverse=True)
    if not np.array_equal(words[first[index]], words):
        _, first, index = np.unique(words, axis=0, return_index=True, return_inverse=True)
    return first, index.reshape(-1)


def _checked_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refused with a TypeError naming the first item that is not a str."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
    return texts


@dataclass(frozen=True)
class Explanation:
    """Which tokens drove a token-design model's score of one label for one text.

    ``weights[i]`` is token ``tokens[i]``'s share of the label's logit (for a single-label model
    centred over labels, which softmax ignores, so it weighs the label against the others). The
    attention pooling is a weighted sum over window positions, so the shares are exact:
    ``base + weights.sum()`` is that logit; a window's share is split over the tokens it covers.
    """

    label: str
    probability: float
    tokens: list[str]
    weights: np.ndarray
    base: float

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` tokens with the largest weights (those that pushed hardest for the label).
        ``n`` below 0 is refused: as a slice end it would drop the last tokens instead."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"top(n): n must be an int >= 0, got {n!r}")
        order = np.argsort(-self.weights, kind="stable")[:n]
        return [(self.tokens[i], float(self.weights[i])) for i in order]


class _Layer:
    """A dequantized linear or convolution layer: float32 weight (out, ...) and bias (out,)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = weight
        self.bias = bias


class Classifier:
    """A loaded projection model: texts -> bits (``projector``) -> network -> label probabilities.

    Build one with :func:`load`. ``labels`` are the class names in output order, ``header`` the
    model file's header, ``n_bytes`` the model file's size.
    """

    def __init__(
        self,
        header: dict[str, Any],
        tensors: dict[str, np.ndarray],
        *,
        n_bytes: int,
        n_jobs: int = -1,
        name: str = MODEL_FILENAME,
    ) -> None:
        check_n_jobs(n_jobs)  # a caller's mistake, not the model file's: before the header
        self.header = header
        self.n_bytes = n_bytes
        for warning in load_warnings(header, name):
            warnings.warn(warning, stacklevel=3)
        labels = header.get("labels")
        if not isinstance(labels, list) or not labels or len(labels) > MAX_LABELS:
            raise ModelFormatError(f"{name}: header needs a non-empty 'labels' list")
        if not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels):
            raise ModelFormatError(f"{name}: 'labels' must be distinct strings")
        self.labels: list[str] = list(labels)
        network = check_network(name, header.get("network"))
        if network["n_labels"] != len(labels):
            raise ModelFormatError(
                f"{name}: network has {network['n_labels']} outputs but there are "
                f"{len(labels)} labels"
            )
        self.design: str = network["design"]
        shapes = expected_tensors(network)
        for prefix, shape in shapes.items():
            check_layer(name, tensors, prefix, shape)
        self._layers = {prefix: _Layer(*dequantize(tensors, prefix)) for prefix in shapes}
        self._windows: list[int] = list(network["windows"]) if self.design == "token" else []
        self._max_pool = bool(network.get("max_pool", False))
        self._mean_pool = bool(network.get("mean_pool", False))
        self._pooled_width = pooled_width(network) if self.design == "token" else 0
        self._prepare_forward()
        self.multi_label = header.get("multi_label", False)
        if not isinstance(self.multi_label, bool):
            raise ModelFormatError(f"{name}: 'multi_label' must be true or false")
        thresholds = header.get("thresholds", [DEFAULT_THRESHOLD] * len(labels))
        if self.multi_label and (
            not isinstance(thresholds, list)
            or len(thresholds) != len(labels)
            or not all(
                isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
                for t in thresholds
            )
        ):
            raise ModelFormatError(f"{name}: 'thresholds' must be one finite number per label")
        self.thresholds = np.asarray(thresholds, dtype=np.float32) if self.multi_label else None
        try:
            self.projector = Projector.from_config(header["projector"], n_jobs=n_jobs)
            if self.projector.n_bits != network["n_bits"]:
                raise ValueError(
                    f"it gives {self.projector.n_bits} bits, the network takes {network['n_bits']}"
                )
            self.projector.transform_words([])  # validates the whole config now, not at predict
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFormatError(f"{name}: bad 'projector' config ({error})") from None

    def _prepare_forward(self) -> None:
        """Tables and stacked kernels the forward passes use, built once from the layers."""
        first = self._layers["bottleneck" if self.design == "token" else "dense.0"]
        self._first_tables = _kn.nibble_tables(first.weight)
        if self.design == "text":
            return
        taps, starts = [], []
        for j, k in enumerate(self._windows):
            value = self._layers[f"value.{j}"].weight
            attention = self._layers[f"attention.{j}"].weight
            starts.append(sum(t.shape[1] for t in taps))
            taps += [value[:, :, i].T for i in range(k)] + [attention[:, :, i].T for i in range(k)]
        # Column block i (of ``filters`` columns) of window j is tap i of its value kernel,
        # block k + i tap i of its attention kernel: one matmul gives every tap at every row.
        self._taps = np.ascontiguousarray(np.concatenate(taps, axis=1))
        self._column_starts = np.asarray(starts, dtype=np.int64)
        self._window_sizes = np.asarray(self._windows, dtype=np.int64)
        self._value_bias = np.stack(
            [self._layers[f"value.{j}"].bias for j in range(len(self._windows))]
        )
        self._attention_bias = np.stack(
            [self._layers[f"attention.{j}"].bias for j in range(len(self._windows))]
        )

    def _batches(self, texts: Sequence[str]) -> Iterator[tuple[int, int]]:
        """(lo, hi) ranges of ``texts`` small enough to keep each forward pass's memory bounded.

        A token model's rows are unknown before projection, so a text is costed at one row per
        code point (a token has at least one), capped at the projector's token limit, plus one
        (a text without tokens still takes a row).
        """
        lo, rows = 0, 0
        max_tokens = self.projector.features.max_tokens
        for i, text in enumerate(texts):
            cost = min(len(text), max_tokens) + 1 if self.design == "token" else 0
            if i > lo and (i - lo >= BATCH_TEXTS or rows + cost > BATCH_TOKEN_ROWS):
                yield lo, i
                lo, rows = i, 0
            rows += cost
        if lo < len(texts):
            yield lo, len(texts)

    def _first_layer(self, words: np.ndarray, lo: int, hi: int, relu: bool) -> np.ndarray:
        """The first layer on rows lo..hi-1 of packed bits, read through the nibble tables."""
        bias = self._layers["bottleneck" if self.design == "token" else "dense.0"].bias
        out = np.empty((hi - lo, len(bias)), dtype=np.float32)
        _kn.packed_linear(words, lo, hi, self._first_tables, bias, relu, out)
        return out

    def _text_logits(self, words: np.ndarray) -> np.ndarray:
        """``TextProjectionNet.forward`` on packed bits: dense ReLU layers, the last one linear."""
        layers = list(self._layers.values())
        x = self._first_layer(words, 0, len(words), relu=len(layers) > 1)
        for layer in layers[1:-1]:
            x = _relu(x @ layer.weight.T + layer.bias)
        return x if len(layers) == 1 else x @ layers[-1].weight.T + layers[-1].bias

    def _token_logits(self, words: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """``TokenProjectionNet.forward`` on packed token rows, without padding to the longest text.

        A text without tokens pools one all-zero row, as ``nets.pad_tokens`` gives it: its
        pooled features (attention, max and mean alike) are the value biases. The others go to
        :meth:`_pool_texts`.
        """
        lengths = np.diff(offsets)
        pooled = np.empty((len(lengths), self._pooled_width), dtype=np.float32)
        pooled[:] = np.tile(
            self._value_bias.reshape(-1), self._pooled_width // self._value_bias.size
        )
        present = np.flatnonzero(lengths)
        if len(present):
            self._pool_texts(words, offsets, present, pooled)
        output = self._layers["output"]
        return pooled @ output.weight.T + output.bias

    def _pool_texts(
        self, words: np.ndarray, offsets: np.ndarray, texts: np.ndarray, pooled: np.ndarray
    ) -> None:
        """Pooled features of ``texts`` (consecutive texts with tokens) into ``pooled``.

        A token's bits depend on that token alone, so the bottleneck and the products with
        every convolution tap are computed once per distinct row of bits (:func:`unique_rows`;
        a few thousand among tens of thousands of token rows in a batch of short texts). If
        those products would take more than ``TAPS_BYTES_CAP``, the texts are halved instead.
        Then, a chunk of about ``CHUNK_TOKEN_ROWS`` rows at a time (a longer text alone),
        :func:`~textproj._kernels.network.window_scores` sums the taps of each window position
        (zero padding contributes nothing), and numpy's vectorised exp and ``attention_pool``
        pool each text over its own rows (a max-pooling model's maxima: ``np.maximum.reduceat``,
        a mean-pooling model's means: ``np.add.reduceat`` over the text's positions).
        """
        lo_row, hi_row = int(offsets[texts[0]]), int(offsets[texts[-1] + 1])
        first, index = unique_rows(words[lo_row:hi_row])
        taps_bytes = len(first) * self._taps.shape[1] * self._taps.itemsize
        if taps_bytes > TAPS_BYTES_CAP and len(texts) > 1:
            half = len(texts) // 2
            self._pool_texts(words, offsets, texts[:half], pooled)
            self._pool_texts(words, offsets, texts[half:], pooled)
            return
        taps = self._first_layer(words[lo_row:hi_row][first], 0, len(first), relu=True)
        taps = taps @ self._taps
        ends = offsets[texts + 1] - lo_row  # row ends of the texts (their rows abut)
        lengths = np.diff(offsets)[texts]
        lo = 0
        while lo < len(texts):
            row0 = int(ends[lo] - lengths[lo])
            hi = max(int(np.searchsorted(ends, row0 + CHUNK_TOKEN_ROWS, side="right")), lo + 1)
            width = self._value_bias.size
            shape = (int(ends[hi - 1]) - row0, width)
            values, logits = np.empty(shape, np.float32), np.empty(shape, np.float32)
            _kn.window_scores(
                taps,
                index,
                row0,
                lengths[lo:hi],
                self._window_sizes,
                self._column_starts,
                self._value_bias,
                self._attention_bias,
                values,
                logits,
            )
            out = np.empty((hi - lo, width), dtype=np.float32)
            _kn.attention_pool(values, np.exp(logits, out=logits), lengths[lo:hi], out)
            pooled[texts[lo:hi], :width] = out
            starts = np.cumsum(lengths[lo:hi]) - lengths[lo:hi]
            if self._max_pool:
                pooled[texts[lo:hi], width : 2 * width] = np.maximum.reduceat(values, starts, 0)
            if self._mean_pool:
                sums = np.add.reduceat(values, starts, axis=0)
                pooled[texts[lo:hi], -width:] = sums / lengths[lo:hi, None].astype(np.float32)
            lo = hi

    def _logits(self, texts: Sequence[str]) -> np.ndarray:
        if self.design == "text":
            return self._text_logits(self.projector.transform_words(texts))
        return self._token_logits(*self.projector.transform_tokens_words(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, float32 (n, n_labels): softmax, or a sigmoid per label if multi-label."""
        texts = _checked_texts(texts)
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for lo, hi in self._batches(texts):
            logits = self._logits(texts[lo:hi]).astype(np.float32)
            if self.multi_label:
                out[lo:hi] = 0.5 * (1.0 + np.tanh(0.5 * logits))  # sigmoid without overflow
            else:
                out[lo:hi] = softmax(logits)
        return out

    def predict(self, texts: Sequence[str]) -> list[str] | list[list[str]]:
        """The most probable label per text; for a multi-label model, every label at or above
        its threshold."""
        return label_names(self.predict_proba(texts), self.labels, self.thresholds)

    def explain(self, text: str, label: str | None = None) -> Explanation:
        """Each token's share of the score of ``label`` (default: the most probable) for ``text``.

        Token-design models only: their attention pooling weighs every window of tokens, and
        the weighted sums split the label's logit exactly into per-token shares.
        """
        if self.design != "token":
            raise TypeError("explanations need a token-design model; this one is 'text'")
        if not isinstance(text, str):
            raise TypeError(f"explain takes one text (a str), got {type(text).__name__}")
        proba = self.predict_proba([text])[0]
        if label is None:
            column = int(proba.argmax())
        elif label in self.labels:
            column = self.labels.index(label)
        else:
            more = len(self.labels) - LABELS_SHOWN
            shown = ", ".join(self.labels[:LABELS_SHOWN]) + (
                f", … ({more} more)" if more > 0 else ""
            )
            raise ValueError(f"unknown label {label!r}; the model's labels: {shown}")
        output = self._layers["output"]
        direction = output.weight[column].astype(np.float64)
        base = float(output.bias[column])
        if not self.multi_label:
            direction = direction - output.weight.mean(axis=0)
            base -= float(output.bias.mean())
        words, _ = self.projector.transform_tokens_words([text])
        names = tokens(text, self.projector.features)
        weights = np.zeros(len(words))
        width = self._value_bias.size
        if len(words) == 0:
            parts = self._pooled_width // width  # every pooling of no tokens is the value bias
            base += float(direction.reshape(parts, width).sum(axis=0) @ self._value_bias.ravel())
        else:
            hidden = self._first_layer(words, 0, len(words), relu=True).astype(np.float64)
            n_filters = self._value_bias.shape[1]
            for j, k in enumerate(self._windows):
                padded = np.vstack([hidden, np.zeros((k - 1, hidden.shape[1]))])
                values = self._window_sums(padded, self._layers[f"value.{j}"].weight, k)
                scores = self._window_sums(padded, self._layers[f"attention.{j}"].weight, k)
                scores += self._layers[f"attention.{j}"].bias
                attention = np.exp(scores - scores.max(axis=0))
                attention /= attention.sum(axis=0)
                block = direction[j * n_filters : (j + 1) * n_filters]
                value_bias = self._layers[f"value.{j}"].bias
                base += float(block @ value_bias)
                shares = (attention * values) @ block  # each window position's share
                if self._max_pool:  # a channel's maximum is its largest position's share
                    top = direction[width + j * n_filters : width + (j + 1) * n_filters]
                    base += float(top @ value_bias)
                    largest = values.argmax(axis=0)
                    np.add.at(shares, largest, top * values[largest, np.arange(n_filters)])
                if self._mean_pool:  # a channel's mean is every position's equal share
                    at = self._pooled_width - width + j * n_filters  # the last block's window j
                    mean = direction[at : at + n_filters]
                    base += float(mean @ value_bias)
                    shares += values @ mean / len(values)
                for t, share in enumerate(shares):
                    covered = min(k, len(words) - t)
                    weights[t : t + covered] += share / covered
        return Explanation(self.labels[column], float(proba[column]), names, weights, base)

    @staticmethod
    def _window_sums(padded: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
        """A convolution without bias: row t sums tap i of ``weight`` applied to row t + i."""
        n = len(padded) - k + 1
        return sum(padded[i : i + n] @ weight[:, :, i].T.astype(np.float64) for i in range(k))

    def projection_bits(self, texts: Sequence[str]) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The network's input bits, for display: (n, n_bits) 0/1 uint8 per text, or for a token
        model the per-token rows and their offsets, as ``Projector.transform_tokens`` gives."""
        if self.design == "text":
            return self.projector.transform(texts)
        return self.projector.transform_tokens(texts)

    def __repr__(self) -> str:
        return f"Classifier({self.design!r}, labels={len(self.labels)}, bytes={self.n_bytes})"


def load_warnings(header: dict[str, Any], name: str) -> list[str]:
    """What loading the model ``name`` with ``header`` warns of (a Unicode version other than
    this Python's), for a caller that shows them rather than logging them (the demo)."""
    mismatch = unicode_mismatch(header, unicodedata.unidata_version)
    return [f"{name}: {mismatch}"] if mismatch else []


def load(path: str | os.PathLike[str], *, n_jobs: int = -1) -> Classifier:
    """Load a model from a ``model.tpn`` file or a directory holding one (no torch needed).

    ``n_jobs`` is the projector's thread count for large batches (-1: every core).
    A path that does not exist raises :class:`~textproj.errors.ModelNotFoundError` (a
    ``FileNotFoundError``); any other problem with the file a
    :class:`~textproj.errors.ModelFormatError`; an ``n_jobs`` that is no thread count a
    :class:`~textproj.errors.ConfigError`, before the file is read.
    """
    check_n_jobs(n_jobs)
    path = model_path(path)
    header, tensors = read_model(path)
    return Classifier(header, tensors, n_bytes=path.stat().st_size, n_jobs=n_jobs, name=str(path))


def load_bytes(data: bytes, *, n_jobs: int = -1, name: str = MODEL_FILENAME) -> Classifier:
    """:func:`load` from a whole model file's bytes (a model carried inside another file, such
    as a spaCy pipeline); ``name`` is what error messages call it."""
    check_n_jobs(n_jobs)
    header, tensors = read_model_bytes(data, name)
    return Classifier(header, tensors, n_bytes=len(data), n_jobs=n_jobs, name=name)
