"""Network inputs of a split, computed once before training: labels, per-text or per-token
projection bits (packed), and the trainer's hashed feature bags. Also the forward passes that
gather a minibatch's rows from them, shared by training and by the trainer's inference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from textproj import nets
from textproj._kernels import bags as _kb
from textproj._kernels import projection as _kp
from textproj.config import FeatureConfig, TrainConfig
from textproj.features import featurize
from textproj.projector import Projector

EVAL_BATCH = 1024  # texts per forward pass when scoring a split
PREPARE_CHUNK = 1024  # texts featurised at a time: bounds the memory of the raw features
TRANSFER = "transfer"  # the split of transfer texts: unlabelled and augmented, no targets

STEP_TOKENS = 1 << 14  # tokens per forward/backward pass of a step: bounds its memory (below)
SHUFFLE_BLOCK = 1 << 16  # texts per shuffle block: an epoch visits blocks, then texts in each

Progress = Callable[[int, int], None]  # (texts done, texts in all)


@dataclass
class SplitInputs:
    """Network inputs of one split. Ragged arrays (per-token rows, feature bags) are flat with
    ``offsets`` of length n + 1; projection bits stay packed in uint64 words (8x smaller)."""

    targets: np.ndarray  # int64 label index (-1: unseen in training); multi-label: multi-hot
    words: np.ndarray  # packed bits: text design (n, words); token design (total_tokens, words)
    word_offsets: np.ndarray | None  # token design only
    n_bits: int
    buckets: np.ndarray  # int32 trainer embedding rows, distinct within each text
    bucket_weights: np.ndarray  # float32 summed weight of each bucket in its text
    bucket_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def trainer_features(config: TrainConfig, features: FeatureConfig) -> FeatureConfig:
    """Features the trainer embeds: the projection's for the bag trainer (with its own character
    n-gram range if ``config.trainer_char_ngrams`` is set), words for the LSTM."""
    if config.trainer == "ffn":
        if config.trainer_char_ngrams is None:
            return features
        low, high = config.trainer_char_ngrams
        return dataclasses.replace(features, char_ngram_min=low, char_ngram_max=high)
    return FeatureConfig(
        word_ngrams=1,
        skip_grams=0,
        char_ngram_max=0,
        max_chars=features.max_chars,
        max_tokens=features.max_tokens,
    )


def encode_targets(labels: Sequence, label_index: dict[str, int], multi_label: bool) -> np.ndarray:
    """Label indices (-1 for a label unseen in training), or multi-hot rows for multi-label."""
    if multi_label:
        targets = np.zeros((len(labels), len(label_index)), dtype=np.float32)
        for i, label_set in enumerate(labels):
            targets[i, [label_index[label] for label in label_set if label in label_index]] = 1
        return targets
    return np.array([label_index.get(label, -1) for label in labels], dtype=np.int64)


def trainer_bags(
    texts: Sequence[str], features: FeatureConfig, n_buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's hashed features folded into ``n_buckets`` rows, each row once per text."""
    hashes, weights, offsets = featurize(texts, features)
    buckets = (hashes % np.uint64(n_buckets)).astype(np.int64)
    return _kb.merge_repeats(buckets, weights.astype(np.float32), offsets)


def _concat_ragged(parts: list[np.ndarray], offsets: list[np.ndarray]) -> np.ndarray:
    base = np.cumsum([0] + [len(p) for p in parts[:-1]])
    shifted = [o[1:] + b for o, b in zip(offsets, base, strict=True)]
    return np.concatenate([offsets[0][:1], *shifted])


def prepare_inputs(
    texts: Sequence[str],
    targets: np.ndarray,
    projector: Projector,
    config: TrainConfig,
    on_progress: Progress | None = None,
) -> SplitInputs:
    """Project and featurise a split once, a chunk of texts at a time, so epochs only gather."""
    bag_features = trainer_features(config, projector.features or FeatureConfig())
    words, word_offsets, buckets, weights, bucket_offsets = [], [], [], [], []
    for lo in range(0, len(texts), PREPARE_CHUNK) if len(texts) else [0]:
        chunk = texts[lo : lo + PREPARE_CHUNK]
        if config.design == "text":
            words.append(projector.transform_words(chunk))
        else:
            chunk_words, offsets = projector.transform_tokens_words(chunk)
            words.append(chunk_words)
            word_offsets.append(offsets)
        b, w, o = trainer_bags(chunk, bag_features, config.trainer_buckets)
        buckets.append(b)
        weights.append(w)
        bucket_offsets.append(o)
        if on_progress is not None:
            on_progress(min(lo + PREPARE_CHUNK, len(texts)), len(texts))
    return SplitInputs(
        targets,
        np.concatenate(words),
        _concat_ragged(words, word_offsets) if word_offsets else None,
        projector.n_bits,
        np.concatenate(buckets),
        np.concatenate(weights),
        _concat_ragged(buckets, bucket_offsets),
    )


