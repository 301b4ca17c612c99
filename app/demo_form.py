"""The training form's words: what each of its widgets is called, and library messages in them.

The library's errors name ``TrainConfig`` fields (``TrainConfig.hidden``), the command line's
name its options; the page names its own widgets, so a message says which one to change.
"""

from __future__ import annotations

from textproj import ConfigError, TrainConfig
from textproj.config import TRAIN_FEATURE_OPTIONS, rename_fields, set_by_train_only
from textproj.netspec import refuse_unstorable_shapes

# TrainConfig field -> the label of the training form's widget that sets it.
FORM_LABELS = {
    "design": "Design",
    "num_projections": "T (projection functions)",
    "bits_per_projection": "d (bits per function)",
    "hidden": "Hidden sizes (comma-separated)",
    "bottleneck": "Bottleneck width",
    "filters": "Filters per window",
    "max_pool": "Max pooling",
    "mean_pool": "Mean pooling",
    "epochs": "Epochs (at most; early stopping on dev accuracy)",
}
# FeatureConfig field -> how the page's messages name it: the form has no widget for it.
FEATURE_HINTS = {field: set_by_train_only(field, "the demo") for field in TRAIN_FEATURE_OPTIONS}


def in_form_words(message: str) -> str:
    """``message`` with each ``TrainConfig.field`` the form sets written as its widget's label
    in quotes, and each ``FeatureConfig.field`` as ``FEATURE_HINTS`` says (any other field keeps
    its name)."""

    def label(kind: str, field: str) -> str | None:
        if kind == "FeatureConfig":
            return FEATURE_HINTS.get(field)
        return f"“{FORM_LABELS[field]}”" if field in FORM_LABELS else None

    return rename_fields(message, label)


def check_network_shape(config: TrainConfig, n_labels: int) -> None:
    """ConfigError in the form's words when a layer of the network would be too big for a model
    file: the library checks it only once training starts, after the Train button."""
    try:
        refuse_unstorable_shapes(config, n_labels)
    except ConfigError as error:
        raise ConfigError(in_form_words(str(error))) from None
