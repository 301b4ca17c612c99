"""The joint ProjectionNet loss (Ravi 2017):

    L = λ1·CE(trainer(x), y) + λ2·T²·CE(proj(x)/T, softmax(trainer(x)/T)) + λ3·CE(proj(x), y)

By default the distillation term does not reach the trainer (stop-gradient). Transfer texts
(unlabelled or augmented) add only :func:`distillation_loss`, weighted by
``TrainConfig.lambda_transfer`` (``training.JointStep``). With a consistency weight α > 0 the
projection network runs twice on each labelled batch, with two dropout draws; its two terms are
the mean over the draws, plus α times the draws' symmetric KL divergence (R-Drop, Liang et al.
2021).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from textproj.config import TrainConfig


def label_loss(
    logits: torch.Tensor, targets: torch.Tensor, multi_label: bool, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy, or for multi-label the per-label binary cross-entropy summed over labels
    (a NaN target, a label the text's annotation leaves out, adds nothing)."""
    if not multi_label:
        return F.cross_entropy(logits, targets, label_smoothing=smoothing)
    missing = torch.isnan(targets)
    if missing.any():
        per_label = F.binary_cross_entropy_with_logits(
            logits, targets.nan_to_num(0.0), reduction="none"
        )
        return per_label.masked_fill(missing, 0.0).sum(1).mean()
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1).mean()


def distillation_loss(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, config: TrainConfig
) -> torch.Tensor:
    """T²-scaled cross-entropy of the student's tempered outputs against the teacher's."""
    scaled = student_logits / config.temperature
    if config.multi_label:
        soft = torch.sigmoid(teacher_logits / config.temperature)
        distill = F.binary_cross_entropy_with_logits(scaled, soft, reduction="none").sum(1)
    else:
        soft = torch.softmax(teacher_logits / config.temperature, dim=1)
        distill = -(soft * torch.log_softmax(scaled, dim=1)).sum(dim=1)
    return distill.mean() * config.temperature**2


def consistency_loss(first: torch.Tensor, second: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Symmetric KL divergence between two draws' predictions (the mean of its two directions,
    summed over labels, averaged over texts); per label Bernoulli for multi-label."""
    if multi_label:
        gap = torch.sigmoid(first) - torch.sigmoid(second)
        divergence = gap * (first - second)  # (p - q)(logit p - logit q) = KL(p||q) + KL(q||p)
    else:
        gap = torch.softmax(first, dim=1) - torch.softmax(second, dim=1)
        divergence = gap * (torch.log_softmax(first, dim=1) - torch.log_softmax(second, dim=1))
    return divergence.sum(dim=1).mean() / 2


def joint_loss(
    trainer_logits: torch.Tensor,
    projection_draws: Sequence[torch.Tensor],
    targets: torch.Tensor,
    config: TrainConfig,
    consistency: float = 0.0,
) -> torch.Tensor:
    """The three-term ProjectionNet loss (see the module docstring): the projection network's
    terms averaged over its forward passes ``projection_draws`` (one or two dropout draws), and
    ``consistency`` times the two draws' :func:`consistency_loss`."""
    multi = config.multi_label
    loss = config.lambda_trainer * label_loss(trainer_logits, targets, multi)
    teacher = trainer_logits if config.distill_to_trainer else trainer_logits.detach()
    share = 1 / len(projection_draws)
    for logits in projection_draws:
        labels = label_loss(logits, targets, multi, config.label_smoothing)
        loss = loss + config.lambda_labels * share * labels
        if config.lambda_distill > 0:
            distill = distillation_loss(teacher, logits, config)
            loss = loss + config.lambda_distill * share * distill
    if consistency > 0 and len(projection_draws) == 2:
        loss = loss + consistency * consistency_loss(*projection_draws, multi)
    return loss
