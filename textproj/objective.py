"""The joint ProjectionNet loss (Ravi 2017):

    L = λ1·CE(trainer(x), y) + λ2·T²·CE(proj(x)/T, softmax(trainer(x)/T)) + λ3·CE(proj(x), y)

By default the distillation term does not reach the trainer (stop-gradient). Transfer texts
(unlabelled or augmented) add only :func:`distillation_loss`, weighted by
``TrainConfig.lambda_transfer`` (``training.JointStep``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from textproj.config import TrainConfig


def label_loss(
    logits: torch.Tensor, targets: torch.Tensor, multi_label: bool, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy, or for multi-label the per-label binary cross-entropy summed over labels."""
    if not multi_label:
        return F.cross_entropy(logits, targets, label_smoothing=smoothing)
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
        loss = loss + config.lambda_distill * distillation_loss(teacher, projection_logits, config)
    return loss
