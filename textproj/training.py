"""Joint training of the trainer and the projection network, then export of the on-device model.

One readable loop (ProjectionNet, Ravi 2017):

    L = λ1·CE(trainer(x), y) + λ2·T²·CE(proj(x)/T, softmax(trainer(x)/T)) + λ3·CE(proj(x), y)

Both networks step on every minibatch; by default the distillation term does not reach the
trainer (stop-gradient). Early stopping keeps each network at its best dev epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
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
from textproj.metrics import classification_scores, multilabel_scores
from textproj.projector import Projector

EVAL_BATCH = 1024
MODEL_NAME = "model.tpn"
TRAINER_WEIGHTS = "trainer.npz"
TRAINER_HEADER = "trainer.json"
METRICS_NAME = "metrics.json"
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "textproj-checkpoint-1"
THRESHOLD_GRID = np.linspace(0.05, 0.95, 19)


@dataclass
class SplitInputs:
    """Network inputs of one split, computed once: projection bits and trainer feature buckets.

    Ragged arrays (per-token rows, feature buckets) are flat with ``offsets`` of length n + 1.
    """

    targets: np.ndarray  # int64 label index (-1: unseen in training); multi-label: multi-hot
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


def prepare_inputs(
    data: Dataset,
    label_index: dict[str, int],
    projector: Projector,
    config: TrainConfig,
) -> SplitInputs:
    """Project and featurise a split once, so epochs only gather rows."""
    if config.multi_label:
        targets = np.zeros((len(data), len(label_index)), dtype=np.float32)
        for i, label_set in enumerate(data.labels):
            targets[i, [label_index[label] for label in label_set if label in label_index]] = 1
    else:
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
def predict_logits(net: torch.nn.Module, inputs: SplitInputs, forward: Any) -> np.ndarray:
    """Logits (n, n_labels) of every item of a split, in batches, in eval mode."""
    net.eval()
    out = [
        forward(net, inputs, np.arange(lo, min(lo + EVAL_BATCH, len(inputs)))).numpy()
        for lo in range(0, len(inputs), EVAL_BATCH)
    ]
    net.train()
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities of a multi-label network."""
    return 1.0 / (1.0 + np.exp(-logits))


def decide(logits: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Label indices (n,) by arg-max, or with ``thresholds`` a multi-hot (n, n_labels) bool."""
    if thresholds is None:
        return logits.argmax(1) if len(logits) else np.zeros(0, dtype=np.int64)
    return sigmoid(logits) >= thresholds


def tune_thresholds(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-label threshold maximising that label's F1 on a split (0.5 where it has no positives)."""
    proba = sigmoid(logits)
    thresholds = np.full(targets.shape[1], 0.5, dtype=np.float32)
    for j in np.flatnonzero(targets.sum(0) > 0):
        gold = targets[:, j] > 0
        f1 = [
            2 * (gold & (proba[:, j] >= t)).sum() / (gold.sum() + (proba[:, j] >= t).sum())
            for t in THRESHOLD_GRID
        ]
        thresholds[j] = THRESHOLD_GRID[int(np.argmax(f1))]
    return thresholds


def dev_score(decided: np.ndarray, inputs: SplitInputs) -> float:
    """The early-stopping score: accuracy, or micro-F1 for multi-label targets."""
    if len(inputs) == 0:
        return 0.0
    if inputs.targets.ndim == 1:
        return float((decided == inputs.targets).mean())
    gold = inputs.targets > 0
    hits = (gold & decided).sum()
    return float(2 * hits / max(1, gold.sum() + decided.sum()))


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
            n_bits, config.bottleneck, config.filters, config.windows, n_labels, config.dropout,
            config.token_dropout,
        )  # fmt: skip
    trainer_class = nets.FeatureBagTrainer if config.trainer == "ffn" else nets.TokenLSTMTrainer
    trainer = trainer_class(
        config.trainer_buckets, config.trainer_dim, config.trainer_hidden, n_labels, config.dropout
    )
    return projection, trainer


