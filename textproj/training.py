"""Joint training of the trainer and the projection network, then export of the on-device model.

The loop has nanoGPT's shape, in four parts that read top to bottom:

1. ``prepare``: check the data, carve a stratified dev split, fix the labels, and compute every
   split's network inputs once (``textproj.inputs``);
2. ``fit``: shuffle, step both networks on the joint loss (``textproj.objective``), score dev,
   keep each network's best epoch, stop early; progress and checkpoints are callbacks;
3. ``evaluate``: the projection network as it will run on a device (int4 or int8) and the trainer,
   on dev and test, with multi-label thresholds tuned on dev;
4. ``save``: model.tpn, the trainer and metrics.json, swapped into the output directory as one
   unit (``textproj.fsio``).

``JointStep`` is the one optimisation step; the spaCy learner uses it too.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textproj import checkpoint, distributed, ensemble, fsio, inputs, nets, netspec, trainer_model
from textproj.config import LONG_TEXTS_WARN_SHARE, FeatureConfig, TrainConfig
from textproj.data import (
    DEFAULT_COLUMNS,
    NO_SUCH_FILE,
    Dataset,
    dataset_of,
    lone_surrogate,
    read_dataset,
)
from textproj.decisions import DEFAULT_THRESHOLD, decide, dev_score, tune_thresholds
from textproj.errors import ConfigError, DataError
from textproj.inputs import (
    SplitInputs,
    forward_projection,
    forward_trainer,
    predict_logits,
    projection_inputs,
    token_chunks,
)
from textproj.layout import CHECKPOINT_EVERY_SECONDS, METRICS_NAME, MODEL_NAME
from textproj.metrics import classification_scores, multilabel_scores
from textproj.objective import distillation_loss, joint_loss
from textproj.optimiser import AdamW
from textproj.projector import Projector
from textproj.rundir import check_output_dir
from textproj.transfer import augment, read_unlabeled

FORWARDS = {"projection": forward_projection, "trainer": forward_trainer}


@contextlib.contextmanager
def reproducible_torch(threads: int) -> Iterator[None]:
    """torch on ``threads`` threads with deterministic algorithms, restored afterwards.

    With two threads and torch's defaults, two banking77 runs of one seed gave different model
    bytes; with deterministic algorithms they are byte-identical, at the same speed. This
    avoids two costs of ``torch.use_deterministic_algorithms``: it imports torch's compiler
    stack to set a flag there (0.9 s of start-up; nothing here is compiled), and it makes torch
    fill every new tensor with NaN (a third of a banking77 step), while every tensor here is
    written before it is read.
    """
    previous = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch._C._get_deterministic_fill_uninitialized_memory(),
    )
    torch.set_num_threads(threads)
    torch._C._set_deterministic_algorithms(True)
    torch._C._set_deterministic_fill_uninitialized_memory(False)
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch._C._set_deterministic_algorithms(previous[1])
        torch._C._set_deterministic_fill_uninitialized_memory(previous[2])


@dataclass
class TrainResult:
    """What :func:`train` produced: the networks (in eval mode), their projector and labels, the
    scores, the on-device header and tensors (with the names of those stored as int4), and where
    they were written."""

    projection_net: torch.nn.Module
    trainer_net: torch.nn.Module
    projector: Projector
    labels: list[str]
    metrics: dict[str, Any]
    header: dict[str, Any]
    tensors: dict[str, np.ndarray]
    output_dir: Path | None

    @property
    def int4(self) -> frozenset[str]:
        """The tensors model.tpn stores as int4 (held in ``tensors`` as int8); none on the ranks
        of a data-parallel run that do not write the model."""
        if not self.tensors:
            return frozenset()
        return netspec.int4_tensors(self.tensors, self.header["train_config"]["weight_bits"])

    def model_bytes(self) -> bytes:
        """This run's ``model.tpn`` bytes (what ``output_dir`` holds)."""
        from textproj import model_file

        return model_file.encode_model(self.header, self.tensors, int4=self.int4)

    @property
    def classifier(self) -> Any:
        """The on-device classifier of this run (``textproj.runtime.Classifier``), in memory."""
        from textproj.runtime import load_bytes

        return load_bytes(self.model_bytes())


@dataclass
class Callbacks:
    """Hooks the caller gives the loop: progress display, per-epoch reports, checkpoints."""

    on_prepare: inputs.Progress | None = None  # (texts featurised, texts in all)
    on_epoch_start: Callable[[int, int], None] | None = None  # (epoch, steps in the epoch)
    on_step: Callable[[int, float], None] | None = None  # (step in the epoch, mean loss so far)
    on_epoch: Callable[[dict[str, Any]], None] | None = None  # the epoch's history row
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None  # state a resume needs


# --- 1. prepare ---------------------------------------------------------------------------------


