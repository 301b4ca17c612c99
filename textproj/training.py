"""Joint training of the trainer and the projection network, then export of the on-device model.

The loop has nanoGPT's shape, in four parts that read top to bottom:

1. ``prepare``: check the data, carve a stratified dev split, fix the labels, and compute every
   split's network inputs once (``textproj.inputs``);
2. ``fit``: shuffle, step both networks on the joint loss (``textproj.objective``), score dev,
   keep each network's best epoch, stop early; progress and checkpoints are callbacks;
3. ``evaluate``: the projection network as it will run on a device (int8) and the trainer,
   on dev and test, with multi-label thresholds tuned on dev;
4. ``save``: model.tpn, the trainer and metrics.json, swapped into the output directory as one
   unit (``textproj.fsio``).

``JointStep`` is the one optimisation step; the spaCy learner uses it too.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textproj import checkpoint, fsio, inputs, nets, trainer_model
from textproj.config import FeatureConfig, TrainConfig
from textproj.data import Dataset
from textproj.decisions import DEFAULT_THRESHOLD, decide, dev_score, tune_thresholds
from textproj.errors import ConfigError
from textproj.inputs import SplitInputs, forward_projection, forward_trainer, predict_logits
from textproj.layout import METRICS_NAME, MODEL_NAME
from textproj.metrics import classification_scores, multilabel_scores
from textproj.objective import distillation_loss, joint_loss
from textproj.projector import Projector
from textproj.transfer import augment

FORWARDS = {"projection": forward_projection, "trainer": forward_trainer}


@dataclass
class TrainResult:
    """What :func:`train` produced: the networks (in eval mode), their projector and labels, the
    scores, the on-device header and tensors, and where they were written."""

    projection_net: torch.nn.Module
    trainer_net: torch.nn.Module
    projector: Projector
    labels: list[str]
    metrics: dict[str, Any]
    header: dict[str, Any]
    tensors: dict[str, np.ndarray]
    output_dir: Path | None

    @property
    def classifier(self) -> Any:
        """The on-device classifier of this run (``textproj.runtime.Classifier``), in memory."""
        from textproj import model_file
        from textproj.runtime import load_bytes

        return load_bytes(model_file.encode_model(self.header, self.tensors))


@dataclass
class Callbacks:
    """Hooks the caller gives the loop: progress display, per-epoch reports, checkpoints."""

    on_prepare: inputs.Progress | None = None  # (texts featurised, texts in all)
    on_epoch_start: Callable[[int, int], None] | None = None  # (epoch, steps in the epoch)
    on_step: Callable[[int, float], None] | None = None  # (step in the epoch, mean loss so far)
    on_epoch: Callable[[dict[str, Any]], None] | None = None  # the epoch's history row
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None  # state a resume needs


# --- 1. prepare ---------------------------------------------------------------------------------


def split_off_dev(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A deterministic dev split of ``round(fraction * len(data))`` texts carved from ``data``,
    stratified by label (by label set for multi-label data): each label gives its share, largest
    remainders first, and keeps at least one text in train."""
    rng = np.random.default_rng(seed)
    keys = [label if isinstance(label, str) else "|".join(sorted(label)) for label in data.labels]
    by_label: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_label.setdefault(key, []).append(i)
    names = sorted(by_label)
    sizes = np.array([len(by_label[name]) for name in names])
    share = fraction * sizes
    quota = np.minimum(np.floor(share).astype(int), sizes - 1)
    spare = max(1, round(fraction * len(data))) - quota.sum()
    for j in np.argsort(-(share - quota), kind="stable"):
        if spare <= 0:
            break
        if quota[j] < sizes[j] - 1:
            quota[j] += 1
            spare -= 1
    dev_set: set[int] = set()
    for name, n_dev in zip(names, quota, strict=True):
        dev_set.update(int(i) for i in rng.permutation(by_label[name])[:n_dev])
    train_idx = [i for i in range(len(data)) if i not in dev_set]

    def take(index: Sequence[int], part: str) -> Dataset:
        return Dataset(
            [data.texts[i] for i in index], [data.labels[i] for i in index], f"{data.source}:{part}"
        )

    return take(train_idx, "train"), take(sorted(dev_set), "dev")


