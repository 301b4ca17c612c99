"""The networks, in PyTorch: two projection-network designs and two trainer networks.

Projection networks (what ships on a device; ``textproj.runtime`` mirrors their forward pass
in numpy):
- ``TextProjectionNet`` (SGNN): the whole text's T*d bits -> dense ReLU layers -> class logits.
- ``TokenProjectionNet`` (PRADO-like): each token's bits -> dense bottleneck (ReLU) -> for each
  window size k, a value and an attention convolution over k-token windows -> attention pooling
  over the sequence, per channel (with ``max_pool`` the values' maximum too, with
  ``mean_pool`` their mean) -> concatenation -> class logits.

Trainer networks (served anywhere; never on the device):
- ``FeatureBagTrainer``: learned embeddings of the hashed features (EmbeddingBag) -> a hidden
  ReLU layer -> class logits.
- ``TokenLSTMTrainer``: learned hashed token embeddings -> BiLSTM -> max pooling -> logits.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from textproj import netspec


def stored_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight`` as the device stores it (``netspec.quantize_rows``: symmetric, one scale per
    output row), with the straight-through gradient: training sees the rounding it will be
    served with, so the device model scores what the float one does (quantization-aware
    training; int4 from the start measured better on dev than rounding after training)."""
    levels = netspec.weight_levels(bits)
    rows = weight.detach().reshape(len(weight), -1).abs().amax(dim=1)
    scale = torch.where(rows > 0, rows / levels, 1.0)
    scale = scale.reshape((-1,) + (1,) * (weight.dim() - 1))
    rounded = torch.clamp(torch.round(weight / scale), -levels, levels) * scale
    return weight + (rounded - weight).detach()