def label_key(label: Any) -> str:
    """The stratum of a label for the dev split: the label, or a multi-label set's labels."""
    return label if isinstance(label, str) else "|".join(sorted(label))


def dev_positions(
    codes: np.ndarray, names: Sequence[str], fraction: float, seed: int
) -> np.ndarray:
    """Sorted positions of a deterministic dev split of ``round(fraction * len(codes))`` items,
    stratified by key (item ``i``'s key is ``names[codes[i]]``): each key, in sorted order, gives
    its share, largest remainders first, and keeps at least one item in train. Memory is a few
    integer arrays of ``len(codes)`` (the streaming input calls it on millions of items)."""
    rng = np.random.default_rng(seed)
    order = sorted(range(len(names)), key=lambda j: names[j])
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    codes = rank[codes]
    sizes = np.bincount(codes, minlength=len(names))
    share = fraction * sizes
    quota = np.minimum(np.floor(share).astype(int), sizes - 1)
    spare = max(1, round(fraction * len(codes))) - quota.sum()
    for j in np.argsort(-(share - quota), kind="stable"):
        if spare <= 0:
            break
        if quota[j] < sizes[j] - 1:
            quota[j] += 1
            spare -= 1
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(sizes)[:-1])
    chosen = [rng.permutation(index)[:n_dev] for index, n_dev in zip(members, quota, strict=True)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def split_off_dev(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """``data`` split into (train, dev) at :func:`dev_positions`, both in ``data``'s order."""
    index: dict[str, int] = {}
    codes = [index.setdefault(label_key(label), len(index)) for label in data.labels]
    dev = dev_positions(np.array(codes, dtype=np.int64), list(index), fraction, seed)
    is_dev = np.zeros(len(data), dtype=bool)
    is_dev[dev] = True

    def take(index: np.ndarray, part: str) -> Dataset:
        return Dataset(
            [data.texts[i] for i in index], [data.labels[i] for i in index], f"{data.source}:{part}"
        )

    return take(np.flatnonzero(~is_dev), "train"), take(dev, "dev")


def refuse_empty_dev(source: str, n_train: int, n_dev: int) -> None:
    """A carved dev split must hold a text: with none, early stopping would watch nothing."""
    if n_dev == 0:
        raise ConfigError(
            f"{source}: {n_train} training examples leave none for a dev split (every label "
            "keeps one for training); give a dev set (dev_data) or more examples"
        )


def label_set(data: Dataset, multi_label: bool) -> list[str]:
    """The sorted labels of a training set, refused when it cannot train a classifier."""
    sets = data.labels if multi_label else [[label] for label in data.labels]
    labels = sorted({label for labels in sets for label in labels})
    for label in labels:
        if problem := lone_surrogate(label, f"label {label!r}"):
            raise ConfigError(f"{data.source}: {problem}; a model file could not store it")
    if len(labels) < 2:
        found = f"only the label {labels[0]!r}" if labels else "no labels"
        raise ConfigError(f"{data.source}: training data has {found}; a classifier needs two")
    return labels


def warn_unseen_labels(data: Dataset, labels: list[str], multi_label: bool) -> list[str]:
    """Labels of an evaluation split that never occur in training (they count as errors)."""
    sets = data.labels if multi_label else [[label] for label in data.labels]
    unseen = sorted({label for labels in sets for label in labels} - set(labels))
    if unseen:
        shown = ", ".join(repr(label) for label in unseen[:5])
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        warnings.warn(
            f"{data.source}: {len(unseen)} label(s) never seen in training: {shown}{more}",
            stacklevel=3,
        )
    return unseen


def warn_long_texts(source: str, capped: int | None, n_texts: int, max_tokens: int) -> None:
    """Warn when LONG_TEXTS_WARN_SHARE or more of the training texts reach the token cap."""
    if capped and capped >= LONG_TEXTS_WARN_SHARE * n_texts:
        warnings.warn(
            f"{source}: {capped:,} of {n_texts:,} training texts ({capped / n_texts:.0%}) reach "
            f"the {max_tokens}-token cap; no token past it is read "
            "(FeatureConfig.max_tokens)",
            stacklevel=3,
        )


@dataclass
class Prepared:
    """The checked splits, the labels and every split's network inputs."""

    splits: dict[str, Dataset]
    labels: list[str]
    projector: Projector
    inputs: dict[str, SplitInputs]  # "train", "dev", maybe "test", and "transfer" if any
    fingerprint: str
    release: Callable[[], None] | None = None  # streamed inputs: hand mapped pages back


def prepare(
    train_data: Dataset,
    dev_data: Dataset | None,
    test_data: Dataset | None,
    config: TrainConfig,
    features: FeatureConfig,
    on_progress: inputs.Progress | None = None,
    unlabeled: Sequence[str] = (),
) -> Prepared:
    """Check the data and compute the networks' inputs of each split once; the transfer texts
    (``unlabeled`` plus ``config.copies_for`` augmented copies of each training text) get
    inputs of their own, without targets."""
    if len(train_data) < 2:
        raise ConfigError(
            f"{train_data.source}: {len(train_data)} training example(s); at least 2 are needed"
        )
    if dev_data is None:
        source = train_data.source
        train_data, dev_data = split_off_dev(train_data, config.dev_fraction, config.seed)
        refuse_empty_dev(source, len(train_data), len(dev_data))
    labels = label_set(train_data, config.multi_label)
    netspec.refuse_unstorable_shapes(config, len(labels))
    splits = {"train": train_data, "dev": dev_data}
    if test_data is not None:
        splits["test"] = test_data
    for name in ("dev", "test"):
        if name in splits:
            warn_unseen_labels(splits[name], labels, config.multi_label)
    projector = Projector(*config.projection_shape, features=features, seed=config.seed)
    label_index = {label: i for i, label in enumerate(labels)}
    prepared = {}
    for name, data in splits.items():
        targets = inputs.encode_targets(data.labels, label_index, config.multi_label)
        progress = on_progress if name == "train" else None
        prepared[name] = inputs.prepare_inputs(data.texts, targets, projector, config, progress)
    transfer_texts = list(unlabeled)
    copies = config.copies_for(len(train_data))
    transfer_texts += augment(train_data.texts, copies, config.seed)
    fingerprint = checkpoint.data_fingerprint(splits, transfer_texts)
    if transfer_texts:
        no_targets = np.full(len(transfer_texts), -1, dtype=np.int64)
        prepared[inputs.TRANSFER] = inputs.prepare_inputs(
            transfer_texts, no_targets, projector, config, on_progress
        )
    return Prepared(splits, labels, projector, prepared, fingerprint)


# --- 2. fit -------------------------------------------------------------------------------------


def build_networks(
    config: TrainConfig, n_bits: int, n_labels: int
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Fresh (projection network, trainer network) for ``config``; its ``max_pool`` and
    ``mean_pool`` as :func:`train` resolves them from the training texts (None builds none)."""
    if config.design == "text":
        projection: torch.nn.Module = nets.TextProjectionNet(
            n_bits, config.hidden, n_labels, config.dropout, config.weight_bits
        )
    else:
        projection = nets.TokenProjectionNet(
            n_bits, config.bottleneck, config.filters, config.windows, n_labels, config.dropout,
            config.token_dropout, config.weight_bits, bool(config.max_pool), bool(config.mean_pool),
        )  # fmt: skip
    return projection, trainer_model.build_trainer(config, n_labels)


TRAINER_GROUPS = 2  # make_optimiser's first groups: the trainer's table, then its other weights


def make_optimiser(
    projection: torch.nn.Module, trainer: torch.nn.Module, config: TrainConfig
) -> AdamW:
    """One AdamW over both networks: the trainer at its own rate, its hashed embedding table
    without weight decay (its gradient is dense, so memory does not grow with the texts)."""
    table = trainer.embedding.weight
    trainer_lr = config.trainer_learning_rate or config.learning_rate
    groups = [
        {
            "params": [table],
            "lr": config.trainer_table_learning_rate or trainer_lr,
            "weight_decay": 0.0,
        },
        {"params": [p for p in trainer.parameters() if p is not table], "lr": trainer_lr},
        {"params": list(projection.parameters()), "lr": config.learning_rate},
    ]
    for group in groups:
        group["base_lr"] = group["lr"]
    return AdamW(groups, weight_decay=config.weight_decay)


class JointStep:
    """Both networks, their optimiser and their own random stream: one call, one step.

    The random stream (dropout) is private: stepping never changes torch's global generator,
    so a caller's own seeding is left alone and a run is reproducible wherever it is called.
    """

    def __init__(
        self, config: TrainConfig, n_bits: int, n_labels: int, consistency: float = 0.0
    ) -> None:
        self.config = config
        self.consistency = consistency  # R-Drop's α (config.consistency_for the training set)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.projection, self.trainer = build_networks(config, n_bits, n_labels)
            self.rng_state = torch.get_rng_state()
        self.optimiser = make_optimiser(self.projection, self.trainer, config)
        self.parallel: distributed.DataParallel | None = None  # set by distributed.attach
        self.trainer_frozen = False  # past TrainConfig.trainer_share: teaches, takes no steps

    def __call__(
        self,
        batch: SplitInputs,
        index: np.ndarray,
        lr_scale: float = 1.0,
        apply: bool = True,
        transfer: tuple[SplitInputs, np.ndarray] | None = None,
    ) -> float:
        """Add the joint loss's gradients for items ``index`` of ``batch`` (and the weighted
        distillation term on transfer items, if given); with ``apply``, step every parameter
        group at ``lr_scale`` times its base rate and clear the gradients. In a data-parallel
        run ``index`` (and the transfer items) are the global batch's; this rank steps on its
        slice. Long texts are taken in runs of at most ``inputs.STEP_TOKENS`` tokens, each run's
        loss weighted by its share of the batch, so the gradients are the whole batch's."""
        share, loss = 1.0, 0.0
        if self.parallel is not None:
            index, share = self.parallel.shard(index)
            if transfer is not None:
                transfer = (transfer[0], self.parallel.shard(transfer[1])[0])
        parts = [
            (batch, rows, len(rows) / len(index), False) for rows in token_chunks(batch, index)
        ]
        if parts and transfer is not None and self.config.lambda_transfer > 0:
            split, items = transfer
            parts += [
                (split, rows, len(rows) / len(items), True) for rows in token_chunks(*transfer)
            ]
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            for split, rows, weight, is_transfer in parts:  # weight: the run's share of its batch
                if is_transfer:
                    with torch.no_grad():
                        teacher = forward_trainer(self.trainer, split, rows)
                    student = forward_projection(self.projection, split, rows)
                    part_loss = self.config.lambda_transfer * distillation_loss(
                        teacher, student, self.config
                    )
                else:
                    with torch.set_grad_enabled(not self.trainer_frozen):
                        trainer_logits = forward_trainer(self.trainer, split, rows)
                    arguments = projection_inputs(split, rows)  # shared by both draws
                    draws = [
                        self.projection(*arguments) for _ in range(2 if self.consistency > 0 else 1)
                    ]
                    part_loss = joint_loss(
                        trainer_logits,
                        draws,
                        torch.from_numpy(split.targets[rows]),
                        self.config,
                        self.consistency,
                    )
                part_loss.backward(torch.tensor(share * weight, dtype=part_loss.dtype))
                loss += weight * float(part_loss.item())
            self.rng_state = torch.get_rng_state()
        if apply:
            self.apply(lr_scale)
        return loss

    def apply(self, lr_scale: float = 1.0) -> None:
        """Step on the accumulated gradients at ``lr_scale`` times each base rate (the trainer's
        groups on their own, shorter schedule with ``trainer_share``), then clear."""
        groups = self.optimiser.param_groups
        if self.parallel is not None:
            live = groups[TRAINER_GROUPS:] if self.trainer_frozen else groups
            self.parallel.reduce_gradients(
                [p for group in live for p in group["params"]],
                None if self.trainer_frozen else self.trainer.embedding.weight,
            )
        trainer_scale = max(0.0, 1 - (1 - lr_scale) / self.config.trainer_share)
        for i, group in enumerate(groups):
            group["lr"] = group["base_lr"] * (trainer_scale if i < TRAINER_GROUPS else lr_scale)
        self.optimiser.step()
        self.optimiser.zero_grad()

    def freeze_trainer(self, weights: dict[str, Any]) -> None:
        """Set the trainer to ``weights`` for good: it teaches in eval mode and takes no steps."""
        self.trainer.load_state_dict(weights)
        self.trainer.eval()
        self.trainer_frozen = True

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"projection": self.projection, "trainer": self.trainer}

    def state_dict(self) -> dict[str, Any]:
        return {
            **{name: net.state_dict() for name, net in self.networks().items()},
            "optimiser": self.optimiser.state_dict(),
            "torch_rng": self.rng_state,
            "trainer_frozen": self.trainer_frozen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        self.optimiser.load_state_dict(state["optimiser"])
        self.rng_state = state["torch_rng"]
        if state["trainer_frozen"]:
            self.freeze_trainer(state["trainer"])


def learning_rate_scale(step: int, total_steps: int) -> float:
    """The schedule: linear decay from the base rate to zero over the run's steps."""
    return max(0.0, 1.0 - step / max(1, total_steps))


def score_networks(
    step: JointStep, split: SplitInputs, thresholds: np.ndarray | None
) -> dict[str, float]:
    """Each network's early-stopping score on a split; in a data-parallel run rank 0's, on
    every rank (only rank 0 scores), so early stopping is decided once."""
    if step.parallel is not None:
        names = list(step.networks())
        return step.parallel.from_main(names, lambda: _scores_here(step, split, thresholds))
    return _scores_here(step, split, thresholds)


def _scores_here(
    step: JointStep, split: SplitInputs, thresholds: np.ndarray | None
) -> dict[str, float]:
    return {
        name: dev_score(
            decide(predict_logits(net, split, FORWARDS[name]), thresholds), split.targets
        )
        for name, net in step.networks().items()
    }


@dataclass
class FitState:
    """Everything the loop carries between epochs (and a checkpoint holds)."""

    epoch: int = 0
    since_best: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, dict[str, Any]] = field(default_factory=dict)
    shuffle_rng: dict[str, Any] | None = None
    seconds: float = 0.0


def transfer_items(transfer_order: np.ndarray, lo: int, batch_size: int) -> np.ndarray:
    """The transfer items of the step whose labelled batch starts at item ``lo``: the next
    ``batch_size`` of the shuffled ``transfer_order``, cycling through it, but never more than
    the set holds, so no transfer text comes twice in one step and a batch larger than the set
    costs one pass over it (as the labelled batch is capped by the training set)."""
    rows = np.arange(lo, lo + min(batch_size, len(transfer_order)))
    return transfer_order.take(rows, mode="wrap")


def fit(
    step: JointStep,
    train_split: SplitInputs,
    dev_split: SplitInputs,
    state: FitState,
    callbacks: Callbacks,
    transfer_split: SplitInputs | None = None,
) -> FitState:
    """Epochs of shuffled minibatches until the schedule's last epoch or ``patience`` epochs
    without a better projection network on dev (``TrainConfig.schedule`` stretches both for
    small data); ``state.best`` holds each network's best weights. With
    transfer texts, each step also takes a batch of them (cycling through them in a shuffled
    order, at most the whole set: ``transfer_items``) for the distillation term."""
    config = step.config
    shuffle = np.random.default_rng(config.seed)
    if state.shuffle_rng is not None:
        shuffle.bit_generator.state = state.shuffle_rng
    steps_per_epoch, epochs, patience = config.schedule(len(train_split))
    total_steps = epochs * steps_per_epoch
    thresholds = None
    if config.multi_label:
        thresholds = np.full(dev_split.targets.shape[1], DEFAULT_THRESHOLD, np.float32)
    started = time.perf_counter() - state.seconds
    while state.epoch < epochs and state.since_best < patience:
        state.epoch += 1
        if step.parallel is not None:
            step.parallel.start_epoch(step, state.epoch)
        if callbacks.on_epoch_start:
            callbacks.on_epoch_start(state.epoch, steps_per_epoch)
        order = inputs.epoch_order(shuffle, len(train_split))
        transfer_order = shuffle.permutation(len(transfer_split)) if transfer_split else None
        total_loss = 0.0
        for i, lo in enumerate(range(0, len(order), config.batch_size)):
            done = (state.epoch - 1) * steps_per_epoch + i
            transfer = None
            if transfer_order is not None:
                transfer = (transfer_split, transfer_items(transfer_order, lo, config.batch_size))
            total_loss += step(
                train_split,
                order[lo : lo + config.batch_size],
                learning_rate_scale(done, total_steps),
                transfer=transfer,
            )
            if callbacks.on_step:
                callbacks.on_step(i + 1, total_loss / (i + 1))
        scores = score_networks(step, dev_split, thresholds)
        for name, net in step.networks().items():
            if scores[name] > state.best.get(name, {"score": -1.0})["score"]:
                state.best[name] = {
                    "score": scores[name],
                    "epoch": state.epoch,
                    "state": copy.deepcopy(net.state_dict()),
                }
        improved = state.best["projection"]["epoch"] == state.epoch
        past_share = state.epoch * steps_per_epoch >= config.trainer_share * total_steps
        if past_share and not step.trainer_frozen:
            step.freeze_trainer(state.best["trainer"]["state"])
        state.since_best = 0 if improved else state.since_best + 1
        state.shuffle_rng = shuffle.bit_generator.state
        state.seconds = time.perf_counter() - started
        state.history.append(
            {
                "epoch": state.epoch,
                "loss": total_loss / steps_per_epoch,
                **{f"dev_{name}": score for name, score in scores.items()},
            }
        )
        finished = state.epoch >= epochs or state.since_best >= patience
        if callbacks.on_checkpoint and not finished:
            callbacks.on_checkpoint({**dataclasses.asdict(state), **step.state_dict()})
        if callbacks.on_epoch:
            callbacks.on_epoch(state.history[-1])
    for name, net in step.networks().items():
        net.load_state_dict(state.best[name]["state"])
        net.eval()
    return state


# --- 3. evaluate --------------------------------------------------------------------------------


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


def _scores(labels: list[str], decided: np.ndarray, gold: list, multi: bool) -> dict[str, Any]:
    if multi:
        return multilabel_scores(
            gold, [[labels[j] for j in np.flatnonzero(row)] for row in decided]
        )
    return classification_scores(gold, [labels[i] for i in decided])


def evaluate(
    step: JointStep, prep: Prepared, config: TrainConfig
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray | None]]:
    """Scores of the quantized on-device network, its float form, the trainer and the served
    ensemble of the trainer with the on-device network (``textproj.ensemble``) on dev and test.

    Returns (scores by network and split, on-device tensors, model header, each network's
    multi-label thresholds tuned on dev, None when single-label).
    """
    trainer_model.round_for_storage(step.trainer)
    tensors = nets.export_projection_net(step.projection, config.weight_bits)
    quantized = nets.load_quantized(copy.deepcopy(step.projection), tensors)
    header = model_header(prep.labels, prep.projector, step.projection, config)
    networks = {
        "projection": (quantized, forward_projection),
        "projection_float": (step.projection, forward_projection),
        "trainer": (step.trainer, forward_trainer),
    }
    scored = [split for split in prep.splits if split != "train"]
    logits = {
        name: {split: predict_logits(net, prep.inputs[split], forward) for split in scored}
        for name, (net, forward) in networks.items()
    }
    logits["ensemble"] = {
        split: ensemble.ensemble_logits(
            logits["trainer"][split], logits["projection"][split], config.multi_label
        )
        for split in scored
    }
    scores: dict[str, Any] = {name: {} for name in logits}
    thresholds: dict[str, np.ndarray | None] = {}
    for name, split_logits in logits.items():
        thresholds[name] = None
        if config.multi_label:
            thresholds[name] = tune_thresholds(split_logits["dev"], prep.inputs["dev"].targets)
        for split in scored:
            scores[name][split] = _scores(
                prep.labels,
                decide(split_logits[split], thresholds[name]),
                prep.splits[split].labels,
                config.multi_label,
            )
    if config.multi_label:
        header["thresholds"] = [float(t) for t in thresholds["projection"]]
    return scores, tensors, header, thresholds