def label_set(data: Dataset, multi_label: bool) -> list[str]:
    """The sorted labels of a training set, refused when it cannot train a classifier."""
    sets = data.labels if multi_label else [[label] for label in data.labels]
    labels = sorted({label for labels in sets for label in labels})
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


@dataclass
class Prepared:
    """The checked splits, the labels and every split's network inputs."""

    splits: dict[str, Dataset]
    labels: list[str]
    projector: Projector
    inputs: dict[str, SplitInputs]  # "train", "dev", maybe "test", and "transfer" if any
    fingerprint: str


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
    (``unlabeled`` plus ``config.augment_copies`` augmented copies of each training text) get
    inputs of their own, without targets."""
    if len(train_data) < 2:
        raise ConfigError(
            f"{train_data.source}: {len(train_data)} training example(s); at least 2 are needed"
        )
    if dev_data is None:
        train_data, dev_data = split_off_dev(train_data, config.dev_fraction, config.seed)
    labels = label_set(train_data, config.multi_label)
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
    transfer_texts += augment(train_data.texts, config.augment_copies, config.seed)
    fingerprint = checkpoint.data_fingerprint(splits, transfer_texts)
    if transfer_texts:
        no_targets = np.full(len(transfer_texts), -1, dtype=np.int64)
        prepared["transfer"] = inputs.prepare_inputs(
            transfer_texts, no_targets, projector, config, on_progress
        )
    return Prepared(splits, labels, projector, prepared, fingerprint)


# --- 2. fit -------------------------------------------------------------------------------------


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
    return projection, trainer_model.build_trainer(config, n_labels)


def make_optimiser(
    projection: torch.nn.Module, trainer: torch.nn.Module, config: TrainConfig
) -> torch.optim.Optimizer:
    """One AdamW over both networks: the trainer at its own rate, its hashed embedding table
    without weight decay (its gradient is dense, so memory does not grow with the texts)."""
    table = trainer.embedding.weight
    trainer_lr = config.trainer_learning_rate or config.learning_rate
    groups = [
        {"params": [table], "lr": trainer_lr, "weight_decay": 0.0},
        {"params": [p for p in trainer.parameters() if p is not table], "lr": trainer_lr},
        {"params": list(projection.parameters()), "lr": config.learning_rate},
    ]
    for group in groups:
        group["base_lr"] = group["lr"]
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay, fused=True)


class JointStep:
    """Both networks, their optimiser and their own random stream: one call, one step.

    The random stream (dropout) is private: stepping never changes torch's global generator,
    so a caller's own seeding is left alone and a run is reproducible wherever it is called.
    """

    def __init__(self, config: TrainConfig, n_bits: int, n_labels: int) -> None:
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.projection, self.trainer = build_networks(config, n_bits, n_labels)
            self.rng_state = torch.get_rng_state()
        self.optimiser = make_optimiser(self.projection, self.trainer, config)

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
        group at ``lr_scale`` times its base rate and clear the gradients."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            loss = joint_loss(
                forward_trainer(self.trainer, batch, index),
                forward_projection(self.projection, batch, index),
                torch.from_numpy(batch.targets[index]),
                self.config,
            )
            if transfer is not None and self.config.lambda_transfer > 0:
                split, rows = transfer
                with torch.no_grad():
                    teacher = forward_trainer(self.trainer, split, rows)
                student = forward_projection(self.projection, split, rows)
                loss = loss + self.config.lambda_transfer * distillation_loss(
                    teacher, student, self.config
                )
            loss.backward()
            self.rng_state = torch.get_rng_state()
        if apply:
            self.apply(lr_scale)
        return float(loss.item())

    def apply(self, lr_scale: float = 1.0) -> None:
        """Step on the accumulated gradients at ``lr_scale`` times each base rate, then clear."""
        for group in self.optimiser.param_groups:
            group["lr"] = group["base_lr"] * lr_scale
        self.optimiser.step()
        self.optimiser.zero_grad(set_to_none=True)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"projection": self.projection, "trainer": self.trainer}

    def state_dict(self) -> dict[str, Any]:
        return {
            **{name: net.state_dict() for name, net in self.networks().items()},
            "optimiser": self.optimiser.state_dict(),
            "torch_rng": self.rng_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        self.optimiser.load_state_dict(state["optimiser"])
        self.rng_state = state["torch_rng"]


def learning_rate_scale(step: int, total_steps: int) -> float:
    """The schedule: linear decay from the base rate to zero over the run's steps."""
    return max(0.0, 1.0 - step / max(1, total_steps))


