"""Bits against accuracy: train a grid of projection shapes and widths, write a CSV and a plot.

Each grid point (T, d, width, weight bits) trains both networks jointly as ``textproj train``
does, with every other setting at its ``TrainConfig`` default, and records the on-device model's
dev (and,
if given, test) accuracy beside its input bits (T·d, per token for the token design) and its
model-file bytes. ``width`` is the hidden width of the text design's single dense layer, or the
token design's bottleneck width. Needs torch; the plot needs matplotlib.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textproj import fsio
from textproj.config import PROJECTION_DEFAULTS, TrainConfig
from textproj.data import Dataset
from textproj.errors import ConfigError
from textproj.evaluation import check_plotting
from textproj.netspec import refuse_unstorable_shapes
from textproj.rundir import check_output_dir

CSV_NAME, PNG_NAME = "sweep.csv", "sweep.png"
SWEEP_FILES = (CSV_NAME, PNG_NAME)  # either one marks a directory as a sweep's output

COLUMNS = (
    "design",
    "T",
    "d",
    "n_bits",
    "width",
    "weight_bits",
    "model_bytes",
    "dev_accuracy",
    "test_accuracy",
    "epochs",
    "train_seconds",
)


def sample(data: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """A seeded random subset of ``n`` examples in their original order (all if ``n`` is None)."""
    if n is None or n >= len(data):
        return data
    index = sorted(random.Random(seed).sample(range(len(data)), n))
    return Dataset(
        [data.texts[i] for i in index],
        [data.labels[i] for i in index],
        f"{data.source} (a random {n})",
    )


def default_grid(base: TrainConfig) -> dict[str, tuple[int, ...]]:
    """The grid when the user names none: the design's default shape and width, and a third of
    its projections, half its bits and half its width, so the default point is on the curve."""
    t, d = PROJECTION_DEFAULTS[base.design]
    width = base.hidden[0] if base.design == "text" and base.hidden else base.bottleneck
    return {
        "projections": (max(1, t // 3), t),
        "bits": (max(1, d // 2), d),
        "widths": (max(1, width // 2), width),
    }


def refuse_repeats(axes: dict[str, Sequence[int] | None]) -> None:
    """A ConfigError naming the first axis (its key in ``axes``) that lists a value twice: that
    point would train twice, as two rows and one point of the plot."""
    for axis, values in axes.items():
        repeated = [value for i, value in enumerate(values or ()) if value in values[:i]]
        if repeated:
            raise ConfigError(f"{axis} lists {repeated[0]} more than once; give each value once")


def grid_config(
    base: TrainConfig, t: int, d: int, width: int, weight_bits: int | None = None
) -> TrainConfig:
    """``base`` with projection shape (t, d), width set for its design and ``weight_bits`` (None
    keeps the base's)."""
    shape = {
        "num_projections": t,
        "bits_per_projection": d,
        "weight_bits": base.weight_bits if weight_bits is None else weight_bits,
    }
    if base.design == "text":
        return dataclasses.replace(base, hidden=(width,), **shape)
    return dataclasses.replace(base, bottleneck=width, **shape)


def grid_configs(
    base: TrainConfig,
    projections: Sequence[int],
    bits: Sequence[int],
    widths: Sequence[int],
    weight_bits: Sequence[int] | None = None,
) -> list[tuple[int, int, int, int, TrainConfig]]:
    """Every (T, d, width, weight bits, config) of the grid (``weight_bits`` None: the base's);
    a point whose layers a model file cannot hold (whatever the labels) is a ConfigError, so
    the CLI refuses it before the output or any data is touched, and run_sweep before any
    point trains."""
    grid = itertools.product(projections, bits, widths, weight_bits or (base.weight_bits,))
    configs = [(*point, grid_config(base, *point)) for point in grid]
    for *_, config in configs:
        refuse_unstorable_shapes(config, 2)
    return configs


def run_sweep(
    train_data: Dataset,
    dev_data: Dataset | None,
    test_data: Dataset | None,
    *,
    projections: Sequence[int],
    bits: Sequence[int],
    widths: Sequence[int],
    weight_bits: Sequence[int] | None = None,
    base: TrainConfig | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train every (T, d, width, weight bits) of the grid (``weight_bits`` None: the base's);
    one result row (see ``COLUMNS``) per point.

    ``on_result`` is called with each row as soon as it is measured.
    """
    from textproj.training import train

    refuse_repeats(
        {"projections": projections, "bits": bits, "widths": widths, "weight_bits": weight_bits}
    )
    base = base or TrainConfig()
    rows = []
    configs = grid_configs(base, projections, bits, widths, weight_bits)
    for t, d, width, _, config in configs:
        result = train(train_data, dev_data, test_data, config=config, progress=False)
        n_bytes = len(result.model_bytes())
        scores = result.metrics["projection"]
        row = {
            "design": config.design,
            "T": t,
            "d": d,
            "n_bits": t * d,
            "width": width,
            "weight_bits": config.weight_bits,
            "model_bytes": n_bytes,
            "dev_accuracy": round(scores["dev"]["accuracy"], 4),
            "test_accuracy": round(scores["test"]["accuracy"], 4) if "test" in scores else "",
            "epochs": len(result.metrics["history"]),
            "train_seconds": result.metrics["train_seconds"],
        }
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """The sweep's rows as CSV with a header of ``COLUMNS``, written atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    fsio.write_bytes(path, buffer.getvalue().encode("utf-8"))


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows written by :func:`write_csv`, numbers parsed back (a missing test accuracy is None)."""
    ints = {"T", "d", "n_bits", "width", "weight_bits", "model_bytes", "epochs"}
    floats = {"dev_accuracy", "test_accuracy", "train_seconds"}
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            row: dict[str, Any] = {"weight_bits": "8", **record}  # older files: int8 only
            for key in ints:
                row[key] = int(row[key])
            for key in floats:
                row[key] = float(row[key]) if row[key] != "" else None
            rows.append(row)
    return rows


def plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> None:
    """Two panels: dev accuracy against input bits, and against model bytes; one line per width
    and weight width. The PNG is written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (by_bits, by_bytes) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for width, stored_bits in sorted({(row["width"], row["weight_bits"]) for row in rows}):
        series = sorted(
            (r for r in rows if (r["width"], r["weight_bits"]) == (width, stored_bits)),
            key=lambda r: r["n_bits"],
        )
        label = f"width {width}, int{stored_bits}"
        accuracy = [r["dev_accuracy"] for r in series]
        by_bits.plot([r["n_bits"] for r in series], accuracy, "o-" if stored_bits == 8 else "s--",
                     label=label)  # fmt: skip
        by_size = sorted(series, key=lambda r: r["model_bytes"])
        by_bytes.plot(
            [r["model_bytes"] / 1000 for r in by_size],
            [r["dev_accuracy"] for r in by_size],
            "o-" if stored_bits == 8 else "s--",
            label=label,
        )
    design = rows[0]["design"] if rows else "token"
    by_bits.set_xlabel("input bits (T·d" + (" per token)" if design == "token" else ")"))
    by_bytes.set_xlabel("model.tpn size (KB)")
    by_bits.set_xscale("log", base=2)
    for axes in (by_bits, by_bytes):
        axes.set_ylabel("dev accuracy (on-device model)")
        axes.grid(True, alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    fsio.write_bytes(path, image.getvalue())


def sweep_to_folder(
    train_data: Dataset,
    dev_data: Dataset | None,
    test_data: Dataset | None,
    output: str | os.PathLike[str],
    *,
    title: str = "",
    force: bool = False,
    **grid: Any,
) -> tuple[Path, Path]:
    """:func:`run_sweep`, then ``sweep.csv`` and ``sweep.png`` in ``output``; returns both paths.

    ``output`` is checked first as ``train`` checks its output directory (another sweep's or
    other files in it are replaced only with ``force``), then that matplotlib is there for the
    plot (a DataError before any training, not after the grid), and is replaced whole once both
    files are written, so it holds the previous complete sweep or the new one.
    """
    folder = Path(output)
    check_output_dir(folder, force=force, marks=SWEEP_FILES, kind="sweep")
    check_plotting(folder / PNG_NAME)  # before the grid trains, not when its rows are written
    rows = run_sweep(train_data, dev_data, test_data, **grid)

    def write(staging: Path) -> None:
        write_csv(rows, staging / CSV_NAME)
        plot(rows, staging / PNG_NAME, title)

    fsio.build_directory(folder, write)
    return folder / CSV_NAME, folder / PNG_NAME
