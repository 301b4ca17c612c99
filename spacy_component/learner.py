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

from textproj import model_file, nets
from textproj.config import FeatureConfig, TrainConfig
from textproj.data import Dataset
from textproj.projector import Projector
from textproj.training import (
    build_networks,
    forward_projection,
    forward_trainer,
    joint_loss,
    make_optimisers,
    model_header,
    prepare_inputs,
)


class Learner:
    """Both networks of one component, trained jointly on spaCy's batches."""

    def __init__(self, labels: Sequence[str], config: TrainConfig, features: FeatureConfig) -> None:
        torch.manual_seed(config.seed)
        torch.set_num_threads(config.threads)
        self.labels = list(labels)
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        self.config = config
        self.projector = Projector(*config.projection_shape, features=features, seed=config.seed)
        self.projection, self.trainer = build_networks(
            config, self.projector.n_bits, len(self.labels)
        )
        self.optimisers = make_optimisers(self.projection, self.trainer, config)

    def accumulate(self, texts: list[str], gold: list[str] | list[tuple[str, ...]]) -> float:
        """Add the joint loss's gradients for one batch (``gold``: a label, or a tuple of labels
        when multi-label); return the loss."""
        inputs = prepare_inputs(
            Dataset(texts, gold, "spaCy batch"), self.label_index, self.projector, self.config
        )
        index = np.arange(len(texts))
        loss = joint_loss(
            forward_trainer(self.trainer, inputs, index),
            forward_projection(self.projection, inputs, index),
            torch.from_numpy(inputs.targets),
            self.config,
        )
        loss.backward()
        return float(loss.item())

    def step(self, learn_rate: float | None = None) -> None:
        """Apply the accumulated gradients (at ``learn_rate``, e.g. spaCy's schedule), then
        clear them."""
        for optimiser in self.optimisers:
            if learn_rate is not None:
                for group in optimiser.param_groups:
                    group["lr"] = learn_rate
            optimiser.step()
            optimiser.zero_grad()

    def export(self) -> bytes:
        """The projection network as ``model.tpn`` bytes: int8 weights plus the hash parameters."""
        header = model_header(self.labels, self.projector, self.projection, self.config)
        return model_file.encode_model(header, nets.export_projection_net(self.projection))