def make_optimisers(
    projection: torch.nn.Module, trainer: torch.nn.Module, config: TrainConfig
) -> list[torch.optim.Optimizer]:
    """AdamW over the dense parameters of both networks, SparseAdam over the trainer's
    hashed embedding rows (its gradients are sparse)."""
    sparse = trainer.embedding.weight
    trainer_lr = config.trainer_learning_rate or config.learning_rate
    groups = [
        {"params": [p for p in trainer.parameters() if p is not sparse], "lr": trainer_lr},
        {"params": list(projection.parameters()), "lr": config.learning_rate},
    ]
    return [
        torch.optim.AdamW(groups, weight_decay=config.weight_decay),
        torch.optim.SparseAdam([sparse], lr=trainer_lr),
    ]


def model_header(
    labels: list[str], projector: Projector, projection: torch.nn.Module, config: TrainConfig
) -> dict[str, Any]:
    """The JSON header of ``model.tpn`` (docs/model-format.md) for a trained projection network."""
    return {
        "format": "textproj-model",
        "labels": labels,
        "projector": projector.get_config(),
        "network": nets.network_config(projection),
        "multi_label": config.multi_label,
        "train_config": config.to_dict(),
    }


def label_loss(
    logits: torch.Tensor, targets: torch.Tensor, multi_label: bool, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy, or for multi-label the per-label binary cross-entropy summed over labels."""
    if not multi_label:
        return F.cross_entropy(logits, targets, label_smoothing=smoothing)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1).mean()


def joint_loss(
    trainer_logits: torch.Tensor,
    projection_logits: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig,
) -> torch.Tensor:
    """The three-term ProjectionNet loss (see the module docstring)."""
    multi = config.multi_label
    loss = config.lambda_trainer * label_loss(trainer_logits, targets, multi)
    loss = loss + config.lambda_labels * label_loss(
        projection_logits, targets, multi, config.label_smoothing
    )
    if config.lambda_distill > 0:
        teacher = trainer_logits if config.distill_to_trainer else trainer_logits.detach()
        scaled = projection_logits / config.temperature
        if multi:
            soft = torch.sigmoid(teacher / config.temperature)
            distill = F.binary_cross_entropy_with_logits(scaled, soft, reduction="none").sum(1)
        else:
            soft = torch.softmax(teacher / config.temperature, dim=1)
            distill = -(soft * torch.log_softmax(scaled, dim=1)).sum(dim=1)
        loss = loss + config.lambda_distill * distill.mean() * config.temperature**2
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


def _scores(
    labels: list[str], decided: np.ndarray, gold: list, multi_label: bool
) -> dict[str, Any]:
    if multi_label:
        return multilabel_scores(
            gold, [[labels[j] for j in np.flatnonzero(row)] for row in decided]
        )
    return classification_scores(gold, [labels[i] for i in decided])


def data_fingerprint(splits: dict[str, Dataset]) -> str:
    """SHA-256 over every split's texts and labels: a resumed run must see the same data."""
    digest = hashlib.sha256()
    for name, data in splits.items():
        digest.update(json.dumps([name, data.texts, data.labels]).encode("utf-8"))
    return digest.hexdigest()


def read_checkpoint(directory: str | Path) -> dict[str, Any]:
    """The checkpoint a run left in ``directory`` (tensors and plain values only, no code)."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        raise ValueError(f"{path}: no checkpoint to resume (the run finished or never started)")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: unreadable checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a textproj checkpoint")
    return state


def _save_checkpoint(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (CHECKPOINT_NAME + ".tmp")
    torch.save(state, tmp)
    tmp.replace(directory / CHECKPOINT_NAME)


def _check_resumable(state: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"{path / CHECKPOINT_NAME}: {key} differs from this run's; cannot resume"
            )


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
    resume: bool = False,
    run: dict[str, Any] | None = None,
) -> TrainResult:
    """Train both networks jointly; write model.tpn, the trainer and metrics.json to ``output_dir``.

    With no ``dev_data`` a dev split is carved from ``train_data`` (``config.dev_fraction``).
    Scores of the projection network are those of its int8 on-device form. ``on_epoch`` is
    called after each epoch with that epoch's history row (epoch, loss, dev scores).
    With an ``output_dir``, every epoch ends with a checkpoint there (removed when the run
    completes); ``resume=True`` continues from it and gives the model an uninterrupted run
    would have given. ``run`` is stored in the checkpoint (the CLI keeps its data sources there).
    """
    config = config or TrainConfig()
    features = features or FeatureConfig()
    out = Path(output_dir) if output_dir is not None else None
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    if len(train_data) == 0:
        raise ValueError(f"{train_data.source}: no training examples")
    if dev_data is None:
        train_data, dev_data = split_off_dev(train_data, config.dev_fraction, config.seed)
    multi = config.multi_label
    label_sets = train_data.labels if multi else [[label] for label in train_data.labels]
    labels = sorted({label for label_set in label_sets for label in label_set})
    label_index = {label: i for i, label in enumerate(labels)}
    n_bits_t, n_bits_d = config.projection_shape
    projector = Projector(n_bits_t, n_bits_d, features=features, seed=config.seed)
    splits = {"train": train_data, "dev": dev_data}
    if test_data is not None:
        splits["test"] = test_data
    identity = {
        "config": config.to_dict(),
        "features": features.to_dict(),
        "fingerprint": data_fingerprint(splits),
    }
    inputs = {
        name: prepare_inputs(data, label_index, projector, config) for name, data in splits.items()
    }

    # --- networks and optimisers
    projection, trainer = build_networks(config, projector.n_bits, len(labels))
    optimisers = make_optimisers(projection, trainer, config)
    steps_per_epoch = (len(inputs["train"]) + config.batch_size - 1) // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / total_steps)
        for opt in optimisers
    ]
    shuffle = np.random.default_rng(config.seed)
    nets_by_name = {"projection": projection, "trainer": trainer}
    best: dict[str, dict[str, Any]] = {
        name: {"score": -1.0, "state": None, "epoch": 0} for name in nets_by_name
    }
    history: list[dict[str, Any]] = []
    since_best, first_epoch, seconds_before = 0, 1, 0.0
    if resume:
        if out is None:
            raise ValueError("resume needs the output_dir that holds the checkpoint")
        state = read_checkpoint(out)
        _check_resumable(state, identity, out)
        for name, net in nets_by_name.items():
            net.load_state_dict(state[name])
        for holder, saved in zip(optimisers + schedulers, state["optimisers"], strict=True):
            holder.load_state_dict(saved)
        torch.set_rng_state(state["torch_rng"])
        shuffle.bit_generator.state = state["shuffle_rng"]
        best, history = state["best"], state["history"]
        since_best, first_epoch = state["since_best"], state["epoch"] + 1
        seconds_before = state["seconds"]

    # --- the loop: shuffle, step both networks, score on dev, keep the best of each
    train_inputs, dev_inputs = inputs["train"], inputs["dev"]
    forwards = {"projection": forward_projection, "trainer": forward_trainer}
    thresholds = np.full(len(labels), 0.5, dtype=np.float32) if multi else None
    with _progress(progress) as bars:
        for epoch in range(first_epoch, config.epochs + 1):
            if since_best >= config.patience:
                break
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
            scores = {
                name: dev_score(
                    decide(predict_logits(net, dev_inputs, forwards[name]), thresholds),
                    dev_inputs,
                )
                for name, net in nets_by_name.items()
            }
            history.append(
                {
                    "epoch": epoch,
                    "loss": total_loss / steps_per_epoch,
                    **{f"dev_{name}": score for name, score in scores.items()},
                }
            )
            bars.update(task, dev=f"{scores['projection']:.4f} (trainer {scores['trainer']:.4f})")
            for name, net in nets_by_name.items():
                if scores[name] > best[name]["score"]:
                    best[name] = {
                        "score": scores[name],
                        "state": copy.deepcopy(net.state_dict()),
                        "epoch": epoch,
                    }
            since_best = 0 if best["projection"]["epoch"] == epoch else since_best + 1
            if out is not None:
                _save_checkpoint(
                    out,
                    {
                        "format": CHECKPOINT_FORMAT,
                        **identity,
                        "run": run or {},
                        "epoch": epoch,
                        "since_best": since_best,
                        "history": history,
                        "best": best,
                        **{name: net.state_dict() for name, net in nets_by_name.items()},
                        "optimisers": [h.state_dict() for h in optimisers + schedulers],
                        "torch_rng": torch.get_rng_state(),
                        "shuffle_rng": shuffle.bit_generator.state,
                        "seconds": seconds_before + time.perf_counter() - started,
                    },
                )
            if on_epoch is not None:
                on_epoch(history[-1])
    for name, net in nets_by_name.items():
        net.load_state_dict(best[name]["state"])
        net.eval()

    # --- the on-device form: int8 weights, scored as they will run
    tensors = nets.export_projection_net(projection)
    quantized = nets.load_quantized(copy.deepcopy(projection), tensors)
    logits = {
        (net_name, split): predict_logits(net, split_inputs, forwards[net_name.split("_")[0]])
        for net_name, net in (
            ("projection", quantized),
            ("projection_float", projection),
            ("trainer", trainer),
        )
        for split, split_inputs in inputs.items()
        if split != "train"
    }
    header = model_header(labels, projector, projection, config)
    net_thresholds: dict[str, np.ndarray | None] = {}
    for net_name in ("projection", "projection_float", "trainer"):
        net_thresholds[net_name] = (
            tune_thresholds(logits[net_name, "dev"], inputs["dev"].targets) if multi else None
        )
    if multi:
        header["thresholds"] = [float(t) for t in net_thresholds["projection"]]
    metrics: dict[str, Any] = {
        "corpus": corpus or train_data.source,
        "labels": labels,
        "multi_label": multi,
        "config": {"train": config.to_dict(), "features": features.to_dict()},
        "projection": {},
        "projection_float": {},
        "trainer": {},
        "best_epoch": {name: best[name]["epoch"] for name in best},
        "history": history,
    }
    for (net_name, split), split_logits in logits.items():
        metrics[net_name][split] = _scores(
            labels, decide(split_logits, net_thresholds[net_name]), splits[split].labels, multi
        )
    metrics["train_seconds"] = round(seconds_before + time.perf_counter() - started, 2)

    if out is not None:
        from textproj import model_file

        metrics["model_bytes"] = model_file.write_model(out / MODEL_NAME, header, tensors)
        save_trainer(trainer, out, labels, config, features, net_thresholds["trainer"])
        metrics["trainer_bytes"] = (out / TRAINER_WEIGHTS).stat().st_size
        _write_json_atomic(out / METRICS_NAME, metrics)
        (out / CHECKPOINT_NAME).unlink(missing_ok=True)
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
    thresholds: np.ndarray | None = None,
) -> None:
    """The trainer as plain arrays (trainer.npz) plus a JSON header: nothing executes on load."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {name: t.detach().cpu().numpy() for name, t in trainer.state_dict().items()}
    tmp = directory / (TRAINER_WEIGHTS + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(directory / TRAINER_WEIGHTS)
    _write_json_atomic(
        directory / TRAINER_HEADER,
        {
            "labels": labels,
            "train_config": config.to_dict(),
            "features": features.to_dict(),
            "thresholds": None if thresholds is None else [float(t) for t in thresholds],
        },
    )