class Dropout(nn.Module):
    """Inverted dropout drawn as one uniform mask (``torch.rand(...) >= p``), from torch's
    global generator as ``nn.Dropout`` draws: the same noise in expectation at about a third of
    its CPU time (256 x 256, forward and backward: 0.20 ms against 0.70 ms)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        kept = (torch.rand(x.shape) >= self.p).to(x.dtype)
        return x * (kept * (1 / (1 - self.p)))


def centered(bits: torch.Tensor) -> torch.Tensor:
    """0/1 bits as -1/+1: zero-mean inputs train far faster (banking77, 12 epochs: dev 0.898
    against 0.844). The device never sees this: the export folds it into the first layer."""
    return 2 * bits - 1


class TextProjectionNet(nn.Module):
    """SGNN projection network over whole-text bits (float 0/1 input of shape (n, n_bits))."""

    def __init__(
        self,
        n_bits: int,
        hidden: tuple[int, ...],
        n_labels: int,
        dropout: float = 0.0,
        weight_bits: int = 8,
    ) -> None:
        super().__init__()
        self.dropout = Dropout(dropout)
        self.weight_bits = weight_bits  # the layers' stored width (training sees its rounding)
        widths = [n_bits, *hidden, n_labels]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, bits: torch.Tensor) -> torch.Tensor:
        x = centered(bits)
        for i, layer in enumerate(self.dense):
            x = F.linear(x, stored_weight(layer.weight, self.weight_bits), layer.bias)
            if i < len(self.dense) - 1:
                x = self.dropout(F.relu(x))
        return x


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
        weight_bits: int = 8,
        max_pool: bool = False,
        mean_pool: bool = False,
    ) -> None:
        super().__init__()
        self.dropout = Dropout(dropout)
        self.token_dropout = token_dropout  # share of token occurrences dropped in training
        self.weight_bits = weight_bits  # the layers' stored width (training sees its rounding)
        self.windows = tuple(windows)
        self.max_pool = max_pool  # also each window's values' maximum over the text
        self.mean_pool = mean_pool  # also their mean over the text's window positions
        self.bottleneck = nn.Linear(n_bits, bottleneck)
        self.value = nn.ModuleList(nn.Conv1d(bottleneck, filters, k) for k in self.windows)
        self.attention = nn.ModuleList(nn.Conv1d(bottleneck, filters, k) for k in self.windows)
        pools = dict(zip(netspec.POOLS, (max_pool, mean_pool), strict=True))
        shape = {"filters": filters, "windows": self.windows, **pools}
        self.output = nn.Linear(netspec.pooled_width(shape), n_labels)

    def forward(
        self,
        token_bits: torch.Tensor,
        lengths: torch.Tensor,
        token_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``token_bits`` (U, n_bits) as 0/1 floats, the bits of each distinct token of the batch;
        ``token_rows`` (sum(lengths),) the row of each token of the texts in order (None: one row
        per token); ``lengths`` (n,) tokens per text.

        Each distinct token goes through the bottleneck once and is multiplied by every tap of
        every window's value and attention kernels once (a batch of 256 banking77 texts has
        3,051 tokens but 545 distinct ones); a window's output is then the sum of its taps'
        products, gathered per token (zeros past the text's end), with no padding to the
        longest text. Attention pooling is a softmax within each text's windows; max pooling
        (``max_pool``) appends each channel's largest window value, mean pooling (``mean_pool``)
        then each channel's mean over the text's window positions. Token dropout
        drops whole token occurrences: a window's tap on a dropped token reads zeros, the kept
        ones are scaled by 1 / (1 - p).
        """
        bits = self.weight_bits
        x = F.relu(
            F.linear(
                centered(token_bits),
                stored_weight(self.bottleneck.weight, bits),
                self.bottleneck.bias,
            )
        )
        if token_rows is None:
            token_rows = torch.arange(len(x))
        order = sorted(range(len(self.windows)), key=self.windows.__getitem__)
        kernels = [
            stored_weight(torch.cat([self.value[i].weight, self.attention[i].weight]), bits)
            for i in order
        ]  # (2F, E, k), by window size
        bias = torch.cat([torch.cat([self.value[i].bias, self.attention[i].bias]) for i in order])
        width = self.windows[order[-1]]
        # tap j feeds the windows longer than j: a suffix of the (window, value|attention) columns
        columns = [
            torch.cat([kernel[:, :, j] for kernel in kernels if kernel.shape[2] > j]).T
            for j in range(width)
        ]
        products = x @ torch.cat(columns, dim=1)
        if self.training and self.token_dropout > 0:  # a dropped occurrence reads the zero row
            kept = torch.bernoulli(torch.full((len(token_rows),), 1 - self.token_dropout))
            token_rows = torch.where(kept.bool(), token_rows, len(x))
            products = products / (1 - self.token_dropout)
        products = F.pad(products, (0, 0, 0, 1))  # the zero row: past a text's end, or dropped
        occurrences, segment = window_taps(lengths, width)
        taps = F.pad(token_rows, (0, 1), value=len(x))[occurrences]  # (V, width) rows
        blocks = tuple(block.shape[1] for block in columns)
        pools = (self.max_pool, self.mean_pool)
        pooled = WindowPool.apply(
            products, bias, taps, segment, len(lengths), blocks, len(order), pools
        )
        parts = 1 + sum(pools)
        pooled = pooled.view(len(lengths), len(order) * parts, -1)
        if order != sorted(order):
            unsorted = [order.index(i) for i in range(len(order))]
            unsorted = [part * len(order) + i for part in range(parts) for i in unsorted]
            pooled = pooled[:, unsorted]
        output = stored_weight(self.output.weight, bits)
        return F.linear(self.dropout(pooled.reshape(len(lengths), -1)), output, self.output.bias)


