"""Joint training of the trainer and the projection network, then export of the on-device model.

One readable loop (ProjectionNet, Ravi 2017):

    L = λ1·CE(trainer(x), y) + λ2·T²·CE(proj(x)/T, softmax(trainer(x)/T)) + λ3·CE(proj(x), y)

Both networks step on every minibatch; by default the distillation term does not reach the
trainer (stop-gradient). Early stopping keeps each network at its best dev epoch.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.nn import functional as F

from textproj import nets
from textproj.config import FeatureConfig, TrainConfig
from textproj.data import Dataset
from textproj.features import featurize
from textproj.metrics import classification_scores
from textproj.projector import Projector

EVAL_BATCH = 1024
MODEL_NAME = "model.tpn"
TRAINER_WEIGHTS = "trainer.npz"
TRAINER_HEADER = "trainer.json"
METRICS_NAME = "metrics.json"


@dataclass
class SplitInputs:
    """Network inputs of one split, computed once: projection bits and trainer feature buckets.

    Ragged arrays (per-token rows, feature buckets) are flat with ``offsets`` of length n + 1.
    """

    targets: np.ndarray  # int64 label index, -1 for a label unseen in training
    bits: np.ndarray  # text design: (n, n_bits); token design: (total_tokens, n_bits); uint8
    bit_offsets: np.ndarray | None  # token design only
    buckets: np.ndarray  # int64 trainer embedding rows
    bucket_weights: np.ndarray  # float32 weight of each bucket occurrence
    bucket_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class TrainResult:
    """What :func:`train` produced: the networks, their projector and labels, and the scores."""

    projection_net: torch.nn.Module
    trainer_net: torch.nn.Module
    projector: Projector
    labels: list[str]
    metrics: dict[str, Any]
    header: dict[str, Any]
    tensors: dict[str, np.ndarray]
    output_dir: Path | None


def trainer_features(config: TrainConfig, features: FeatureConfig) -> FeatureConfig:
    """Features the trainer embeds: the projection's for the bag trainer, words for the LSTM."""
    if config.trainer == "ffn":
        return features
    return FeatureConfig(
        word_ngrams=1,
        skip_grams=0,
        char_ngram_max=0,
        max_chars=features.max_chars,
        max_tokens=features.max_tokens,
    )


def prepare_inputs(
    data: Dataset,
    label_index: dict[str, int],
    projector: Projector,
    config: TrainConfig,
) -> SplitInputs:
    """Project and featurise a split once, so epochs only gather rows."""
    targets = np.array([label_index.get(label, -1) for label in data.labels], dtype=np.int64)
    if config.design == "text":
        bits, bit_offsets = projector.transform(data.texts), None
    else:
        bits, bit_offsets = projector.transform_tokens(data.texts)
    hashes, weights, offsets = featurize(
        data.texts, trainer_features(config, projector.features or FeatureConfig())
    )
    buckets = (hashes % np.uint64(config.trainer_buckets)).astype(np.int64)
    return SplitInputs(targets, bits, bit_offsets, buckets, weights.astype(np.float32), offsets)


