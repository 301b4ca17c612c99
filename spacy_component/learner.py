"""Trainable mode of the spaCy component: the torch side, built from ``textproj.training``.

A :class:`Learner` holds the projector, the projection and trainer networks and their optimisers.
spaCy drives it one batch at a time (``update`` accumulates gradients, ``finish_update`` steps),
and it exports the projection network as the int8 ``model.tpn`` bytes that inference runs on.
This module imports torch; the component imports it only when it trains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from textproj import model_file, nets, netspec
from textproj.config import FeatureConfig, TrainConfig
from textproj.inputs import encode_targets, prepare_inputs
from textproj.projector import Projector
from textproj.training import JointStep, model_header, reproducible_torch


class Learner:
    """Both networks of one component, trained jointly on spaCy's batches with the training
    loop's own step (``textproj.training.JointStep``): the same loss, optimiser, parameter
    groups and private random stream as ``textproj train``."""

    def __init__(self, labels: Sequence[str], config: TrainConfig, features: FeatureConfig) -> None:
        """``config`` as the component builds it (``trainer_share`` 1: spaCy sets the steps)."""
        self.labels = list(labels)
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        self.config = config
        self.projector = Projector(*config.projection_shape, features=features, seed=config.seed)
        # spaCy streams the batches, so the set's size is unknown: R-Drop only when asked for
        consistency = config.consistency or 0.0
        self.joint = JointStep(config, self.projector.n_bits, len(self.labels), consistency)

    @property
    def projection(self) -> torch.nn.Module:
        """The projection network being trained."""
        return self.joint.projection

    @property
    def trainer(self) -> torch.nn.Module:
        """The trainer network being trained."""
        return self.joint.trainer

    def accumulate(
        self,
        texts: list[str],
        gold: list[str] | list[tuple[str, ...]],
        known: np.ndarray | None = None,
    ) -> float:
        """Add the joint loss's gradients for one batch (``gold``: a label, or a tuple of labels
        when multi-label); return the loss. ``known`` (multi-label, one bool per text and label):
        False marks a label the text's annotation leaves out, which then gives it no loss."""
        targets = encode_targets(gold, self.label_index, self.config.multi_label)
        if known is not None:
            targets[~known] = np.nan  # objective.label_loss leaves NaN targets out
        batch = prepare_inputs(texts, targets, self.projector, self.config)
        with reproducible_torch(self.config.threads):
            return self.joint(batch, np.arange(len(texts)), apply=False)

    def step(self, learn_rate: float | None = None) -> None:
        """Apply the accumulated gradients, then clear them. spaCy's ``learn_rate`` (its
        schedule) sets the projection network's rate; every parameter group keeps its ratio to
        it, so the trainer's own rate (``trainer_learning_rate``) is kept."""
        scale = 1.0 if learn_rate is None else learn_rate / self.config.learning_rate
        with reproducible_torch(self.config.threads):
            self.joint.apply(scale)

    def export(self) -> bytes:
        """The projection network as ``model.tpn`` bytes: weights quantized to the config's
        ``weight_bits`` plus the hash parameters."""
        header = model_header(self.labels, self.projector, self.projection, self.config)
        bits = self.config.weight_bits
        tensors = nets.export_projection_net(self.projection, bits)
        return model_file.encode_model(header, tensors, int4=netspec.int4_tensors(tensors, bits))