def score_networks(
    step: JointStep, split: SplitInputs, thresholds: np.ndarray | None
) -> dict[str, float]:
    """Each network's early-stopping score on a split."""
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
    order) for the distillation term."""
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
        if callbacks.on_epoch_start:
            callbacks.on_epoch_start(state.epoch, steps_per_epoch)
        order = shuffle.permutation(len(train_split))
        transfer_order = shuffle.permutation(len(transfer_split)) if transfer_split else None
        total_loss = 0.0
        for i, lo in enumerate(range(0, len(order), config.batch_size)):
            done = (state.epoch - 1) * steps_per_epoch + i
            transfer = None
            if transfer_order is not None:
                rows = np.arange(lo, lo + config.batch_size)
                transfer = (transfer_split, transfer_order.take(rows, mode="wrap"))
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
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any], np.ndarray | None]:
    """Scores of the int8 on-device network, its float form and the trainer on dev and test.

    Returns (scores by network and split, on-device tensors, model header, trainer thresholds).
    """
    trainer_model.round_for_storage(step.trainer)
    tensors = nets.export_projection_net(step.projection)
    quantized = nets.load_quantized(copy.deepcopy(step.projection), tensors)
    header = model_header(prep.labels, prep.projector, step.projection, config)
    networks = {
        "projection": (quantized, forward_projection),
        "projection_float": (step.projection, forward_projection),
        "trainer": (step.trainer, forward_trainer),
    }
    scores: dict[str, Any] = {name: {} for name in networks}
    trainer_thresholds = None
    for name, (net, forward) in networks.items():
        logits = {
            split: predict_logits(net, prep.inputs[split], forward)
            for split in prep.splits
            if split != "train"
        }
        thresholds = None
        if config.multi_label:
            thresholds = tune_thresholds(logits["dev"], prep.inputs["dev"].targets)
            if name == "projection":
                header["thresholds"] = [float(t) for t in thresholds]
            if name == "trainer":
                trainer_thresholds = thresholds
        for split, split_logits in logits.items():
            scores[name][split] = _scores(
                prep.labels,
                decide(split_logits, thresholds),
                prep.splits[split].labels,
                config.multi_label,
            )
    return scores, tensors, header, trainer_thresholds


# --- 4. save ------------------------------------------------------------------------------------


def save_run(
    out: Path,
    header: dict[str, Any],
    tensors: dict[str, np.ndarray],
    step: JointStep,
    prep: Prepared,
    features: FeatureConfig,
    trainer_thresholds: np.ndarray | None,
    metrics: dict[str, Any],
) -> None:
    """Write model.tpn, the trainer and metrics.json into a staging directory, then swap it in
    for ``out`` as one unit (the old directory, checkpoint included, goes with the swap)."""
    from textproj import model_file

    staging = fsio.staging_directory(out)
    try:
        metrics["model_bytes"] = model_file.write_model(staging / MODEL_NAME, header, tensors)
        metrics["trainer_bytes"] = trainer_model.save_trainer(
            step.trainer, staging, prep.labels, step.config, features, trainer_thresholds
        )
        fsio.write_json(staging / METRICS_NAME, metrics)
        fsio.replace_directory(staging, out)
    except BaseException:
        fsio.remove_stale_staging(out)
        raise


def check_output_dir(out: Path) -> None:
    """Refuse an output path that is a file, before any work starts."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {out}: is a file, not a directory")