# --- 4. save ------------------------------------------------------------------------------------


def save_run(
    out: Path,
    header: dict[str, Any],
    tensors: dict[str, np.ndarray],
    step: JointStep,
    prep: Prepared,
    features: FeatureConfig,
    thresholds: dict[str, np.ndarray | None],
    metrics: dict[str, Any],
    int4: frozenset[str] = frozenset(),
) -> None:
    """Write model.tpn (the ``int4`` tensors as 4-bit), the trainer and metrics.json into a
    staging directory, then swap it in for ``out`` as one unit (:func:`fsio.build_directory`; the
    old directory, checkpoint included, goes with the swap)."""
    from textproj import model_file

    def write(staging: Path) -> None:
        metrics["model_bytes"] = model_file.write_model(
            staging / MODEL_NAME, header, tensors, int4=int4
        )
        metrics["trainer_bytes"] = trainer_model.save_trainer(
            step.trainer, staging, prep.labels, step.config, features,
            thresholds["trainer"], thresholds["ensemble"],
        )  # fmt: skip
        fsio.write_json(staging / METRICS_NAME, metrics)

    fsio.build_directory(out, write)


def _is_split(data: Any) -> bool:
    """Whether ``train_data`` is one split (a Dataset or a file's path), not the texts of
    ``train(texts, labels)``, whose labels then come as ``dev_data``."""
    return isinstance(data, Dataset | str | os.PathLike)