def ragged_positions(offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the rows of items ``index`` and each item's length."""
    starts, lengths = offsets[index], offsets[index + 1] - offsets[index]
    ends = np.cumsum(lengths)
    positions = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(
        starts - ends + lengths, lengths
    )
    return positions, lengths


def forward_projection(
    net: torch.nn.Module, inputs: SplitInputs, index: np.ndarray
) -> torch.Tensor:
    """Projection-network logits for items ``index``."""
    if inputs.bit_offsets is None:
        return net(torch.from_numpy(inputs.bits[index]).float())
    positions, lengths = ragged_positions(inputs.bit_offsets, index)
    rows = torch.from_numpy(inputs.bits[positions]).float()
    return net(rows, torch.from_numpy(lengths))


def forward_trainer(net: torch.nn.Module, inputs: SplitInputs, index: np.ndarray) -> torch.Tensor:
    """Trainer-network logits for items ``index``."""
    positions, lengths = ragged_positions(inputs.bucket_offsets, index)
    buckets = torch.from_numpy(inputs.buckets[positions])
    if isinstance(net, nets.TokenLSTMTrainer):
        return net(buckets, torch.from_numpy(lengths))
    bag_offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    return net(buckets, bag_offsets, torch.from_numpy(inputs.bucket_weights[positions]))


@torch.no_grad()
def predict_indices(net: torch.nn.Module, inputs: SplitInputs, forward: Any) -> np.ndarray:
    """Arg-max label index of every item of a split, in batches."""
    net.eval()
    out = [
        forward(net, inputs, np.arange(lo, min(lo + EVAL_BATCH, len(inputs)))).argmax(1).numpy()
        for lo in range(0, len(inputs), EVAL_BATCH)
    ]
    net.train()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(predicted: np.ndarray, inputs: SplitInputs) -> float:
    """Share of items whose predicted index is the target (unseen labels are always wrong)."""
    return float((predicted == inputs.targets).mean()) if len(inputs) else 0.0


def split_off_dev(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A deterministic dev split carved from ``data`` (the same seed gives the same split)."""
    order = np.random.default_rng(seed).permutation(len(data))
    n_dev = max(1, round(fraction * len(data)))
    dev_idx, train_idx = np.sort(order[:n_dev]), np.sort(order[n_dev:])

    def take(index: np.ndarray, part: str) -> Dataset:
        return Dataset(
            [data.texts[i] for i in index], [data.labels[i] for i in index], f"{data.source}:{part}"
        )

    return take(train_idx, "train"), take(dev_idx, "dev")


def build_networks(
    config: TrainConfig, n_bits: int, n_labels: int
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Fresh (projection network, trainer network) for ``config``."""
    if config.design == "text":
        projection: torch.nn.Module = nets.TextProjectionNet(
            n_bits, config.hidden, n_labels, config.dropout
        )
    else:
        projection = nets.TokenProjectionNet(
            n_bits, config.bottleneck, config.filters, config.windows, n_labels, config.dropout
        )
    trainer_class = nets.FeatureBagTrainer if config.trainer == "ffn" else nets.TokenLSTMTrainer
    trainer = trainer_class(
        config.trainer_buckets, config.trainer_dim, config.trainer_hidden, n_labels, config.dropout
    )
    return projection, trainer


def joint_loss(
    trainer_logits: torch.Tensor,
    projection_logits: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig,
) -> torch.Tensor:
    """The three-term ProjectionNet loss (see the module docstring)."""
    loss = config.lambda_trainer * F.cross_entropy(trainer_logits, targets)
    loss = loss + config.lambda_labels * F.cross_entropy(projection_logits, targets)
    if config.lambda_distill > 0:
        teacher = trainer_logits if config.distill_to_trainer else trainer_logits.detach()
        soft = torch.softmax(teacher / config.temperature, dim=1)
        log_student = torch.log_softmax(projection_logits / config.temperature, dim=1)
        distill = -(soft * log_student).sum(dim=1).mean() * config.temperature**2
        loss = loss + config.lambda_distill * distill
    return loss


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  dev acc {task.fields[dev]}"),
        TimeElapsedColumn(),
        disable=not enabled,
    )


def _scores(labels: list[str], predicted: np.ndarray, gold: list[str]) -> dict[str, Any]:
    return classification_scores(gold, [labels[i] for i in predicted])


def train(
    train_data: Dataset,
    dev_data: Dataset | None = None,
    test_data: Dataset | None = None,
    *,
    config: TrainConfig | None = None,
    features: FeatureConfig | None = None,
    output_dir: str | Path | None = None,
    corpus: str | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train both networks jointly; write model.tpn, the trainer and metrics.json to ``output_dir``.

    With no ``dev_data`` a dev split is carved from ``train_data`` (``config.dev_fraction``).
    Scores of the projection network are those of its int8 on-device form. ``on_epoch`` is
    called after each epoch with that epoch's history row (epoch, loss, dev accuracies).
    """
    config = config or TrainConfig()
    features = features or FeatureConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    if len(train_data) == 0:
        raise ValueError(f"{train_data.source}: no training examples")
    if dev_data is None:
        train_data, dev_data = split_off_dev(train_data, config.dev_fraction, config.seed)
    labels = sorted(set(train_data.labels))
    label_index = {label: i for i, label in enumerate(labels)}
    n_bits_t, n_bits_d = config.projection_shape
    projector = Projector(n_bits_t, n_bits_d, features=features, seed=config.seed)
    splits = {"train": train_data, "dev": dev_data}
    if test_data is not None:
        splits["test"] = test_data
    inputs = {
        name: prepare_inputs(data, label_index, projector, config) for name, data in splits.items()
    }

    # --- networks and optimisers
    projection, trainer = build_networks(config, projector.n_bits, len(labels))
    sparse_params = [trainer.embedding.weight]
    dense_params = [p for p in trainer.parameters() if p is not trainer.embedding.weight]
    dense_params += list(projection.parameters())
    optimisers = [
        torch.optim.AdamW(dense_params, lr=config.learning_rate, weight_decay=config.weight_decay),
        torch.optim.SparseAdam(sparse_params, lr=config.learning_rate),
    ]
    steps_per_epoch = (len(inputs["train"]) + config.batch_size - 1) // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / total_steps)
        for opt in optimisers
    ]

    # --- the loop: shuffle, step both networks, score on dev, keep the best of each
    shuffle = np.random.default_rng(config.seed)
    train_inputs, dev_inputs = inputs["train"], inputs["dev"]
    best = {"projection": (-1.0, None, 0), "trainer": (-1.0, None, 0)}
    history = []
    since_best = 0
    with _progress(progress) as bars:
        for epoch in range(1, config.epochs + 1):
            task = bars.add_task(
                f"epoch {epoch}/{config.epochs}", total=steps_per_epoch, loss=0.0, dev="…"
            )
            order = shuffle.permutation(len(train_inputs))
            total_loss = 0.0
            for step, lo in enumerate(range(0, len(order), config.batch_size), start=1):
                index = order[lo : lo + config.batch_size]
                targets = torch.from_numpy(train_inputs.targets[index])
                loss = joint_loss(
                    forward_trainer(trainer, train_inputs, index),
                    forward_projection(projection, train_inputs, index),
                    targets,
                    config,
                )
                for optimiser in optimisers:
                    optimiser.zero_grad()
                loss.backward()
                for optimiser, scheduler in zip(optimisers, schedulers, strict=True):
                    optimiser.step()
                    scheduler.step()
                total_loss += loss.item()
                bars.update(task, advance=1, loss=total_loss / step)
            dev_acc = {
                "projection": accuracy(
                    predict_indices(projection, dev_inputs, forward_projection), dev_inputs
                ),
                "trainer": accuracy(
                    predict_indices(trainer, dev_inputs, forward_trainer), dev_inputs
                ),
            }
            history.append(
                {
                    "epoch": epoch,
                    "loss": total_loss / steps_per_epoch,
                    **{f"dev_{k}": v for k, v in dev_acc.items()},
                }
            )
            bars.update(task, dev=f"{dev_acc['projection']:.4f} (trainer {dev_acc['trainer']:.4f})")
            if on_epoch is not None:
                on_epoch(history[-1])
            improved = False
            for name, net in (("projection", projection), ("trainer", trainer)):
                if dev_acc[name] > best[name][0]:
                    best[name] = (dev_acc[name], copy.deepcopy(net.state_dict()), epoch)
                    improved = improved or name == "projection"
            since_best = 0 if improved else since_best + 1
            if since_best >= config.patience:
                break
    projection.load_state_dict(best["projection"][1])
    trainer.load_state_dict(best["trainer"][1])
    projection.eval()
    trainer.eval()

    # --- the on-device form: int8 weights, scored as they will run
    tensors = nets.export_projection_net(projection)
    quantized = nets.load_quantized(copy.deepcopy(projection), tensors)
    header = {
        "format": "textproj-model",
        "labels": labels,
        "projector": projector.get_config(),
        "network": nets.network_config(projection),
        "multi_label": False,
        "train_config": config.to_dict(),
    }
    metrics: dict[str, Any] = {
        "corpus": corpus or train_data.source,
        "labels": labels,
        "config": {"train": config.to_dict(), "features": features.to_dict()},
        "projection": {},
        "projection_float": {},
        "trainer": {},
        "best_epoch": {name: best[name][2] for name in best},
        "history": history,
    }
    for name, split in inputs.items():
        if name == "train":
            continue
        gold = splits[name].labels
        metrics["projection"][name] = _scores(
            labels, predict_indices(quantized, split, forward_projection), gold
        )
        metrics["projection_float"][name] = _scores(
            labels, predict_indices(projection, split, forward_projection), gold
        )
        metrics["trainer"][name] = _scores(
            labels, predict_indices(trainer, split, forward_trainer), gold
        )
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)

    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        from textproj import model_file

        metrics["model_bytes"] = model_file.write_model(out / MODEL_NAME, header, tensors)
        save_trainer(trainer, out, labels, config, features)
        metrics["trainer_bytes"] = (out / TRAINER_WEIGHTS).stat().st_size
        _write_json_atomic(out / METRICS_NAME, metrics)
    return TrainResult(projection, trainer, projector, labels, metrics, header, tensors, out)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def save_trainer(
    trainer: torch.nn.Module,
    directory: Path,
    labels: list[str],
    config: TrainConfig,
    features: FeatureConfig,
) -> None:
    """The trainer as plain arrays (trainer.npz) plus a JSON header: nothing executes on load."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {name: t.detach().cpu().numpy() for name, t in trainer.state_dict().items()}
    tmp = directory / (TRAINER_WEIGHTS + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(directory / TRAINER_WEIGHTS)
    _write_json_atomic(
        directory / TRAINER_HEADER,
        {"labels": labels, "train_config": config.to_dict(), "features": features.to_dict()},
    )