class WindowPool(torch.autograd.Function):
    """Windows' value and attention outputs from their taps' products, then attention pooling
    within each text (``pools`` = (max, mean): with max each channel's largest value, after the
    pooled channels, the gradient going to the windows that hold it, shared among ties; with
    mean then each channel's mean over the text's windows), with a hand-written backward.

    ``products`` (U + 1, sum(blocks)) holds each distinct token's products with every tap's
    kernel columns, tap j's ``blocks[j]`` columns in turn, the last row zeros; tap j feeds the
    last ``blocks[j]`` of the (window, value | attention, channel) columns, windows by size.
    Autograd through the same ops kept a copy of every intermediate and made a copy for every
    in-place sum and strided view (half of a step on long texts); this keeps the windows'
    values, their softmax weights and the pooled result, and nothing else.
    """

    @staticmethod
    def forward(
        ctx: Any,
        products: torch.Tensor,
        bias: torch.Tensor,
        taps: torch.Tensor,
        segment: torch.Tensor,
        n_texts: int,
        blocks: tuple[int, ...],
        n_windows: int,
        pools: tuple[bool, bool] = (False, False),
    ) -> torch.Tensor:
        out = torch.index_select(products[:, : blocks[0]], 0, taps[:, 0]).add_(bias)
        start = blocks[0]
        for j, block in enumerate(blocks[1:], start=1):
            out[:, -block:] += torch.index_select(products[:, start : start + block], 0, taps[:, j])
            start += block
        channels = out.view(len(out), n_windows, 2, -1)
        values = channels[:, :, 0].reshape(len(out), -1)  # (V, C): reductions want rows
        scores = channels[:, :, 1].reshape(len(out), -1)
        shape = (n_texts, values.shape[1])
        spread = segment[:, None].expand_as(scores)
        peak = scores.new_full(shape, float("-inf")).scatter_reduce_(0, spread, scores, "amax")
        weights = torch.exp(scores - peak[segment])
        total = weights.new_zeros(shape).index_add_(0, segment, weights)
        pooled = weights.new_zeros(shape).index_add_(0, segment, weights * values) / total
        ctx.blocks, ctx.n_rows, ctx.n_windows = blocks, len(products), n_windows
        parts, held, counts = [pooled], None, None
        if pools[0]:
            largest = values.new_full(shape, float("-inf"))
            parts.append(largest.scatter_reduce_(0, spread, values, "amax"))
            held = (values == largest[segment]).to(values.dtype)
            held /= held.new_zeros(shape).index_add_(0, segment, held)[segment]
        if pools[1]:
            counts = values.new_zeros((n_texts, 1)).index_add_(
                0, segment, values.new_ones((len(values), 1))
            )
            parts.append(values.new_zeros(shape).index_add_(0, segment, values) / counts)
        ctx.save_for_backward(taps, segment, values, weights, total, pooled, held, counts)
        return torch.cat(parts, dim=1) if len(parts) > 1 else pooled

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        taps, segment, values, weights, total, pooled, held, counts = ctx.saved_tensors
        grads = grad.split(values.shape[1], dim=1)
        per_window = (grads[0] / total)[segment] * weights  # d pooled / d values
        grad_out = values.new_empty(
            (len(values), ctx.n_windows, 2, values.shape[1] // ctx.n_windows)
        )
        grad_values = per_window
        if held is not None:
            grad_values = grad_values + grads[1][segment] * held
        if counts is not None:
            grad_values = grad_values + (grads[-1] / counts)[segment]
        grad_out[:, :, 0] = grad_values.view(len(values), ctx.n_windows, -1)
        grad_out[:, :, 1] = (per_window * (values - pooled[segment])).view_as(grad_out[:, :, 1])
        grad_out = grad_out.view(len(values), -1)
        grad_products = [  # a contiguous source: index_add_ is five times slower on a strided one
            grad_out.new_zeros((ctx.n_rows, block)).index_add_(
                0, taps[:, j], grad_out[:, -block:].contiguous()
            )
            for j, block in enumerate(ctx.blocks)
        ]
        return torch.cat(grad_products, dim=1), grad_out.sum(0), *(None,) * 6


def window_taps(lengths: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each window start (one per token; one for a text with no tokens), the positions of
    its ``width`` taps among the texts' tokens in order (V, width), sum(lengths) past the text's
    end, and its text's index (V,). Window t of a text covers its tokens t..t+width-1.
    """
    starts = torch.cumsum(lengths, 0) - lengths
    windows_per_text = lengths.clamp(min=1)
    segment = torch.repeat_interleave(torch.arange(len(lengths)), windows_per_text)
    position = torch.arange(len(segment)) - torch.repeat_interleave(
        torch.cumsum(windows_per_text, 0) - windows_per_text, windows_per_text
    )
    tap = position[:, None] + torch.arange(width)[None, :]  # (V, width) token index in its text
    inside = tap < lengths[segment][:, None]
    return torch.where(inside, starts[segment][:, None] + tap, int(lengths.sum())), segment


class FeatureBagTrainer(nn.Module):
    """Trainer: sum of learned embeddings of hashed features -> hidden ReLU layer -> logits."""

    def __init__(
        self, n_buckets: int, dim: int, hidden: int, n_labels: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dropout = Dropout(dropout)
        self.embedding = nn.EmbeddingBag(n_buckets, dim, mode="sum")
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
        self.dropout = Dropout(dropout)
        self.embedding = nn.Embedding(n_buckets, dim)
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
    config = {
        "design": "token",
        "n_bits": net.bottleneck.in_features,
        "bottleneck": net.bottleneck.out_features,
        "filters": net.value[0].out_channels,
        "windows": list(net.windows),
        "n_labels": net.output.out_features,
    }
    pools = zip(netspec.POOLS, (net.max_pool, net.mean_pool), strict=True)
    return {**config, **{key: True for key, on in pools if on}}  # absent: false


def build_projection_net(
    config: dict, weight_bits: int = 8
) -> TextProjectionNet | TokenProjectionNet:
    """Inverse of :func:`network_config` (fresh weights), its layers stored at ``weight_bits``
    (a model file's ``train_config.weight_bits``): a net built at 8 bits would round int4
    weights loaded into it onto the int8 grid in its forward pass."""
    if config["design"] == "text":
        return TextProjectionNet(
            config["n_bits"], tuple(config["hidden"]), config["n_labels"], weight_bits=weight_bits
        )
    return TokenProjectionNet(
        config["n_bits"],
        config["bottleneck"],
        config["filters"],
        tuple(config["windows"]),
        config["n_labels"],
        weight_bits=weight_bits,
        max_pool=config.get("max_pool", False),
        mean_pool=config.get("mean_pool", False),
    )


def first_layer(net: nn.Module) -> str:
    """Name of the layer that reads the bits (the one the export folds the centring into)."""
    return "dense.0" if isinstance(net, TextProjectionNet) else "bottleneck"


def export_projection_net(net: nn.Module, bits: int | None = None) -> dict[str, np.ndarray]:
    """The on-device tensors of ``net`` (``textproj.netspec.quantize_params``): each ``X.weight``
    quantized to ``bits`` (by default the net's own ``weight_bits``; 8, or 4: held as int8,
    stored as int4 with ``netspec.int4_tensors``) with a per-row float32 ``X.scale``, each
    ``X.bias`` as float32.

    The first layer reads 0/1 bits on the device: W(2b - 1) + c is stored as (2W)b + (c - W'·1),
    with W' the stored (rounded) W, so the folding adds no error of its own.
    """
    values = {
        name: p.detach().cpu().numpy().astype(np.float64) for name, p in net.named_parameters()
    }
    first = first_layer(net)
    values[f"{first}.weight"] = 2 * values[f"{first}.weight"]
    tensors = netspec.quantize_params(values, net.weight_bits if bits is None else bits)
    stored = netspec.dequantize_param(tensors, f"{first}.weight").astype(np.float64)
    tensors[f"{first}.bias"] = (values[f"{first}.bias"] - stored.sum(axis=1) / 2).astype(np.float32)
    return tensors


def load_quantized(net: nn.Module, tensors: dict[str, np.ndarray]) -> nn.Module:
    """Set ``net``'s parameters to the dequantized values of exported ``tensors`` (in place),
    undoing the first layer's folded centring, so ``net`` computes what the device does."""
    values = {name: netspec.dequantize_param(tensors, name) for name, _ in net.named_parameters()}
    first = first_layer(net)
    half = values[f"{first}.weight"] / 2
    values[f"{first}.weight"] = half
    values[f"{first}.bias"] = values[f"{first}.bias"] + half.sum(axis=1, dtype=np.float32)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.copy_(torch.from_numpy(values[name]))
    return net
