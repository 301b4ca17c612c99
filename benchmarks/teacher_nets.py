"""Candidate trainer (teacher) networks and their inputs, for benchmarks/teacher.py.

Inputs are hashed feature bags per *view* (word n-grams, character n-grams): each text's
features are merged per bucket into (bucket, count) pairs, then weighted (raw count, 1 + log,
sqrt or binary, times an idf computed on the training split if asked) and L2-normalised per
text and view, as scikit-learn's TfidfVectorizer does. The network embeds each view's bag with
an ``EmbeddingBag(mode="sum", per_sample_weights=...)`` and classifies the result with a linear
layer or a hidden ReLU layer. Nothing here pads to the longest text: memory is the number of
(bucket, weight) pairs in a batch.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from textproj._kernels import features as _kf
from textproj.config import FeatureConfig
from textproj.features import class_table, encode_texts, featurize, kernel_params

HASH_BITS = 20  # features are merged per text at 2^20 buckets; smaller tables fold these
VIEW_FEATURES = {
    # word uni- and bi-grams (what TF-IDF's word analyser sees), then with skip-grams added
    "w": FeatureConfig(char_ngram_max=0, skip_grams=0, word_weight=1),
    "ws": FeatureConfig(char_ngram_max=0, skip_grams=1, word_weight=1),
    # character 2-5-grams over "<word>" (word features get weight 0 and are dropped)
    "c": FeatureConfig(word_ngrams=1, skip_grams=0, word_weight=0, char_weight=1),
    "c6": FeatureConfig(
        word_ngrams=1, skip_grams=0, word_weight=0, char_weight=1, char_ngram_max=6
    ),
    # everything the projection sees, as one bag (today's trainer input)
    "all": FeatureConfig(word_weight=1, char_weight=1),
}
# views whose tokeniser keeps punctuation as one-character tokens (as symbols are): an
# experiment, emulated with a modified class table (textproj's own table drops punctuation)
PUNCT_VIEWS = {"wp": "w", "cp": "c"}


@functools.cache
def punct_class_table() -> np.ndarray:
    """textproj's class table with Unicode punctuation (P*) as stand-alone tokens."""
    table = class_table().copy()
    for cp in range(len(table)):
        if unicodedata.category(chr(cp))[0] == "P":
            table[cp] = _kf.CLASS_SINGLE
    return table


def _featurize(texts: list[str], view: str):
    if view not in PUNCT_VIEWS:
        return featurize(texts, VIEW_FEATURES[view])
    config = VIEW_FEATURES[PUNCT_VIEWS[view]]
    buf, offsets = encode_texts(texts, config)
    return _kf.featurize_batch(buf, offsets, punct_class_table(), kernel_params(config))


@dataclass
class Bags:
    """One view of one split: per text, merged buckets (at 2^HASH_BITS) and their counts."""

    buckets: np.ndarray  # int64, flat
    counts: np.ndarray  # float32 occurrences of the bucket in the text
    offsets: np.ndarray  # int64 (n + 1,)

    def text_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))


def view_bags(texts: list[str], view: str) -> Bags:
    """Hash ``texts`` under ``view`` and merge equal buckets within each text."""
    hashes, weights, offsets = _featurize(texts, view)
    keep = weights > 0
    text_ids = np.repeat(np.arange(len(texts)), np.diff(offsets))[keep]
    low = (hashes[keep] & np.uint64(2**HASH_BITS - 1)).astype(np.int64)
    keys, counts = np.unique((text_ids << HASH_BITS) | low, return_counts=True)
    ids = keys >> HASH_BITS
    new_offsets = np.searchsorted(ids, np.arange(len(texts) + 1)).astype(np.int64)
    return Bags(keys & (2**HASH_BITS - 1), counts.astype(np.float32), new_offsets)


def fold(bags: Bags, n_buckets: int) -> Bags:
    """``bags`` at ``n_buckets`` (a power of two up to 2^HASH_BITS): buckets mod n_buckets."""
    if n_buckets == 2**HASH_BITS:
        return bags
    return dataclasses.replace(bags, buckets=bags.buckets % n_buckets)


def idf_vector(train: Bags, n_buckets: int) -> np.ndarray:
    """Smoothed idf per bucket on the training split: ln((1 + n) / (1 + df)) + 1 (as sklearn)."""
    n = len(train.offsets) - 1
    df = np.bincount(train.buckets % n_buckets, minlength=n_buckets)
    return (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)


def bag_weights(
    bags: Bags, tf: str, idf: np.ndarray | None, norm: bool, base: float = 1.0
) -> np.ndarray:
    """Per-pair weights: tf(count) [* idf], L2-normalised per text when ``norm``."""
    c = bags.counts
    w = {
        "count": c,
        "log": 1 + np.log(c),
        "sqrt": np.sqrt(c),
        "bin": np.ones_like(c),
    }[tf].astype(np.float32) * base
    if idf is not None:
        w = w * idf[bags.buckets]
    if norm:
        sq = np.bincount(
            bags.text_ids(), weights=w.astype(np.float64) ** 2, minlength=len(bags.offsets) - 1
        )
        w = w / np.sqrt(np.maximum(sq, 1e-12))[bags.text_ids()].astype(np.float32)
    return w.astype(np.float32)