def train(
    train_data: Dataset | Sequence[str],
    dev_data: Dataset | Sequence | None = None,
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
    callbacks: Callbacks | None = None,
    checkpoint_seconds: float = 0.0,
    unlabeled: Sequence[str] = (),
) -> TrainResult:
    """Train both networks jointly; write model.tpn, the trainer and metrics.json to ``output_dir``.

    ``train_data`` is a :class:`Dataset`, or texts with their labels as ``dev_data``
    (``train(texts, labels)``, scikit-learn style). With no dev split one is carved from train,
    stratified by label (``config.dev_fraction``). The projection network is scored in its int8
    on-device form. ``on_epoch`` gets each epoch's history row; ``callbacks`` hook progress and
    checkpoints. With an ``output_dir``, a checkpoint is kept there (at the end of an epoch once
    ``checkpoint_seconds`` have passed since the last) and ``resume=True`` continues from it,
    giving the model an uninterrupted run gives. ``run`` is stored in the checkpoint (the CLI
    keeps its data sources there). ``unlabeled`` texts (semi-supervised training) join the
    distillation term only, labelled by the trainer's soft outputs (``textproj.transfer``).
    """
    if not isinstance(train_data, Dataset):
        train_data, dev_data = Dataset(list(train_data), list(dev_data or []), "texts"), None
    config = config or TrainConfig()
    features = features or FeatureConfig()
    callbacks = callbacks or Callbacks()
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        check_output_dir(out)
        fsio.remove_stale_staging(out)
    if on_epoch is not None:
        callbacks = dataclasses.replace(callbacks, on_epoch=on_epoch)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(
            train_data, dev_data, test_data, config, features, out, corpus, progress,
            resume, run, callbacks, checkpoint_seconds, unlabeled,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _train(
    train_data: Dataset,
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
        prep = prepare(
            train_data, dev_data, test_data, config, features, hooks.on_prepare, unlabeled
        )
        prepared_at = time.perf_counter()
        identity = {
            "config": config.to_dict(),
            "features": features.to_dict(),
            "fingerprint": prep.fingerprint,
        }
        step = JointStep(config, prep.projector.n_bits, len(prep.labels))
        if saved is not None:
            checkpoint.check_resumable(saved, identity, out)
            step.load_state_dict(saved)
            state = FitState(**{f.name: saved[f.name] for f in dataclasses.fields(FitState)})
            resumed_seconds = saved["wall_seconds"]
        if out is not None:
            hooks.on_checkpoint = checkpoint.writer(
                out,
                {**identity, "run": run or {}},
                checkpoint_seconds,
                lambda: time.perf_counter() - started + resumed_seconds,
            )
        fit_seconds_before = state.seconds
        state = fit(
            step, prep.inputs["train"], prep.inputs["dev"], state, hooks,
            prep.inputs.get("transfer"),
        )  # fmt: skip
    fitted_at = time.perf_counter()
    scores, tensors, header, trainer_thresholds = evaluate(step, prep, config)
    metrics: dict[str, Any] = {
        "corpus": corpus or prep.splits["train"].source,
        "labels": prep.labels,
        "multi_label": config.multi_label,
        "config": {"train": config.to_dict(), "features": features.to_dict()},
        **scores,
        "best_epoch": {name: state.best[name]["epoch"] for name in state.best},
        "history": state.history,
        "transfer_texts": len(prep.inputs["transfer"]) if "transfer" in prep.inputs else 0,
        "train_seconds": round(time.perf_counter() - started + resumed_seconds, 2),
        "seconds": {  # of this process (a resumed run: since the resume)
            "prepare": round(prepared_at - started, 2),
            "fit": round(state.seconds - fit_seconds_before, 2),
            "evaluate": round(time.perf_counter() - fitted_at, 2),
        },
    }
    if out is not None:
        save_run(out, header, tensors, step, prep, features, trainer_thresholds, metrics)
    return TrainResult(
        step.projection, step.trainer, prep.projector, prep.labels, metrics, header, tensors, out
    )