def _refuse_missing_files(train_data: Any, dev_data: Any, test_data: Any, unlabeled: Any) -> None:
    """A DataError for a split (or ``unlabeled``) given as a str that names nothing on disk,
    before any work: most likely texts where a file's path goes (``train("abc", "xyz")``), so
    it says how to give texts. A Path gets the readers' own ``no such file``."""
    dataset = "give a Dataset(texts, labels, source)"
    given = {  # argument -> (its value, how to give texts instead)
        "train_data": (train_data, "give texts and labels as lists: train(texts, labels)"),
        "dev_data": (dev_data, dataset),
        "test_data": (test_data, dataset),
        "unlabeled": (unlabeled, "give the texts as a list: train(..., unlabeled=texts)"),
    }
    if not _is_split(train_data):
        del given["dev_data"]  # the labels of train(texts, labels)
    for name, (data, how) in given.items():
        if isinstance(data, str) and not os.path.exists(data):
            raise DataError(
                f"{data}: {NO_SUCH_FILE} ({name} as a str is read as a file's path; {how})"
            )


def _datasets(
    train_data: Any, dev_data: Any, test_data: Any, multi_label: bool, columns: tuple[str, str]
) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """The splits as Datasets: a file path (str or Path) read by ``columns``, texts paired with
    their labels (``train(texts, labels)``), a Dataset checked by the same rule
    (:func:`~textproj.data.dataset_of`: a label 1 is refused, " pos" trimmed), None as it is."""

    def read(data: Any, name: str) -> Any:
        if isinstance(data, str | os.PathLike):
            text_column, label_column = columns
            return read_dataset(
                data, multi_label=multi_label, text_column=text_column, label_column=label_column
            )
        if isinstance(data, Dataset):
            where = f"train: {name} Dataset {data.source!r}"
            return dataset_of(data.texts, data.labels, multi_label, where, data.source)
        return data

    if _is_split(train_data):
        return (
            read(train_data, "train_data"),
            read(dev_data, "dev_data"),
            read(test_data, "test_data"),
        )
    pairs = dataset_of(train_data, dev_data, multi_label, "train(texts, labels)")
    return pairs, None, read(test_data, "test_data")