def texts_at_token_cap(split: SplitInputs, max_tokens: int) -> int | None:
    """How many texts of a token-design split have ``max_tokens`` tokens: the cap, so they may
    have had more (None for the text design, whose inputs keep no tokens)."""
    if split.word_offsets is None:
        return None
    return int(np.count_nonzero(np.diff(split.word_offsets) >= max_tokens))


def median_tokens(split: SplitInputs) -> float:
    """The median number of tokens per text of a token-design split (0 for the text design,
    whose inputs keep no tokens, or an empty split)."""
    if split.word_offsets is None or len(split.word_offsets) < 2:
        return 0.0
    return float(np.median(np.diff(split.word_offsets)))


def epoch_order(shuffle: np.random.Generator, n: int) -> np.ndarray:
    """One epoch's order of ``n`` items, shuffled in blocks of ``SHUFFLE_BLOCK`` consecutive
    items: the blocks in random order, each block's items in random order. An epoch then reads
    a memory-mapped split one block at a time; up to one block it is a plain permutation."""
    if n <= SHUFFLE_BLOCK:
        return shuffle.permutation(n)
    starts = shuffle.permutation(np.arange(0, n, SHUFFLE_BLOCK))
    return np.concatenate(
        [start + shuffle.permutation(min(SHUFFLE_BLOCK, n - start)) for start in starts]
    )


def token_chunks(inputs: SplitInputs, index: np.ndarray) -> list[np.ndarray]:
    """``index`` cut into consecutive runs of at most STEP_TOKENS tokens (one text at least), so
    a step's memory does not grow with the texts' lengths: a batch of 256 spamassassin e-mails
    holds 65k tokens, whose windows took 480 MB in one pass. Short texts stay one run."""
    if inputs.word_offsets is None or not len(index):
        return [index] if len(index) else []
    lengths = inputs.word_offsets[index + 1] - inputs.word_offsets[index]
    chunks, start, tokens = [], 0, 0
    for i, n in enumerate(lengths):
        if tokens + n > STEP_TOKENS and i > start:
            chunks.append(index[start:i])
            start, tokens = i, 0
        tokens += n
    chunks.append(index[start:])
    return chunks


def ragged_positions(offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the rows of items ``index`` and each item's length."""
    starts, lengths = offsets[index], offsets[index + 1] - offsets[index]
    ends = np.cumsum(lengths)
    positions = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(
        starts - ends + lengths, lengths
    )
    return positions, lengths


def _bits(inputs: SplitInputs, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(_kp.unpack_bits(inputs.words[rows], inputs.n_bits)).float()


def projection_inputs(inputs: SplitInputs, index: np.ndarray) -> tuple[torch.Tensor, ...]:
    """The projection network's arguments for items ``index``: a text model's bits, or a token
    model's distinct token bits, tokens per text and each token's row among the distinct ones."""
    if inputs.word_offsets is None:
        return (_bits(inputs, index),)
    positions, lengths = ragged_positions(inputs.word_offsets, index)
    words = np.ascontiguousarray(inputs.words[positions])
    keys = words.view(np.dtype((np.void, words.dtype.itemsize * words.shape[1]))).ravel()
    _, first, rows = np.unique(keys, return_index=True, return_inverse=True)
    distinct = _bits(inputs, positions[first])  # each distinct token once
    return distinct, torch.from_numpy(lengths), torch.from_numpy(rows.reshape(-1))


def forward_projection(
    net: torch.nn.Module, inputs: SplitInputs, index: np.ndarray
) -> torch.Tensor:
    """Projection-network logits for items ``index``."""
    return net(*projection_inputs(inputs, index))


def forward_trainer(net: torch.nn.Module, inputs: SplitInputs, index: np.ndarray) -> torch.Tensor:
    """Trainer-network logits for items ``index``."""
    positions, lengths = ragged_positions(inputs.bucket_offsets, index)
    buckets = torch.from_numpy(inputs.buckets[positions].astype(np.int64))
    if isinstance(net, nets.TokenLSTMTrainer):
        return net(buckets, torch.from_numpy(lengths))
    bag_offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    return net(buckets, bag_offsets, torch.from_numpy(inputs.bucket_weights[positions]))


@torch.no_grad()
def predict_logits(net: torch.nn.Module, inputs: SplitInputs, forward: Callable) -> np.ndarray:
    """Logits (n, n_labels) of every item of a split, in batches of EVAL_BATCH texts and at most
    STEP_TOKENS tokens, in eval mode; the network's mode is restored afterwards."""
    was_training = net.training
    net.eval()
    out = np.zeros((0, 0), dtype=np.float32)
    try:
        for lo in range(0, len(inputs), EVAL_BATCH):
            for index in token_chunks(inputs, np.arange(lo, min(lo + EVAL_BATCH, len(inputs)))):
                logits = forward(net, inputs, index)
                if not len(out):  # filled in place: a large split's logits are held once
                    out = np.empty((len(inputs), logits.shape[1]), dtype=np.float32)
                out[index] = logits.numpy()
    finally:
        net.train(was_training)
    return out
