"""The demo's charts, as pure functions of the data they show (testable without Streamlit).

Every chart comes with its height in pixels: Streamlit's ``altair_chart`` lays a chart out at
its container's width and does not honour Vega-Lite's per-row ``Step`` heights, so rows were
squeezed until Vega dropped every other axis label. Giving each row ``ROW_PX`` pixels and
turning label-overlap removal off keeps one readable label per bar, token or grid row.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from textproj import Classifier
from textproj.runtime import Explanation

ROW_PX = 26  # pixels per bar or grid row: room for one axis label each
AXIS_PX = 60  # the x axis, its title and the legend below a chart
LABEL_LIMIT = 260  # pixels of a label before it is cut with an ellipsis


def chart_height(rows: int) -> int:
    """Pixels for a chart of ``rows`` bars or grid rows."""
    return ROW_PX * max(rows, 1) + AXIS_PX


def probability_chart(labels: Sequence[str], proba: np.ndarray, top: int) -> tuple[alt.Chart, int]:
    """Horizontal bars of the ``top`` most probable labels, most probable first, every bar named."""
    order = np.argsort(-proba, kind="stable")[:top]
    frame = pd.DataFrame({"label": [labels[i] for i in order], "probability": proba[order]})
    axis = alt.Axis(labelLimit=LABEL_LIMIT, labelOverlap=False)
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", sort=list(frame["label"]), title=None, axis=axis),
            tooltip=["label", alt.Tooltip("probability:Q", format=".3f")],
        )
    )
    height = chart_height(len(order))
    return chart.properties(height=height - AXIS_PX), height


def explanation_chart(explanation: Explanation) -> tuple[alt.Chart, int]:
    """One bar per token in text order: how much it pushed the score of the predicted label up
    (blue) or down (red)."""
    rows = [f"{i + 1}: {token}" for i, token in enumerate(explanation.tokens)]
    frame = pd.DataFrame(
        {
            "token": rows,
            "share": explanation.weights,
            "effect": np.where(explanation.weights >= 0, "for", "against"),
        }
    )
    palette = alt.Scale(domain=["for", "against"], range=["#3b5b92", "#d62728"])
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("share:Q", title=f"share of the score of {explanation.label}"),
            y=alt.Y(
                "token:N",
                sort=rows,
                title=None,
                axis=alt.Axis(labelLimit=LABEL_LIMIT, labelOverlap=False),
            ),
            color=alt.Color("effect:N", scale=palette, legend=None),
            tooltip=["token", alt.Tooltip("share:Q", format="+.3f")],
        )
    )
    height = chart_height(len(rows))
    return chart.properties(height=height - AXIS_PX), height


def grid_chart(
    rows: Sequence[str], bits: np.ndarray, flips: np.ndarray, per_token: bool
) -> tuple[alt.Chart, int]:
    """A bit grid: one named row per token (per-token model) or per bit of the projection
    functions (whole-text model, T functions across), bits that flipped since the last text
    coloured."""
    state = np.where(flips > 0, "turned on", np.where(flips < 0, "turned off", ""))
    state = np.where(state == "", np.where(bits == 1, "1", "0"), state)
    names = [f"{i + 1}: {name}" for i, name in enumerate(rows)]
    r, c = np.indices(state.shape)
    frame = pd.DataFrame(
        {"row": np.array(names, dtype=object)[r.ravel()], "bit": c.ravel(), "state": state.ravel()}
    )
    x_title, y_title, y_sort = "bit", "token", names
    if not per_token:  # T projections across, d bits down: a wide grid
        frame = frame.rename(columns={"row": "bit", "bit": "row"})
        x_title, y_title, y_sort = "projection function", "bit", None
    palette = alt.Scale(
        domain=["0", "1", "turned on", "turned off"],
        range=["#eef1f5", "#3b5b92", "#2ca02c", "#d62728"],
    )
    chart = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("bit:O", title=x_title, axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("row:O", title=y_title, sort=y_sort, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("state:N", scale=palette, legend=alt.Legend(orient="bottom")),
            tooltip=["row", "bit", "state"],
        )
    )
    n_rows = state.shape[0] if per_token else state.shape[1]
    height = chart_height(n_rows) + AXIS_PX  # the legend sits below the axis
    return chart.properties(height=height - 2 * AXIS_PX), height


def describe(classifier: Classifier) -> str:
    """A model in words, for the sidebar: design, labels, bits and file size."""
    projector = classifier.projector
    bits = f"{projector.num_projections} × {projector.bits_per_projection} bits"
    per = " per token" if classifier.design == "token" else ""
    kind = "multi-label, " if classifier.multi_label else ""
    return (
        f"{classifier.design} design, {kind}{len(classifier.labels)} labels, {bits}{per}, "
        f"{classifier.n_bytes / 1000:.1f} KB"
    )


def resized_trainer_bytes(n_bytes: int, rows: int, new_rows: int, dim: int, itemsize: int) -> int:
    """trainer.npz's size had its hashed embedding table ``new_rows`` rows instead of ``rows``
    (``dim`` values of ``itemsize`` bytes a row, as stored): the rest of the file is the same."""
    return n_bytes + (new_rows - rows) * dim * itemsize