def train(
    train_data: Dataset | Sequence[str] | str | Path,
    dev_data: Dataset | Sequence | str | Path | None = None,
    test_data: Dataset | str | Path | None = None,
    *,
    config: TrainConfig | None = None,
    features: FeatureConfig | None = None,
    output_dir: str | Path | None = None,
    corpus: str | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
    force: bool = False,
    run: dict[str, Any] | None = None,
    callbacks: Callbacks | None = None,
    checkpoint_seconds: float = CHECKPOINT_EVERY_SECONDS,
    unlabeled: Sequence[str] | str | Path = (),
    stream_cache: str | Path | None = None,
    columns: tuple[str, str] = DEFAULT_COLUMNS,
) -> TrainResult:
    """Train both networks jointly; write model.tpn, the trainer and metrics.json to ``output_dir``.

    ``train_data`` is a :class:`Dataset` or a data file (a str or Path, read as
    :func:`~textproj.data.read_dataset` reads it; a str naming no file is a DataError saying how
    to give texts), or texts with their labels as ``dev_data``
    (``train(texts, labels)``, scikit-learn style: lists or numpy arrays of str, checked by the
    file readers' rules, :func:`~textproj.data.dataset_of`, as a Dataset given is too);
    ``dev_data`` and ``test_data`` are Datasets or files too. With no dev split one is carved
    from train, stratified by label (``config.dev_fraction``). The projection network is scored
    in its quantized on-device form. ``on_epoch`` gets each epoch's history row; ``callbacks``
    hook progress and checkpoints. With an ``output_dir``, a checkpoint is kept there (at the
    end of an epoch once ``checkpoint_seconds`` have passed since the last: 30 s as the CLI's, 0
    every epoch) and ``resume=True`` continues from it, giving the model an uninterrupted run
    gives. An ``output_dir`` holding another run (its model.tpn, metrics.json or checkpoint) or
    any other files is refused before any work starts unless ``force=True`` (replace it) or, for
    a checkpoint, ``resume``; the current directory, or one holding a data file of the run,
    always. ``run`` is stored in the checkpoint (the CLI keeps its data sources there).
    ``unlabeled`` texts, or a file of them (a str or Path, read by ``transfer.read_unlabeled``;
    a str naming no file is a DataError saying how to give texts), join the distillation term
    only (semi-supervised training), labelled by the trainer's soft outputs
    (``textproj.transfer``).
    With ``stream_cache`` (a cache root directory), the data are file paths, read and
    featurised in chunks into an input cache there (``textproj.streaming``) so memory does not
    grow with the corpus; the model is the one the in-memory run gives. ``columns`` are the
    (text, label) columns every data file is read by.
    """
    config = TrainConfig() if config is None else config
    features = FeatureConfig() if features is None else features
    for name, value, kind in (
        ("config", config, TrainConfig),
        ("features", features, FeatureConfig),
    ):
        if not isinstance(value, kind):
            raise TypeError(
                f"train: {name} is a {type(value).__name__}, not a {kind.__name__}; "
                f"give {kind.__name__}(**{name})"
            )
    _refuse_missing_files(train_data, dev_data, test_data, unlabeled)
    if isinstance(unlabeled, str):
        unlabeled = Path(unlabeled)
    data_files = [
        data
        for data in (train_data, dev_data, test_data, unlabeled)
        if isinstance(data, str | Path)
    ]
    out = Path(output_dir) if output_dir is not None else None
    if out is not None and distributed.is_main():
        check_output_dir(out, force=force, resume=resume, inputs=data_files)
        fsio.remove_stale_staging(out)
    if stream_cache is not None:
        if unlabeled and not isinstance(unlabeled, Path):
            raise ConfigError("a streamed run reads its unlabeled texts from a file: give a Path")
        files = {"train": train_data, "dev": dev_data, "test": test_data}
        files[inputs.TRANSFER] = unlabeled or None
        train_data = {k: Path(v) for k, v in files.items() if v is not None}  # type: ignore
        dev_data = test_data = None
        unlabeled = ()
    else:
        if isinstance(unlabeled, Path):
            unlabeled = read_unlabeled(unlabeled, text_column=columns[0])
        train_data, dev_data, test_data = _datasets(
            train_data, dev_data, test_data, config.multi_label, columns
        )
    callbacks = callbacks or Callbacks()
    progress = progress and distributed.is_main()
    if on_epoch is not None:
        callbacks = dataclasses.replace(callbacks, on_epoch=on_epoch)
    with reproducible_torch(config.threads):
        return _train(
            train_data, dev_data, test_data, config, features, out, corpus, progress,
            resume, run, callbacks, checkpoint_seconds, unlabeled, stream_cache, columns,
        )  # fmt: skip