@dataclass
class ViewInputs:
    """What the network reads for one view of one split."""

    buckets: np.ndarray
    weights: np.ndarray
    offsets: np.ndarray

    def batch(self, index: np.ndarray, feature_drop: float = 0.0, rng=None):
        """(buckets, bag offsets, weights) tensors for texts ``index``; optional feature dropout."""
        starts, lengths = self.offsets[index], self.offsets[index + 1] - self.offsets[index]
        ends = np.cumsum(lengths)
        pos = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(
            starts - ends + lengths, lengths
        )
        weights = self.weights[pos]
        if feature_drop > 0:
            weights = weights * (rng.random(len(weights)) >= feature_drop) / (1 - feature_drop)
            weights = weights.astype(np.float32)
        bag_offsets = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        return (
            torch.from_numpy(self.buckets[pos]),
            torch.from_numpy(bag_offsets),
            torch.from_numpy(weights),
        )


class Bias(nn.Module):
    """A learned bias: the head of a direct (table rows = logits) linear model."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class BagNet(nn.Module):
    """One EmbeddingBag per view; the bags are summed ("sum") or concatenated ("concat"),
    optionally layer-normed, then a linear layer or a hidden ReLU layer gives the logits.
    With ``ensemble`` each view has its own head and its own loss (an average of per-view
    models). ``forward`` returns logits of shape (heads, n, n_labels)."""

    def __init__(
        self,
        n_views: int,
        n_buckets: int,
        dim: int,
        n_labels: int,
        hidden: int = 0,
        combine: str = "concat",
        layer_norm: bool = False,
        dropout: float = 0.0,
        sparse: bool = True,
        init: str = "normal",
        ensemble: bool = False,
        direct: bool = False,
        joint_head: bool = False,
    ) -> None:
        super().__init__()
        self.combine = "sum" if direct else combine
        self.layer_norm = layer_norm
        self.ensemble = ensemble
        self.dropout = nn.Dropout(dropout)
        self.tables = nn.ModuleList(
            nn.EmbeddingBag(n_buckets, dim, mode="sum", sparse=sparse) for _ in range(n_views)
        )
        for table in self.tables:
            if direct:
                nn.init.zeros_(table.weight)
            elif init == "small":  # fastText: uniform(-1/dim, 1/dim)
                nn.init.uniform_(table.weight, -1 / dim, 1 / dim)
            elif init == "scaled":
                nn.init.normal_(table.weight, 0, dim**-0.5)
        width = dim * n_views if self.combine == "concat" and not ensemble else dim
        n_heads = n_views if ensemble else 1

        def head() -> nn.Module:
            if direct:
                return Bias(n_labels)
            if hidden:
                return nn.Sequential(
                    nn.Linear(width, hidden),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(hidden, n_labels),
                )
            return nn.Linear(width, n_labels)

        self.heads = nn.ModuleList(head() for _ in range(n_heads))
        self.joint = None
        if ensemble and joint_head:
            width = dim * n_views
            self.joint = head()

    def forward(self, views: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        bags = [
            t(b, o, per_sample_weights=w) for t, (b, o, w) in zip(self.tables, views, strict=True)
        ]
        if self.layer_norm:
            bags = [F.layer_norm(x, x.shape[1:]) for x in bags]
        if self.ensemble:
            out = [h(self.dropout(x)) for h, x in zip(self.heads, bags, strict=True)]
            if self.joint is not None:
                out.append(self.joint(self.dropout(torch.cat(bags, 1))))
            return torch.stack(out)
        x = torch.cat(bags, 1) if self.combine == "concat" else torch.stack(bags).sum(0)
        return self.heads[0](self.dropout(x))[None]

    def table_params(self) -> list[nn.Parameter]:
        return [t.weight for t in self.tables]

    def dense_params(self) -> list[nn.Parameter]:
        joint = list(self.joint.parameters()) if self.joint is not None else []
        return list(self.heads.parameters()) + joint


class RowAdam(torch.optim.Optimizer):
    """Adam over the rows of embedding tables that a batch touched ("lazy" Adam, as SparseAdam),
    with the sparse gradient's duplicate rows summed by one ``index_add_`` instead of
    ``coalesce`` and ``sparse_mask`` (which cost most of SparseAdam's time here)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                rows, inverse = torch.unique(grad._indices()[0], return_inverse=True)
                g = p.new_zeros((len(rows), p.shape[1])).index_add_(0, inverse, grad._values())
                m = state["m"][rows].mul_(beta1).add_(g, alpha=1 - beta1)
                v = state["v"][rows].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                state["m"][rows] = m
                state["v"][rows] = v
                t = state["step"]
                size = group["lr"] * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
                p[rows] -= size * m / (v.sqrt() + group["eps"])
        return None
