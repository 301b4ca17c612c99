"""The networks, in PyTorch: two projection-network designs and two trainer networks.

Projection networks (what ships on a device; ``textproj.runtime`` mirrors their forward pass
in numpy):
- ``TextProjectionNet`` (SGNN): the whole text's T*d bits -> dense ReLU layers -> class logits.
- ``TokenProjectionNet`` (PRADO-like): each token's bits -> dense bottleneck (ReLU) -> for each
  window size k, a value and an attention convolution over k-token windows -> attention pooling
  over the sequence, per channel -> concatenation -> class logits.

Trainer networks (served anywhere; never on the device):
- ``FeatureBagTrainer``: learned embeddings of the hashed features (EmbeddingBag with sparse
  gradients) -> a hidden ReLU layer -> class logits.
- ``TokenLSTMTrainer``: learned hashed token embeddings -> BiLSTM -> max pooling -> logits.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from textproj import netspec


class TextProjectionNet(nn.Module):
    """SGNN projection network over whole-text bits (float 0/1 input of shape (n, n_bits))."""

    def __init__(
        self, n_bits: int, hidden: tuple[int, ...], n_labels: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        widths = [n_bits, *hidden, n_labels]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, bits: torch.Tensor) -> torch.Tensor:
        x = bits
        for layer in self.dense[:-1]:
            x = self.dropout(F.relu(layer(x)))
        return self.dense[-1](x)


def pad_tokens(rows: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat per-token rows (sum(lengths), E) -> padded (n, L, E) and a validity mask (n, L).

    A text with no tokens gets one valid all-zero row, so every text has a defined output.
    """
    width = max(1, int(lengths.max())) if len(lengths) else 1
    positions = torch.arange(width)[None, :]
    padded = rows.new_zeros((len(lengths), width, rows.shape[1]))
    padded[positions < lengths[:, None]] = rows
    return padded, positions < lengths.clamp(min=1)[:, None]


class TokenProjectionNet(nn.Module):
    """PRADO-like projection network over per-token bits."""

    def __init__(
        self,
        n_bits: int,
        bottleneck: int,
        filters: int,
        windows: tuple[int, ...],
        n_labels: int,
        dropout: float = 0.0,
        token_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.token_dropout = nn.Dropout(token_dropout)
        self.windows = tuple(windows)
        self.bottleneck = nn.Linear(n_bits, bottleneck)
        self.value = nn.ModuleList(nn.Conv1d(bottleneck, filters, k) for k in self.windows)
        self.attention = nn.ModuleList(nn.Conv1d(bottleneck, filters, k) for k in self.windows)
        self.output = nn.Linear(filters * len(self.windows), n_labels)

    def forward(self, token_bits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``token_bits`` (sum(lengths), n_bits) as 0/1 floats; ``lengths`` (n,) tokens per text."""
        x = self.token_dropout(F.relu(self.bottleneck(token_bits)))
        padded, mask = pad_tokens(x, lengths)
        seq = padded.transpose(1, 2)  # (n, E, L)
        pooled = []
        for k, value_conv, attention_conv in zip(
            self.windows, self.value, self.attention, strict=True
        ):
            window_in = F.pad(seq, (0, k - 1))  # window t covers tokens t..t+k-1 (zeros past end)
            values = value_conv(window_in)  # (n, filters, L)
            logits = attention_conv(window_in).masked_fill(~mask[:, None, :], float("-inf"))
            pooled.append((torch.softmax(logits, dim=2) * values).sum(dim=2))
        return self.output(self.dropout(torch.cat(pooled, dim=1)))


class FeatureBagTrainer(nn.Module):
    """Trainer: sum of learned embeddings of hashed features -> hidden ReLU layer -> logits."""

    def __init__(
        self, n_buckets: int, dim: int, hidden: int, n_labels: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.embedding = nn.EmbeddingBag(n_buckets, dim, mode="sum", sparse=True)
        self.hidden = nn.Linear(dim, hidden)
        self.output = nn.Linear(hidden, n_labels)

    def forward(
        self, buckets: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        bag = self.embedding(buckets, offsets, per_sample_weights=weights)
        bag = self.dropout(F.layer_norm(bag, bag.shape[1:]))
        return self.output(self.dropout(F.relu(self.hidden(bag))))


class TokenLSTMTrainer(nn.Module):
    """Trainer: hashed token embeddings -> BiLSTM -> max pooling over time -> logits."""

    def __init__(
        self, n_buckets: int, dim: int, hidden: int, n_labels: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.embedding = nn.Embedding(n_buckets, dim, sparse=True)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * hidden, n_labels)

    def forward(self, buckets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``buckets`` (sum(lengths),) hashed token ids; ``lengths`` (n,) tokens per text."""
        padded, mask = pad_tokens(self.embedding(buckets), lengths)
        packed = nn.utils.rnn.pack_padded_sequence(
            padded, lengths.clamp(min=1), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        out = out.masked_fill(~mask[:, : out.shape[1], None], float("-inf"))
        return self.output(self.dropout(out.max(dim=1).values))


def network_config(net: TextProjectionNet | TokenProjectionNet) -> dict[str, object]:
    """JSON-ready shape description of a projection network, enough to rebuild it."""
    if isinstance(net, TextProjectionNet):
        widths = [net.dense[0].in_features] + [layer.out_features for layer in net.dense]
        return {
            "design": "text",
            "n_bits": widths[0],
            "hidden": widths[1:-1],
            "n_labels": widths[-1],
        }
    return {
        "design": "token",
        "n_bits": net.bottleneck.in_features,
        "bottleneck": net.bottleneck.out_features,
        "filters": net.value[0].out_channels,
        "windows": list(net.windows),
        "n_labels": net.output.out_features,
    }


def build_projection_net(config: dict) -> TextProjectionNet | TokenProjectionNet:
    """Inverse of :func:`network_config` (fresh weights)."""
    if config["design"] == "text":
        return TextProjectionNet(config["n_bits"], tuple(config["hidden"]), config["n_labels"])
    return TokenProjectionNet(
        config["n_bits"],
        config["bottleneck"],
        config["filters"],
        tuple(config["windows"]),
        config["n_labels"],
    )


def export_projection_net(net: nn.Module) -> dict[str, np.ndarray]:
    """The on-device tensors of ``net`` (``textproj.netspec.quantize_params``): each ``X.weight``
    as int8 with a per-row float32 ``X.scale``, each ``X.bias`` as float32."""
    return netspec.quantize_params(
        {name: param.detach().cpu().numpy() for name, param in net.named_parameters()}
    )


def load_quantized(net: nn.Module, tensors: dict[str, np.ndarray]) -> nn.Module:
    """Set ``net``'s parameters to the dequantized values of exported ``tensors`` (in place)."""
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.copy_(torch.from_numpy(netspec.dequantize_param(tensors, name)))
    return net