def _train(
    train_data: Dataset | dict[str, Path],
    dev_data: Dataset | None,
    test_data: Dataset | None,
    config: TrainConfig,
    features: FeatureConfig,
    out: Path | None,
    corpus: str | None,
    progress: bool,
    resume: bool,
    run: dict[str, Any] | None,
    callbacks: Callbacks,
    checkpoint_seconds: float,
    unlabeled: Sequence[str],
    stream_cache: str | Path | None,
    columns: tuple[str, str],
) -> TrainResult:
    from textproj.progress import TrainingProgress

    started = time.perf_counter()
    state = FitState()
    saved, resumed_seconds = None, 0.0
    if resume:
        if out is None:
            raise ConfigError("resume needs the output_dir that holds the checkpoint")
        saved = checkpoint.read(out)
    metric = "dev micro-F1" if config.multi_label else "dev acc"
    with TrainingProgress(progress, callbacks, metric) as hooks:
        if isinstance(train_data, dict):
            from textproj import streaming

            projector = Projector(*config.projection_shape, features=features, seed=config.seed)
            prep = streaming.prepare(
                train_data,
                projector,
                config,
                features,
                Path(stream_cache),
                hooks.on_prepare,
                columns,
                None if saved is None else (  # a resume refuses changed files before featurising
                    lambda found: checkpoint.check_resumable(saved, {"fingerprint": found}, out)
                ),
            )  # fmt: skip
            streaming.release_pages(hooks, prep.release, config.batch_size)
        else:
            prep = prepare(
                train_data, dev_data, test_data, config, features, hooks.on_prepare, unlabeled
            )
        capped = inputs.texts_at_token_cap(prep.inputs["train"], features.max_tokens)
        n_train = len(prep.inputs["train"])
        warn_long_texts(prep.splits["train"].source, capped, n_train, features.max_tokens)
        median = inputs.median_tokens(prep.inputs["train"])
        resolved = {**config.pooling_for(median), "min_steps": config.min_steps_for(median)}
        config = dataclasses.replace(config, **resolved)  # what the model and files hold
        netspec.refuse_unstorable_shapes(config, len(prep.labels))  # its pooling resolved
        prepared_at = time.perf_counter()
        identity = {
            "config": config.to_dict(),
            "features": features.to_dict(),
            "fingerprint": prep.fingerprint,
        }
        streamed_unlabeled = isinstance(train_data, dict) and inputs.TRANSFER in train_data
        consistency = config.consistency_for(
            len(prep.inputs["train"]), bool(unlabeled) or streamed_unlabeled
        )
        step = JointStep(config, prep.projector.n_bits, len(prep.labels), consistency)
        if saved is not None:
            checkpoint.check_resumable(saved, identity, out)
            checkpoint.load_into(step, saved, out)
            state = FitState(**{f.name: saved[f.name] for f in dataclasses.fields(FitState)})
            resumed_seconds = saved["wall_seconds"]
        parallel = distributed.attach(step)
        if out is not None and distributed.is_main():
            hooks.on_checkpoint = checkpoint.writer(
                out,
                {**identity, "run": run or {}},
                checkpoint_seconds,
                lambda: time.perf_counter() - started + resumed_seconds,
            )
        fit_seconds_before = state.seconds
        state = fit(
            step, prep.inputs["train"], prep.inputs["dev"], state, hooks,
            prep.inputs.get(inputs.TRANSFER),
        )  # fmt: skip
    fitted_at = time.perf_counter()
    if parallel is not None and not parallel.is_main:  # rank 0 evaluates and writes
        return TrainResult(
            step.projection, step.trainer, prep.projector, prep.labels, {}, {}, {}, None
        )
    scores, tensors, header, thresholds = evaluate(step, prep, config)
    int4 = netspec.int4_tensors(tensors, config.weight_bits)
    metrics: dict[str, Any] = {
        "corpus": corpus or prep.splits["train"].source,
        "labels": prep.labels,
        "multi_label": config.multi_label,
        "config": {"train": config.to_dict(), "features": features.to_dict()},
        **scores,
        "best_epoch": {name: state.best[name]["epoch"] for name in state.best},
        "history": state.history,
        "transfer_texts": len(prep.inputs.get(inputs.TRANSFER, ())),
        "texts_at_token_cap": capped,
        "consistency": step.consistency,
        "train_seconds": round(time.perf_counter() - started + resumed_seconds, 2),
        "seconds": {  # of this process (a resumed run: since the resume)
            "prepare": round(prepared_at - started, 2),
            "fit": round(state.seconds - fit_seconds_before, 2),
            "evaluate": round(time.perf_counter() - fitted_at, 2),
        },
    }
    if parallel is not None:
        metrics["distributed"] = parallel.report()
    if out is not None:
        save_run(out, header, tensors, step, prep, features, thresholds, metrics, int4)
    return TrainResult(
        step.projection,
        step.trainer,
        prep.projector,
        prep.labels,
        metrics,
        header,
        tensors,
        out,
    )
