"""Command-line interface, installed as the ``textproj`` console script.

Keep module-level imports light (no torch): ``textproj --help`` should start instantly,
so commands that need heavy libraries import them inside the command body.

Bad input (a :class:`~textproj.errors.TextprojError`) ends with one ``error:`` line on stderr:
exit code 2 for a usage error (options that are out of range or do not go together), 1 for
anything else (data, model files, output directories). Any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from textproj import __version__
from textproj._kernels.cache import compiled, runtime_kernels, training_kernels
from textproj.config import (
    DESIGNS,
    EPOCHS,
    LONG_TEXTS_MIN_STEPS,
    MAX_POOL_MEDIAN_TOKENS,
    MIN_STEPS,
    PROJECTION_DEFAULTS,
    SMALL_DATA_AUGMENT,
    SMALL_DATA_CONSISTENCY,
    SMALL_DATA_TEXTS,
    TRAIN_FEATURE_OPTIONS,
    TRAINERS,
    WEIGHT_BITS,
    FeatureConfig,
    TrainConfig,
    rename_fields,
    set_by_train_only,
)
from textproj.corpora import CORPORA, DEFAULT_CORPUS, corpus_path, corpus_table, load_corpus
from textproj.data import (
    DEFAULT_COLUMNS,
    LABEL_COLUMN,
    TEXT_COLUMN,
    Dataset,
    blank_texts,
    check_data_file,
    has_columns,
    is_blank,
    iter_texts,
    read_dataset,
    read_lines,
)
from textproj.errors import ConfigError, TextprojError
from textproj.layout import CHECKPOINT_EVERY_SECONDS, CHECKPOINT_NAME, METRICS_NAME
from textproj.rundir import check_output_dir, refuse_a_directory

if TYPE_CHECKING:
    from textproj.ensemble import EnsembleModel
    from textproj.runtime import Classifier

USAGE_ERROR = 2  # click's own exit code for a bad command line
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
LAUNCHER_ENV = "TEXTPROJ_LAUNCHER"  # the launcher's pid, for the workers `--processes` starts
JSON_TOP = 5  # labels with probabilities in each --json record unless -k says otherwise

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: "[default: …]" is text, flags show no "<bool>" type
    help="Tiny vocabulary-free text classifiers (projection networks).",
)


def _bad_value_reason(error: typer.BadParameter) -> str:
    """Why an option's value was refused, with the value given: pydantic's ``Input should be
    ...`` (as Typer passes it on) becomes ``got 0; it should be ...``."""
    from pydantic import ValidationError  # Typer's coercion, imported only on this error path

    cause = error.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        first = cause.errors()[0]
        given = first.get("input")
        if first["msg"].startswith("Input should") and isinstance(given, str):
            shown = given if given and given.strip() == given else repr(given)
            return f"got {shown}; it should{first['msg'].removeprefix('Input should')}"
    return error.message.removeprefix("Value error, ")  # pydantic's prefix


class _Command(TyperCommand):
    """Usage lines as ``MODEL [TEXTS]...`` (Typer writes required arguments as ``{model}``), and
    a bad option value (out of a declared range, not a number, not a choice) as one ``error:``
    line naming the option, as every other usage error, not click's usage block."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: typer.Context | None = None,
        **extra: Any,
    ) -> typer.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except typer.BadParameter as error:
            # Exactly BadParameter: its subclass MissingParameter keeps click's block, which
            # names the missing argument beside the usage line.
            param = error.param
            if type(error) is typer.BadParameter and param and param.param_type_name == "option":
                _usage(f"{param.opts[0]}: {_bad_value_reason(error)}")
            raise

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name or "").upper()
                name += "..." if param.nargs != 1 else ""
                pieces.append(name if param.required else f"[{name}]")
        return pieces


Design = Enum("Design", {name: name for name in DESIGNS}, type=str)
Trainer = Enum("Trainer", {name: name for name in TRAINERS}, type=str)
DEFAULTS = TrainConfig()  # train's option defaults are TrainConfig's
DEFAULT_DESIGN, DEFAULT_TRAINER = Design(DEFAULTS.design), Trainer(DEFAULTS.trainer)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"textproj {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Group the subcommands (the app's help text comes from ``typer.Typer(help=...)``)."""
    # An explicit callback keeps subcommands as subcommands: without it, a Typer app
    # with a single command would run that command directly and `textproj corpora` fails.


def _stderr() -> Console:
    """Where messages go: stderr, whole lines, no emoji codes (``x.tsv:train:`` is no 🚋)."""
    return Console(stderr=True, soft_wrap=True, emoji=False, highlight=False)


def _first_on_machine() -> bool:
    """False in torchrun workers other than each machine's first: they read the same files and
    options as it, so their errors and warnings would repeat its lines."""
    return os.environ.get("LOCAL_RANK", "0") == "0"


def _fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: what users see instead of a traceback."""
    if _first_on_machine():
        _stderr().print(Text.assemble(("error:", "red"), " ", message))
    raise typer.Exit(code=code)


def _usage(message: str) -> NoReturn:
    _fail(message, USAGE_ERROR)


def _warn(message: str) -> None:
    if _first_on_machine():
        _stderr().print(Text.assemble(("warning:", "yellow"), " ", message))


def _note_first_compile(design: str, kernels: tuple) -> None:
    """Say why a fresh install's first run is silent for a while: numba compiles the
    ``kernels`` and caches them (a progress bar starts after the first texts are projected)."""
    if _first_on_machine() and not compiled(kernels):
        _stderr().print(
            f"compiling textproj's {design}-design kernels for this machine: about 15 s, "
            "once per install (numba caches them)"
        )


def _examples(*lines: str) -> str:
    """A command's help epilog: example command lines, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@app.command(cls=_Command)
def corpora() -> None:
    """List the bundled corpora with their task, number of labels and split sizes."""
    try:
        rows = corpus_table()
    except TextprojError as error:
        _fail(str(error))
    table = Table(title="Bundled corpora")
    table.add_column("name", no_wrap=True)
    table.add_column("task")
    for header in ("labels", "train", "dev", "test"):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(
            str(row["name"]),
            str(row["task"]),
            *(str(row[key]) for key in ("n_labels", "train", "dev", "test")),
        )
    Console().print(table)


def _load_model(path: Path) -> Classifier:
    from textproj.runtime import load

    try:
        with _warnings_as_lines():
            classifier = load(path)
    except TextprojError as error:
        _fail(str(error))
    _note_first_compile(classifier.design, runtime_kernels(classifier.design))
    return classifier


def _load_ensemble(path: Path) -> EnsembleModel:
    """The served ensemble of the run that holds model.tpn at ``path`` (imports torch)."""
    from textproj.ensemble import load_ensemble
    from textproj.model_file import model_path

    try:
        with _warnings_as_lines():
            served = load_ensemble(model_path(path).parent)
    except TextprojError as error:
        _fail(str(error))
    design = served.device.design
    _note_first_compile(design, training_kernels(design) + runtime_kernels(design))
    return served


EnsembleOption = Annotated[
    bool,
    typer.Option(
        "--ensemble",
        help="Use the run's trainer and on-device model averaged (more accurate; needs torch "
        "and the trainer files beside model.tpn).",
    ),
]


# The columns (JSONL fields) of the user's files to read; bundled corpora keep their own.
TextColumnOption = Annotated[
    str, typer.Option(help="Column of your TSV/CSV files (JSONL field) holding the text.")
]
LabelColumnOption = Annotated[
    str, typer.Option(help="Column of your TSV/CSV files (JSONL field) holding the label.")
]


def _read(
    path: Path, multi_label: bool = False, columns: Sequence[str] = DEFAULT_COLUMNS
) -> Dataset:
    text_column, label_column = columns
    try:
        return read_dataset(
            path, multi_label=multi_label, text_column=text_column, label_column=label_column
        )
    except TextprojError as error:
        _fail(str(error))


def _column_options(columns: Sequence[str]) -> str:
    """How a usage error names the column options given (``columns`` not their defaults):
    ``--text-column names a column``, ``--text-column and --label-column name columns``, or
    "" when none is."""
    named = [
        f"--{kind}-column"
        for kind, column, default in zip(("text", "label"), columns, DEFAULT_COLUMNS, strict=True)
        if column != default
    ]
    if not named:
        return ""
    return f"{' and '.join(named)} {'names a column' if len(named) == 1 else 'name columns'}"


def _refuse_unread_columns(columns: Sequence[str], files: dict[str, Path | None]) -> None:
    """A usage error for --text-column / --label-column when none of ``files`` (option -> path)
    is given: a bundled corpus keeps its own columns, so the options would be ignored."""
    if (named := _column_options(columns)) and not any(files.values()):
        _usage(f"{named} of your data files ({', '.join(files)}); a bundled corpus keeps its own")


def _refuse_columnless_file(columns: Sequence[str], option: str, path: Path | None) -> None:
    """A usage error for --text-column / --label-column when ``option``'s file ``path`` is not
    given or has no named columns (its texts are lines, fastText's for labelled data): known
    from the name, so before any model loads."""
    if (named := _column_options(columns)) and (path is None or not has_columns(path)):
        _usage(f"{named} of a .tsv/.csv/.jsonl {option} file")


def _refuse_columnless_files(columns: Sequence[str], files: dict[str, Path | None]) -> None:
    """train's and sweep's usage error for --text-column / --label-column with any given data
    file of ``files`` (option -> path) whose format has no columns (.txt, .ft): as
    :func:`_refuse_columnless_file`, before any file is read."""
    for option, path in files.items():
        if path is not None:
            _refuse_columnless_file(columns, option, path)


def _parse_ints(text: str, option: str) -> tuple[int, ...]:
    """Comma-separated positive integers, or a usage error naming ``option``."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        _usage(f"{option} takes comma-separated positive integers, got {text!r}")
    return values


# TrainConfig field -> the train option that sets it (error messages name the option).
OPTIONS = {
    "design": "--design",
    "trainer": "--trainer",
    "num_projections": "--projections",
    "bits_per_projection": "--bits",
    "hidden": "--hidden",
    "bottleneck": "--bottleneck",
    "filters": "--filters",
    "max_pool": "--max-pool",
    "mean_pool": "--mean-pool",
    "weight_bits": "--weight-bits",
    "epochs": "--epochs",
    "patience": "--patience",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "dev_fraction": "--dev-fraction",
    "trainer_buckets": "--trainer-buckets",
    "trainer_table_learning_rate": "--trainer-table-lr",
    "trainer_dropout": "--trainer-dropout",
    "trainer_share": "--trainer-share",
    "threads": "--threads",
    "lambda_distill": "--lambda-distill",
    "lambda_transfer": "--lambda-transfer",
    "augment_copies": "--augment",
    "consistency": "--consistency",
    "temperature": "--temperature",
    "seed": "--seed",
    "multi_label": "--multi-label",
}
# The train options that shape one design's network only (parameter -> how errors name it).
DESIGN_OPTIONS = {
    "text": {"hidden": "--hidden"},
    "token": {
        "bottleneck": "--bottleneck",
        "filters": "--filters",
        "max_pool": "--max-pool/--no-max-pool",
        "mean_pool": "--mean-pool/--no-mean-pool",
    },
}
# TrainConfig field -> the sweep option that sets it (a grid point's width is its design's).
SWEEP_OPTIONS = {
    **{field: OPTIONS[field] for field in ("design", "epochs", "threads", "weight_bits")},
    "num_projections": "--projections",
    "bits_per_projection": "--bits",
    "hidden": "--widths",
    "bottleneck": "--widths",
}
DATA_OPTIONS = (
    "corpus", "train_file", "dev_file", "test_file", "text_column", "label_column", "unlabeled",
    "stream", "cache_dir",
)  # fmt: skip


def _config(values: dict[str, Any]) -> TrainConfig:
    """TrainConfig from option values; an out-of-range value, or a network whose layers a model
    file cannot hold (whatever the labels), is a usage error naming its option."""
    from textproj.netspec import refuse_unstorable_shapes

    try:
        config = TrainConfig(**values)
        refuse_unstorable_shapes(config, 2)
        return config
    except ConfigError as error:
        _usage(_option_names(str(error)))


def _features(max_tokens: int) -> FeatureConfig:
    """FeatureConfig of ``train --max-tokens``; one the kernels cannot take (2**31 tokens or
    more) is a usage error naming the option, before any data is read."""
    from textproj.features import check_limits

    try:
        return check_limits(FeatureConfig(max_tokens=max_tokens))
    except ConfigError as error:
        _usage(_option_names(str(error)))


# FeatureConfig field -> how sweep's messages name it: sweep has no option for it, train has.
SWEEP_FEATURE_OPTIONS = {
    field: set_by_train_only(field, "sweep") for field in TRAIN_FEATURE_OPTIONS
}
# An API argument as a message names it (``force=True``) -> the option that sets it.
ARGUMENT_OPTIONS = {"force=True": "--force", "dev_data": "--dev"}


def _option_names(
    message: str,
    options: dict[str, str] = OPTIONS,
    arguments: dict[str, str] = ARGUMENT_OPTIONS,
    features: dict[str, str] = TRAIN_FEATURE_OPTIONS,
) -> str:
    """``message`` with each ``TrainConfig.field`` written as the option (``options``) that sets
    it, each ``FeatureConfig.field`` as its option (``features``), and each API argument
    (a key of ``arguments``, as ``force=True``) as its option."""
    names = {"TrainConfig": options, "FeatureConfig": features}
    api = "|".join(map(re.escape, arguments))
    message = re.sub(rf"\b({api})\b", lambda m: arguments[m.group(1)], message)
    return rename_fields(message, lambda kind, field: names[kind].get(field))


def _sweep_names(message: str) -> str:
    """``message`` with config fields named as a sweep user sets them (:func:`_option_names`)."""
    return _option_names(message, SWEEP_OPTIONS, features=SWEEP_FEATURE_OPTIONS)


@app.command(
    cls=_Command,
    epilog=_examples(
        "textproj train                      # banking77 -> ./textproj-model/",
        "textproj train --corpus clinc150 --output clinc",
        "textproj train --train my.csv --test my-test.csv --output mine",
        "textproj train --train my.jsonl --text-column body --label-column topic",
        "textproj train --train few.tsv --unlabeled many.txt  # semi-supervised",
    ),
)
def train(
    ctx: typer.Context,
    corpus: Annotated[
        str | None, typer.Option(help=f"Bundled corpus to train on [default: {DEFAULT_CORPUS}].")
    ] = None,
    train_file: Annotated[
        Path | None, typer.Option("--train", help="Training file (.tsv/.csv/.jsonl/.txt, .gz ok).")
    ] = None,
    dev_file: Annotated[
        Path | None,
        typer.Option("--dev", help="With --train: dev file (default: carved off, --dev-fraction)."),
    ] = None,
    test_file: Annotated[
        Path | None, typer.Option("--test", help="With --train: test file to score.")
    ] = None,
    text_column: TextColumnOption = TEXT_COLUMN,
    label_column: LabelColumnOption = LABEL_COLUMN,
    output: Annotated[Path, typer.Option(help="Output directory.")] = Path("textproj-model"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the output directory of another run.")
    ] = False,
    design: Annotated[Design, typer.Option(help="Projection network.")] = DEFAULT_DESIGN,
    trainer: Annotated[Trainer, typer.Option(help="Trainer network.")] = DEFAULT_TRAINER,
    projections: Annotated[
        int | None,
        typer.Option(
            "--projections",
            "-T",
            help="T, projection functions [default: "
            f"{PROJECTION_DEFAULTS['token'][0]} token, {PROJECTION_DEFAULTS['text'][0]} text].",
        ),
    ] = None,
    bits: Annotated[
        int | None,
        typer.Option(
            "--bits",
            "-d",
            help="d, bits per projection function [default: "
            f"{PROJECTION_DEFAULTS['token'][1]} token, {PROJECTION_DEFAULTS['text'][1]} text].",
        ),
    ] = None,
    hidden: Annotated[
        str, typer.Option(help="Text design: hidden widths, comma-separated.")
    ] = ",".join(map(str, DEFAULTS.hidden)),
    bottleneck: Annotated[
        int, typer.Option(help="Token design: bottleneck width.")
    ] = DEFAULTS.bottleneck,
    filters: Annotated[
        int, typer.Option(help="Token design: channels per window.")
    ] = DEFAULTS.filters,
    max_pool: Annotated[
        bool | None,
        typer.Option(
            "--max-pool/--no-max-pool",
            help="Token design: also pool each channel's largest window value (the output "
            "layer one pooling wider) [default: on when the training texts' median is at most "
            f"{MAX_POOL_MEDIAN_TOKENS} tokens].",
            show_default=False,
        ),
    ] = DEFAULTS.max_pool,
    mean_pool: Annotated[
        bool | None,
        typer.Option(
            "--mean-pool/--no-mean-pool",
            help="Token design: also pool each channel's mean window value (the output layer "
            "one pooling wider) [default: on when the training texts' median is over "
            f"{MAX_POOL_MEDIAN_TOKENS} tokens].",
            show_default=False,
        ),
    ] = DEFAULTS.mean_pool,
    weight_bits: Annotated[
        int,
        typer.Option(
            help=f"Bits per layer weight in model.tpn: {' or '.join(map(str, WEIGHT_BITS))} "
            "(training sees the rounding)."
        ),
    ] = DEFAULTS.weight_bits,
    max_tokens: Annotated[
        int,
        typer.Option(
            min=1,
            help="Tokens read per text; later ones are ignored (long documents may want more, "
            "at a cost in time that grows with it).",
        ),
    ] = FeatureConfig().max_tokens,
    epochs: Annotated[
        int | None,
        typer.Option(
            help=f"Maximum epochs [default: {EPOCHS}, more for small sets: {MIN_STEPS} steps, "
            f"{LONG_TEXTS_MIN_STEPS} for texts of median over {MAX_POOL_MEDIAN_TOKENS} tokens]."
        ),
    ] = None,
    patience: Annotated[
        int, typer.Option(help="Stop after this many epochs without a better dev score.")
    ] = DEFAULTS.patience,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option("--lr", help="Learning rate (Adam), decays linearly to 0.")
    ] = DEFAULTS.learning_rate,
    dev_fraction: Annotated[
        float, typer.Option(help="Share of --train carved off as dev when no --dev is given.")
    ] = DEFAULTS.dev_fraction,
    trainer_buckets: Annotated[
        int, typer.Option(help="Rows of the trainer's hashed embedding table.")
    ] = DEFAULTS.trainer_buckets,
    trainer_table_lr: Annotated[
        float, typer.Option(help="Learning rate of the trainer's embedding table (Adam).")
    ] = DEFAULTS.trainer_table_learning_rate,
    trainer_dropout: Annotated[
        float, typer.Option(help="Dropout in the trainer network.")
    ] = DEFAULTS.trainer_dropout,
    trainer_share: Annotated[
        float,
        typer.Option(
            help="Train the trainer over this share of the steps, then freeze it at its best "
            "dev epoch (1: the whole run)."
        ),
    ] = DEFAULTS.trainer_share,
    threads: Annotated[
        int, typer.Option(help="Torch threads (results are reproducible for a fixed count).")
    ] = DEFAULTS.threads,
    lambda_distill: Annotated[
        float, typer.Option(help="λ2, distillation weight; 0 trains alone.")
    ] = DEFAULTS.lambda_distill,
    temperature: Annotated[
        float, typer.Option(help="Distillation temperature.")
    ] = DEFAULTS.temperature,
    unlabeled: Annotated[
        Path | None,
        typer.Option(
            help="Texts without labels for the distillation term (one per line, or any data "
            "file, labels ignored; .gz too)."
        ),
    ] = None,
    augment: Annotated[
        int | None,
        typer.Option(
            help="Augmented copies of each training text for the distillation term [default: "
            f"{SMALL_DATA_AUGMENT} below {SMALL_DATA_TEXTS} training texts, else 0]."
        ),
    ] = DEFAULTS.augment_copies,
    lambda_transfer: Annotated[
        float, typer.Option(help="Weight of the distillation term on unlabeled/augmented texts.")
    ] = DEFAULTS.lambda_transfer,
    consistency: Annotated[
        float | None,
        typer.Option(
            help="R-Drop: the on-device network runs twice per batch, this weight on the two "
            f"predictions' divergence [default: {SMALL_DATA_CONSISTENCY:g} below "
            f"{SMALL_DATA_TEXTS} training texts without --unlabeled, else 0]."
        ),
    ] = DEFAULTS.consistency,
    seed: Annotated[int, typer.Option(help="Seed of hashing, init and shuffling.")] = DEFAULTS.seed,
    multi_label: Annotated[
        bool,
        typer.Option(
            "--multi-label", help="Several labels per text (a|b in TSV/CSV, lists in JSONL)."
        ),
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the interrupted run whose output directory this is."),
    ] = None,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds between checkpoints (written at an epoch's end; 0: every epoch).",
        ),
    ] = CHECKPOINT_EVERY_SECONDS,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Read and featurise the files in chunks into an on-disk input cache that "
            "epochs memory-map: memory does not grow with the corpus (same model).",
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Root of --stream's input caches [default: ~/.cache/textproj]."),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Data-parallel worker processes on this machine (torch.distributed, gloo); "
            "the global batch stays --batch-size.",
        ),
    ] = 1,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress (else bars on stderr when it is a terminal, else a line per epoch).",
        ),
    ] = False,
) -> None:
    """Train a projection network jointly with its trainer; write model.tpn, trainer and metrics."""
    if resume is not None:
        given = [
            name
            for name in ctx.params
            if name in (*DATA_OPTIONS, *_PARAM_FIELDS, "output", "force", "max_tokens")
            and _on_command_line(ctx, name)
        ]
        if given:
            _usage(
                "--resume continues a run as it was started: give no other data or model "
                f"options (got {', '.join(_option_name(name) for name in given)})"
            )
        run, config, features = _resumed(resume)
        output = resume
    else:  # data options, then the model's, then the output directory: sweep's order
        _refuse_mixed_sources(corpus, train_file, dev_file, test_file)
        sources = (("train", train_file), ("dev", dev_file), ("test", test_file))
        run = {
            "corpus": None if train_file else corpus or DEFAULT_CORPUS,
            **{split: str(path.resolve()) if path else None for split, path in sources},
            "unlabeled": str(unlabeled.resolve()) if unlabeled else None,
            "columns": [text_column, label_column],
        }
        labelled = {"--train": train_file, "--dev": dev_file, "--test": test_file}
        _refuse_unread_columns(run["columns"], {**labelled, "--unlabeled": unlabeled})
        _refuse_columnless_files(run["columns"], labelled)  # --unlabeled: any format, as read
        if (dev_file or run["corpus"]) and _on_command_line(ctx, "dev_fraction"):
            _usage(
                "--dev-fraction carves dev off --train: it does not go with --dev or a bundled "
                "corpus (which has a dev split)"
            )
        if cache_dir is not None and not stream:
            _usage("--cache-dir is where --stream keeps its input caches: give --stream too")
        if stream and run["corpus"] is not None:
            _usage("--stream reads files: give --train FILE (and --dev/--test FILE)")
        if multi_label and run["corpus"] is not None:
            _usage(f"bundled corpus {run['corpus']!r} is single-label; give --train FILE")
        _refuse_other_designs_options(ctx, design.value)
        values = {
            "design": design.value,
            "trainer": trainer.value,
            "num_projections": projections,
            "bits_per_projection": bits,
            "hidden": _parse_ints(hidden, "--hidden"),
            "bottleneck": bottleneck,
            "filters": filters,
            "max_pool": max_pool,
            "mean_pool": mean_pool,
            "weight_bits": weight_bits,
            "epochs": epochs,
            "patience": patience,
            "batch_size": batch_size,
            "learning_rate": lr,
            "dev_fraction": dev_fraction,
            "trainer_buckets": trainer_buckets,
            "trainer_table_learning_rate": trainer_table_lr,
            "trainer_dropout": trainer_dropout,
            "trainer_share": trainer_share,
            "threads": threads,
            "lambda_distill": lambda_distill,
            "lambda_transfer": lambda_transfer,
            "augment_copies": augment,
            "consistency": consistency,
            "temperature": temperature,
            "seed": seed,
            "multi_label": multi_label,
        }
        config = _config(values)
        features = _features(max_tokens)
        if stream and config.augment_copies:
            _usage("--stream makes no augmented copies: drop --augment")
        if stream:
            from textproj.streaming import default_cache_root

            run["stream_cache"] = str((cache_dir or default_cache_root()).resolve())
    try:
        data_files = [run[k] for k in ("train", "dev", "test", "unlabeled") if run.get(k)]
        check_output_dir(output, force=force, resume=resume is not None, inputs=data_files)
        for path in data_files:  # before any is read: a missing --unlabeled is not found last
            check_data_file(path)
    except TextprojError as error:
        _fail(_option_names(str(error), arguments=_train_arguments(output)))
    if processes > 1:
        _launch_workers(ctx, processes, output)
    text_column = run.get("columns", DEFAULT_COLUMNS)[0]
    if run.get("stream_cache"):
        splits: Any = (Path(run["train"]), *(run[s] and Path(run[s]) for s in ("dev", "test")))
        transfer: Any = Path(run["unlabeled"]) if run.get("unlabeled") else ()  # streamed too
    else:
        splits = _run_data(run, config.multi_label)
        _warn_blank_texts(*splits)
        transfer = _read_unlabeled(run.get("unlabeled"), quiet, text_column)
    if not quiet:
        _note_first_compile(config.design, training_kernels(config.design))
    result = _run_training(
        splits, config, features, output, run, quiet, resume is not None, force, checkpoint_every,
        transfer,
    )  # fmt: skip
    if result.metrics:  # empty on the ranks of a data-parallel run other than 0
        _print_summary(result.metrics, output)


def _refuse_mixed_sources(
    corpus: str | None, train_file: Path | None, dev_file: Path | None, test_file: Path | None
) -> None:
    """train's and sweep's usage error for data options that do not go together: a bundled
    corpus has its own dev and test splits, so --dev and --test are --train's."""
    if corpus and train_file:
        _usage("give either --corpus or --train, not both")
    if (dev_file or test_file) and not train_file:
        _usage("--dev and --test go with --train (a bundled corpus has its own splits)")


def _train_arguments(output: Path) -> dict[str, str]:
    """How train's errors write the API's arguments: ``resume=True`` as the command that
    continues the run in ``output`` (--resume takes no other options)."""
    return {**ARGUMENT_OPTIONS, "resume=True": f"`textproj train --resume {output}`"}


def _refuse_other_designs_options(ctx: typer.Context, design: str) -> None:
    """A usage error for an option given on the command line that shapes another design's
    network: it would be ignored."""
    for other, options in DESIGN_OPTIONS.items():
        given = [shown for name, shown in options.items() if _on_command_line(ctx, name)]
        if other != design and given:
            _usage(
                f"{given[0]} sets the {other} design's network; it does not go with "
                f"--design {design}"
            )


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was given on the command line (not left at its default)."""
    return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"


def _launch_workers(ctx: typer.Context, processes: int, output: Path) -> NoReturn:
    """Run this command line (without --processes) in ``processes`` torchrun workers. On a stop
    signal torchrun ends the workers (with SIGTERM, wherever they are: loading torch, joining
    the process group, training), and this process cleans ``output`` and writes the note on
    resuming; so too after a Ctrl-C that comes while it loads torch, before torchrun runs."""
    try:
        with _ctrl_c_deferred():
            from textproj import distributed
        if distributed.launched():
            _usage(
                "--processes starts torchrun workers; under torchrun give --nproc-per-node instead"
            )
        os.environ[LAUNCHER_ENV] = str(os.getpid())  # workers: end without it, leave it the note
        try:
            code = distributed.launch(processes, _worker_args(ctx))
        finally:
            del os.environ[LAUNCHER_ENV]
    except KeyboardInterrupt:  # before torchrun's own handler is in place
        _interrupted(output)
    if code > 128:  # 128 + the signal that stopped the run
        _interrupted(output, code)
    raise typer.Exit(code=code)


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Run the block whole, a Ctrl-C during it raising KeyboardInterrupt only after it: for the
    import of torch, which a KeyboardInterrupt inside can leave half done (an abort in its C++
    initialisation, a crash at exit). Nothing changes where SIGINT is ignored or handled."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


def _worker_args(ctx: typer.Context) -> list[str]:
    """This command line's options as given, without --processes: a worker's arguments."""
    args: list[str] = []
    for param in ctx.command.params:
        if param.name == "processes" or not _on_command_line(ctx, param.name or ""):
            continue
        value = ctx.params[param.name or ""]
        option = param.opts[0]
        if getattr(param, "is_flag", False):
            off = getattr(param, "secondary_opts", [])  # --no-x of an --x/--no-x pair
            args += [option] if value else off[:1]
        else:
            args += [option, str(value.value if isinstance(value, Enum) else value)]
    return args


# train's parameter names that set TrainConfig fields (for --resume's check).
_PARAM_FIELDS = {
    "design", "trainer", "projections", "bits", "hidden", "bottleneck", "filters", "max_pool",
    "mean_pool", "weight_bits",
    "epochs", "patience", "batch_size", "lr", "dev_fraction", "trainer_buckets",
    "trainer_table_lr", "trainer_dropout", "trainer_share", "threads",
    "lambda_distill", "lambda_transfer", "augment", "consistency", "temperature", "seed",
    "multi_label",
}  # fmt: skip


def _read_unlabeled(path: str | None, quiet: bool, text_column: str = TEXT_COLUMN) -> list[str]:
    """The unlabeled texts of ``--unlabeled``, read as a stream with a progress display."""
    if path is None:
        return []
    from rich.progress import SpinnerColumn, TextColumn

    from textproj.progress import display
    from textproj.transfer import read_unlabeled

    columns = (SpinnerColumn(), TextColumn("reading {task.description}: {task.completed:,} lines"))
    with display(*columns, enabled=not quiet, transient=True) as bar:
        task = bar.add_task(Path(path).name, total=None)
        try:
            return read_unlabeled(
                path, lambda lines: bar.update(task, completed=lines), text_column
            )
        except TextprojError as error:
            _fail(str(error))


def _option_name(param: str) -> str:
    special = {"train_file": "--train", "dev_file": "--dev", "test_file": "--test"}
    return special.get(param, "--" + param.replace("_", "-"))


def _resumed(directory: Path) -> tuple[dict, TrainConfig, FeatureConfig]:
    """The data sources and configs stored in an interrupted run's checkpoint."""
    from textproj import checkpoint

    try:
        state = checkpoint.read(directory)
    except TextprojError as error:
        _fail(str(error))
    return (
        state["run"],
        TrainConfig.from_dict(state["config"]),
        FeatureConfig.from_dict(state["features"]),
    )


def _run_training(
    splits: tuple[Dataset, Dataset | None, Dataset | None],
    config: TrainConfig,
    features: FeatureConfig,
    output: Path,
    run: dict,
    quiet: bool,
    resume: bool,
    force: bool,
    checkpoint_every: float,
    unlabeled: list[str] | Path,
) -> Any:
    """Train, turning bad input into one error line (training refuses one-label data, warns of
    dev/test labels it never saw) and Ctrl-C into a note on how to resume."""
    from textproj.training import train as run_training

    try:
        with _warnings_as_lines():
            return run_training(
                *splits, config=config, features=features, output_dir=output,
                corpus=run["corpus"] or run["train"], progress=not quiet, resume=resume,
                force=force, run=run, checkpoint_seconds=checkpoint_every, unlabeled=unlabeled,
                stream_cache=run.get("stream_cache"),
                columns=tuple(run.get("columns", DEFAULT_COLUMNS)),
            )  # fmt: skip
    except TextprojError as error:
        _fail(_option_names(str(error), arguments=_train_arguments(output)))
    except KeyboardInterrupt:
        _interrupted(output)


@contextmanager
def _warnings_as_lines(rename: Callable[[str], str] = _option_names) -> Iterator[None]:
    """Python warnings raised inside (training's: unseen labels, long texts; a model file's
    load: an older Unicode) as one ``warning:`` line each on stderr, config fields named by
    ``rename`` as the command's options; each message once, as a sweep's runs repeat the
    warnings of the data they share and export loads the model once per target."""
    shown: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        line = rename(str(message))
        if line not in shown:
            shown.add(line)
            _warn(line)

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every one reaches ``show``, which keeps the first
        warnings.showwarning = show
        yield


def _interrupted(output: Path, code: int = INTERRUPTED) -> NoReturn:
    """Exit ``code`` after a stop signal, with no half-written file left in ``output`` and one
    note on how to resume (from the first process of a machine, or ``--processes``'s launcher)."""
    _remove_temporary_files(output)
    if (output / CHECKPOINT_NAME).is_file():
        message = (
            f"interrupted; the latest checkpoint is {output / CHECKPOINT_NAME}"
            f": continue with `textproj train --resume {output}`"
        )
    else:
        message = (
            "interrupted before a checkpoint was written (one is written at the end of the "
            "first epoch after every --checkpoint-every seconds)"
        )
    if _first_on_machine() and not os.environ.get(LAUNCHER_ENV):
        _stderr().print(Text(message))
    raise typer.Exit(code=code) from None


def _remove_temporary_files(directory: Path) -> None:
    """Half-written ``*.tmp`` files an interrupted write left in ``directory``."""
    if directory.is_dir():
        for path in directory.iterdir():
            if ".tmp" in path.name and path.is_file():
                path.unlink(missing_ok=True)


def _run_data(run: dict, multi_label: bool) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """The train, dev and test data a run names: a bundled corpus's splits or files."""
    columns = run.get("columns", DEFAULT_COLUMNS)
    if run["corpus"] is None:
        train_data = _read(Path(run["train"]), multi_label, columns)
        dev_data, test_data = (
            _read(Path(run[split]), multi_label, columns) if run[split] else None
            for split in ("dev", "test")
        )
        return train_data, dev_data, test_data
    try:
        splits = [load_corpus(run["corpus"], split) for split in ("train", "dev", "test")]
    except TextprojError as error:
        _fail(str(error))
    for position, split in ((1, "dev"), (2, "test")):
        if run[split]:
            splits[position] = _read(Path(run[split]), columns=columns)
    return splits[0], splits[1], splits[2]


def _warn_blank_texts(
    train_data: Dataset, dev_data: Dataset | None, test_data: Dataset | None
) -> None:
    """Warn about empty or white-space-only texts (they project to all-zero bits)."""
    for data in (train_data, dev_data, test_data):
        if data is not None and (blank := blank_texts(data)):
            _warn(f"{data.source}: {blank} of {len(data)} texts are empty or white space only")


def _print_summary(metrics: dict, output: Path) -> None:
    """Scores of both networks: accuracy for single-label runs; micro-F1 (what early stopping
    uses) and subset accuracy (exact label sets) for multi-label ones."""
    multi = metrics.get("multi_label", False)
    columns = (
        [
            ("dev", "micro_f1", "dev micro-F1"),
            ("test", "micro_f1", "test micro-F1"),
            ("test", "accuracy", "test exact-set acc"),
        ]
        if multi
        else [("dev", "accuracy", "dev acc"), ("test", "accuracy", "test acc")]
    ) + [("test", "macro_f1", "test macro-F1")]
    table = Table(title=f"textproj on {metrics['corpus']}")
    table.add_column("network", no_wrap=True)
    for *_, title in columns:
        table.add_column(title, justify="right")
    table.add_column("bytes", justify="right", no_wrap=True)
    sizes = {"projection": metrics.get("model_bytes"), "trainer": metrics.get("trainer_bytes")}
    if None not in sizes.values():
        sizes["ensemble"] = sizes["projection"] + sizes["trainer"]
    bits = metrics.get("config", {}).get("train", {}).get("weight_bits", 8)
    rows = [("projection", f"on-device (int{bits})"), ("trainer", "trainer")]
    if "ensemble" in metrics:  # runs before the ensemble have none
        rows.append(("ensemble", "trainer + on-device"))
    for network, title in rows:
        scores = metrics[network]
        table.add_row(
            title,
            *(f"{scores[split][key]:.4f}" if split in scores else "-" for split, key, _ in columns),
            f"{sizes[network]:,}" if sizes.get(network) is not None else "-",
        )
    console = Console(emoji=False, highlight=False)
    console.print(table)
    extras = []  # what the defaults added for a small set, or the options asked for
    if transfer := metrics.get("transfer_texts"):
        extras.append(
            f"{transfer:,} transfer texts in the distillation term (--augment, --unlabeled)"
        )
    if consistency := metrics.get("consistency"):
        extras.append(f"R-Drop at {consistency:g} (--consistency)")
    if extras:
        console.print(f"with {'; '.join(extras)}")
    console.print(f"{metrics['train_seconds']:.1f} s; written to {output}/")


@app.command(
    cls=_Command,
    epilog=_examples(
        "textproj evaluate textproj-model   # the test split it was trained on",
        "textproj evaluate mine --test my-test.csv --confusion --plot confusion.png",
        "textproj evaluate mine --test my-test.csv --predictions out.tsv --json",
    ),
)
def evaluate(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="model.tpn or a directory holding one.")
    ],
    corpus: Annotated[
        str | None,
        typer.Option(
            help="Bundled corpus (its test split) [default: the one the model was trained on]."
        ),
    ] = None,
    test_file: Annotated[
        Path | None, typer.Option("--test", help="Labelled file to score.")
    ] = None,
    text_column: TextColumnOption = TEXT_COLUMN,
    label_column: LabelColumnOption = LABEL_COLUMN,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print everything as one JSON object.")
    ] = False,
    confusion: Annotated[
        bool,
        typer.Option(
            "--confusion",
            help="Print the whole confusion matrix too (not with --json: it holds it).",
        ),
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write the confusion matrix as a PNG heat map here.")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="Write each text, gold and predicted label here (.tsv, .csv or .jsonl; .gz "
            "after one of them gzips it)."
        ),
    ] = None,
    ensemble: EnsembleOption = False,
) -> None:
    """Score a model on labelled data: accuracy, macro-F1, per-label precision/recall/F1, the
    confusion matrix and the most confused label pairs, and labels the model never saw."""
    from textproj.evaluation import (
        check_plottable,
        check_plotting,
        plot_confusion,
        predictions_format,
        render_text,
        write_predictions,
    )
    from textproj.evaluation import evaluate as score

    if corpus is not None and test_file is not None:
        _usage("give exactly one of --corpus or --test")
    if as_json and confusion:
        _usage("--confusion adds the whole matrix to the text report; --json holds it already")
    _refuse_unread_columns((text_column, label_column), {"--test": test_file})
    _refuse_columnless_file((text_column, label_column), "--test", test_file)
    if plot is not None and plot.suffix.lower() != ".png":
        _usage(f"--plot writes a PNG image: give a FILE.png, not {plot}")
    if predictions is not None:
        try:
            predictions_format(predictions)
        except ConfigError as error:
            _usage(f"--predictions {error}")
    try:
        for option, target in (("--predictions", predictions), ("--plot", plot)):
            if target is not None:
                refuse_a_directory(target, f"{option} {target}")
        if plot is not None:
            check_plotting(plot)
        if test_file is not None:
            check_data_file(test_file)  # before the model is loaded (its kernels compiled)
        elif corpus is not None:
            corpus_path(corpus, "test")  # an unknown name too
    except TextprojError as error:
        _fail(str(error))
    if corpus is None and test_file is None:
        corpus = _trained_on(model)
    classifier = _load_ensemble(model) if ensemble else _load_model(model)
    if plot is not None:
        try:
            check_plottable(plot, classifier.multi_label)  # before the test set is scored
        except TextprojError as error:
            _fail(str(error))
    if test_file is not None:
        data = _read(test_file, classifier.multi_label, (text_column, label_column))
    else:
        try:
            data = load_corpus(corpus, "test")
        except TextprojError as error:
            _fail(str(error))
        if classifier.multi_label:
            data = Dataset(data.texts, [(label,) for label in data.labels], data.source)
    report, predicted, probabilities = score(classifier, data)
    try:
        if predictions is not None:
            write_predictions(predictions, data, predicted, probabilities, classifier.labels)
        if plot is not None:
            plot_confusion(report, plot, f"{model} on {data.source}")
    except (TextprojError, OSError) as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    typer.echo(render_text(report, data.source, confusion))
    unseen = report["unseen_labels"]
    if unseen:
        _warn(
            f"{report['unseen_examples']} examples carry {len(unseen)} labels the model "
            f"was not trained on (always counted wrong): {', '.join(unseen[:10])}"
            + (" …" if len(unseen) > 10 else "")
        )


def _trained_on(model: Path) -> str:
    """The bundled corpus ``model`` was trained on, from its run's metrics.json (read before
    the model loads, as evaluate's other checks), or a usage error asking for --corpus or
    --test; says on stderr which corpus it scores on."""
    from textproj.model_file import describe_model, model_path

    try:
        file_bytes = describe_model(model)["file_bytes"]  # reads the header, compiles nothing
    except TextprojError as error:
        _fail(str(error))
    path = model_path(model)
    metrics = _run_metrics(path, file_bytes)
    if metrics is None:
        _usage(
            f"give --corpus or --test (no {METRICS_NAME} of this model beside {path} says "
            "what it was trained on)"
        )
    trained_on = metrics.get("corpus")
    if trained_on not in CORPORA:
        _usage("give --corpus or --test (the model was not trained on a bundled corpus)")
    _stderr().print(f"scoring on {trained_on}'s test split, the corpus {model} was trained on")
    return trained_on


def _refuse_bad_sources(texts: list[str] | None, input_file: Path | None, text_column: str) -> None:
    """predict's usage errors for where its texts come from, and a missing or unopenable
    --input file: all before the model loads (its kernels may compile for 15 s first)."""
    _refuse_columnless_file((text_column, LABEL_COLUMN), "--input", input_file)
    if texts and input_file is not None:
        _usage("give texts as arguments or with --input, not both")
    if input_file is not None and str(input_file) != "-":
        try:
            check_data_file(input_file)
        except TextprojError as error:
            _fail(str(error))


def _texts(
    texts: list[str] | None, input_file: Path | None, text_column: str = TEXT_COLUMN
) -> list[str]:
    """The texts to classify (:func:`_refuse_bad_sources` has checked where from): arguments,
    or --input's (``data.iter_texts``: a data file's text column, record by record, else its
    lines; ``-``: stdin), or stdin's lines."""
    if texts:
        _warn_a_file_given_as_text(texts)
        return texts
    try:
        if input_file is None or str(input_file) == "-":
            return read_lines(sys.stdin.buffer.read(), "stdin")
        read = list(iter_texts(input_file, text_column=text_column))
    except TextprojError as error:
        _fail(str(error))
    if not read:  # every format alike (empty, .gz of nothing, header only); stdin stays silent
        _warn(f"{input_file}: no texts to predict")
    return read


def _warn_a_file_given_as_text(texts: list[str]) -> None:
    """One warning if a TEXT argument is an existing file's path (``predict MODEL notes.txt``,
    --input forgotten): it is predicted as a text, as documented, which is seldom what was
    meant. ``os.path.isfile``: a text too long for a path is no file, not an OSError."""
    named = next((text for text in texts if os.path.isfile(text)), None)
    if named is not None:
        what = "text column" if has_columns(named) else "lines"
        _warn(
            f"{named!r} is a file here; it is predicted as a text (read its {what} with "
            f"--input {shlex.quote(named)})"
        )


def _chosen(
    classifier: Classifier | EnsembleModel,
    row: np.ndarray,
    k: int | None,
    threshold: float | None,
) -> list[int]:
    """Label columns to print for one text, most probable first: the prediction (multi-label:
    every label at or above its threshold), or the top ``k``, cut at ``threshold``."""
    order = np.argsort(-row, kind="stable")
    if classifier.multi_label:
        cut = classifier.thresholds if threshold is None else threshold
        order = [j for j in order if row[j] >= np.broadcast_to(cut, row.shape)[j]]
        return list(order[:k]) if k is not None else list(order)
    chosen = list(order[: k or 1])
    return [j for j in chosen if threshold is None or row[j] >= threshold]


@app.command(
    cls=_Command,
    epilog=_examples(
        'textproj predict textproj-model "I lost my card" "how do I top up?"',
        'echo "my card was declined" | textproj predict textproj-model --json',
        "textproj predict textproj-model -k 3 --input texts.txt",
        "textproj predict textproj-model --input my-test.csv  # its text column",
    ),
)
def predict(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="model.tpn or a directory holding one.")
    ],
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TEXTS",
            help="Texts (a file's path too is a text: read a file with --input); none: one per "
            "line from --input or stdin.",
        ),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="File of texts, one per line (UTF-8; - is stdin; fastText __label__ tokens "
            "dropped), or a .tsv/.csv/.jsonl[.gz] data file's text column, read as training "
            "reads it (labels ignored). A file with no texts prints nothing and a warning.",
        ),
    ] = None,
    text_column: TextColumnOption = TEXT_COLUMN,
    k: Annotated[
        int | None,
        typer.Option("-k", min=1, help="Print the k most probable labels [default: 1]."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Print only labels at least this probable (multi-label: instead of the "
            "thresholds stored in the model).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help=f"JSON lines with the top {JSON_TOP} probabilities (with -k, the top k).",
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Show how much each token drove the label (token design)."),
    ] = False,
    ensemble: EnsembleOption = False,
) -> None:
    """Print each text's predicted label and its probability, one line per text.

    Plain output: label and probability, tab-separated (with -k, several pairs). A blank or
    white-space-only line gets no label: an empty line, or "label": null in JSON. Lines split
    at \\n (a \\r before it is dropped); bytes that are not UTF-8 are an error naming the line.
    """
    if explain and ensemble:
        _usage("--explain explains the on-device model; it does not go with --ensemble")
    _refuse_bad_sources(texts, input_file, text_column)
    classifier = _load_ensemble(model) if ensemble else _load_model(model)
    if explain and classifier.design != "token":
        _usage(f"--explain needs a token-design model; {model} is a {classifier.design} model")
    texts = _texts(texts, input_file, text_column)
    present = [i for i, text in enumerate(texts) if not is_blank(text)]
    probabilities = np.zeros((len(texts), len(classifier.labels)), dtype=np.float32)
    if present:
        probabilities[present] = classifier.predict_proba([texts[i] for i in present])
    present_set = set(present)
    for i, (text, row) in enumerate(zip(texts, probabilities, strict=True)):
        blank = i not in present_set
        chosen = [] if blank else _chosen(classifier, row, k, threshold)
        if as_json:
            top = np.argsort(-row, kind="stable")[: k or JSON_TOP]
            label: Any = [classifier.labels[j] for j in chosen]
            if not classifier.multi_label:
                label = label[0] if label else None
            record: dict[str, Any] = {
                "text": text,
                "label": None if blank else label,
                "probabilities": {}
                if blank
                else {classifier.labels[j]: round(float(row[j]), 6) for j in top},
            }
            if explain:
                record["explanation"] = _explanation(classifier, text, chosen, blank)
            typer.echo(json.dumps(record, ensure_ascii=False))
            continue
        typer.echo("\t".join(f"{classifier.labels[j]}\t{row[j]:.4f}" for j in chosen))
        if explain and chosen:
            shares = classifier.explain(text, classifier.labels[chosen[0]]).top(JSON_TOP)
            typer.echo("  tokens: " + ", ".join(f"{tok} {w:+.2f}" for tok, w in shares))


def _explanation(
    classifier: Classifier, text: str, chosen: list[int], blank: bool
) -> list[list[Any]]:
    if blank or not chosen:
        return []
    explanation = classifier.explain(text, classifier.labels[chosen[0]])
    return [
        [token, round(float(w), 4)]
        for token, w in zip(explanation.tokens, explanation.weights, strict=True)
    ]


@app.command(cls=_Command)
def info(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="model.tpn or a directory holding one.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="The whole header and tensor table as JSON.")
    ] = False,
) -> None:
    """Show what is inside a model file: labels, projection, network, tensors and bytes (and the
    run's scores when its metrics.json is beside it)."""
    from textproj.model_file import describe_model, model_path

    try:
        description = describe_model(model)
    except TextprojError as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(description, indent=2, ensure_ascii=False))
        return
    metrics = _run_metrics(model_path(model), description["file_bytes"])
    scores = metrics.get("projection") if metrics else None
    typer.echo(_model_summary(model_path(model), description, scores))


def _run_metrics(path: Path, file_bytes: int) -> dict[str, Any] | None:
    """The metrics.json of the run that wrote the model file ``path``, if it lies beside it
    (and is that model's: its model_bytes match), else None."""
    metrics_file = path.parent / METRICS_NAME
    if not metrics_file.is_file():
        return None
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        if isinstance(metrics, dict) and metrics.get("model_bytes") == file_bytes:
            return metrics
    except (OSError, ValueError):
        _warn(f"{metrics_file}: unreadable, so it is not used")
    return None


POOLING_NAMES = {"max_pool": "max pooling", "mean_pool": "mean pooling"}  # info's network line


def _model_summary(path: Path, description: dict[str, Any], scores: dict[str, Any] | None) -> str:
    """``textproj info``'s text: one line per part of the model, then its tensors."""
    projector, network = description["projector"], description["network"]
    features = projector["features"]
    labels = description["labels"]
    shown = ", ".join(labels[:6]) + (f", … ({len(labels) - 6} more)" if len(labels) > 6 else "")
    kind = "multi-label" if description["multi_label"] else "single-label"
    t, d = projector["num_projections"], projector["bits_per_projection"]
    per = " per token" if network["design"] == "token" else ""
    chars = "off"
    if features["char_ngram_max"]:
        chars = f"{features['char_ngram_min']}–{features['char_ngram_max']}"
    shape = ", ".join(
        POOLING_NAMES[key]
        if key in POOLING_NAMES
        else f"{key} {','.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in network.items()
        if key not in ("design", "n_bits", "n_labels") and value is not False
    )
    dtypes = sorted({tensor["dtype"] for tensor in description["tensors"]})
    weights = sum(tensor["bytes"] for tensor in description["tensors"])
    lines = [
        f"file        {path}: {description['file_bytes']:,} bytes (format "
        f"{description['format_version']}, Unicode {description['unicode_version']})",
        f"labels      {len(labels)}, {kind}: {shown}",
        f"projection  {t} × {d} = {t * d:,} bits{per}, hash seed {projector['seed']}",
        f"features    word 1–{features['word_ngrams']}-grams, skip-grams up to "
        f"{features['skip_grams']}, character n-grams {chars}, at most {features['max_tokens']} "
        "tokens",
        f"network     {network['design']} design: {shape}; tensors {', '.join(dtypes)}",
    ]
    if scores is not None:
        parts = [
            f"{split} accuracy {scores[split]['accuracy']:.4f}"
            for split in ("dev", "test")
            if isinstance(scores.get(split), dict) and "accuracy" in scores[split]
        ]
        if parts:
            lines.append(f"scores      {', '.join(parts)} ({METRICS_NAME})")
    lines += ["", f"{'tensor':<22} {'dtype':<8} {'shape':<14} {'bytes':>8}"]
    for tensor in description["tensors"]:
        dims = "×".join(map(str, tensor["shape"]))
        lines.append(f"{tensor['name']:<22} {tensor['dtype']:<8} {dims:<14} {tensor['bytes']:>8,}")
    header = description["file_bytes"] - weights
    lines.append(
        f"{'weights':<22} {'':<8} {'':<14} {weights:>8,}  (header and checksum {header:,})"
    )
    return "\n".join(lines)


def _grid_help(key: str) -> str:
    """The default grid values of one sweep axis, per design, for its option's help."""
    from textproj.sweep import default_grid

    return "; ".join(
        f"{','.join(map(str, default_grid(TrainConfig(design=d))[key]))} ({d})" for d in DESIGNS
    )


@app.command(
    cls=_Command,
    epilog=_examples(
        "textproj sweep --corpus sentiment_sentences --epochs 4",
        "textproj sweep --train my.csv -T 16,48 -d 8,16 --widths 64 --output mine",
    ),
)
def sweep(
    corpus: Annotated[
        str | None,
        typer.Option(help=f"Bundled corpus (train, dev, test splits) [default: {DEFAULT_CORPUS}]."),
    ] = None,
    train_file: Annotated[
        Path | None, typer.Option("--train", help="Your own training file instead of a corpus.")
    ] = None,
    dev_file: Annotated[
        Path | None, typer.Option("--dev", help="With --train: dev file (default: carved off).")
    ] = None,
    test_file: Annotated[
        Path | None, typer.Option("--test", help="With --train: test file to score.")
    ] = None,
    text_column: TextColumnOption = TEXT_COLUMN,
    label_column: LabelColumnOption = LABEL_COLUMN,
    projections: Annotated[
        str | None,
        typer.Option(
            "--projections",
            "-T",
            help=f"T values, comma-separated [default: {_grid_help('projections')}].",
        ),
    ] = None,
    bits: Annotated[
        str | None,
        typer.Option(
            "--bits", "-d", help=f"d values, comma-separated [default: {_grid_help('bits')}]."
        ),
    ] = None,
    widths: Annotated[
        str | None,
        typer.Option(
            help="Hidden widths (text design) or bottlenecks (token design), comma-separated "
            f"[default: {_grid_help('widths')}]."
        ),
    ] = None,
    weight_bits: Annotated[
        str,
        typer.Option(
            help="Bits per layer weight in model.tpn, comma-separated: "
            f"{' and/or '.join(map(str, WEIGHT_BITS))}."
        ),
    ] = str(DEFAULTS.weight_bits),
    design: Annotated[Design, typer.Option(help="Projection network.")] = DEFAULT_DESIGN,
    epochs: Annotated[
        int | None,
        typer.Option(help=f"Maximum epochs per grid point [default: as train, {EPOCHS} or more]."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Train on a random sample of this many texts.")
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads per training run.")] = 1,
    output: Annotated[
        Path, typer.Option(help="Folder for sweep.csv and sweep.png (replaced whole).")
    ] = Path("sweep"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the output folder of another sweep.")
    ] = False,
) -> None:
    """Accuracy against bits and model bytes over a grid of T, d, width and weight bits: writes
    CSV and PNG."""
    from textproj.sweep import (
        SWEEP_FILES,
        default_grid,
        grid_configs,
        refuse_repeats,
        sample,
        sweep_to_folder,
    )

    _refuse_mixed_sources(corpus, train_file, dev_file, test_file)
    _refuse_unread_columns((text_column, label_column), {"--train": train_file})
    labelled = {"--train": train_file, "--dev": dev_file, "--test": test_file}
    _refuse_columnless_files((text_column, label_column), labelled)
    base = _config({"epochs": epochs, "threads": threads, "design": design.value})
    given = {"projections": projections, "bits": bits, "widths": widths}
    grid = {
        **default_grid(base),
        **{
            key: _parse_ints(value, f"--{key}") for key, value in given.items() if value is not None
        },
        "weight_bits": _parse_ints(weight_bits, "--weight-bits"),
    }
    if bad := [b for b in grid["weight_bits"] if b not in WEIGHT_BITS]:
        _usage(f"--weight-bits takes values of {WEIGHT_BITS}, not {bad[0]}")
    try:
        refuse_repeats({f"--{key.replace('_', '-')}": values for key, values in grid.items()})
    except ConfigError as error:
        _usage(str(error))
    try:
        grid_configs(base, **grid)
    except ConfigError as error:
        _usage(_sweep_names(str(error)))
    try:
        data_files = [path for path in (train_file, dev_file, test_file) if path is not None]
        check_output_dir(output, force=force, inputs=data_files, marks=SWEEP_FILES, kind="sweep")
        for path in data_files:  # before any is read, as train checks its files
            check_data_file(path)
    except TextprojError as error:
        _fail(_sweep_names(str(error)))
    if train_file is not None:
        files = {"corpus": None, "train": train_file, "dev": dev_file, "test": test_file}
        train_data, dev_data, test_data = _run_data(
            {**files, "columns": [text_column, label_column]}, False
        )
        name = str(train_file)
    else:
        name = corpus or DEFAULT_CORPUS
        train_data, dev_data, test_data = _run_data(
            {"corpus": name, "dev": None, "test": None}, False
        )
    train_data = sample(train_data, limit, base.seed)
    _warn_blank_texts(train_data, dev_data, test_data)
    console = Console(emoji=False, highlight=False)
    cap = f", at most {epochs} epochs" if epochs else ""
    try:
        with _warnings_as_lines(_sweep_names):
            paths = sweep_to_folder(
                train_data, dev_data, test_data, output, base=base, force=force,
                title=f"{name}, {base.design} design{cap}", **grid,
                on_result=lambda row: console.print(
                    f"T={row['T']} d={row['d']} width={row['width']} int{row['weight_bits']}: "
                    f"dev acc {row['dev_accuracy']:.4f}, "
                    f"{row['model_bytes']:,} bytes", highlight=False,
                ),
            )  # fmt: skip
    except TextprojError as error:
        _fail(_sweep_names(str(error)))
    console.print(f"written: {paths[0]}, {paths[1]}")


@app.command(cls=_Command)
def export(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="model.tpn or a directory holding one.")
    ],
    c: Annotated[
        Path | None, typer.Option("--c", help="Write the C runtime, model and example here.")
    ] = None,
    wasm: Annotated[
        Path | None, typer.Option("--wasm", help="Write textproj.wasm and a web page here.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a directory holding other files than a previous export."
        ),
    ] = False,
) -> None:
    """Export a model for devices: C99 sources and example (--c), or a WebAssembly page (--wasm).

    Each directory is replaced whole: a missing or empty one, or a previous export of the same
    kind; one holding other files only with --force."""
    from textproj.export import (
        check_export_dir,
        check_wasm_tools,
        compile_command,
        export_c,
        export_wasm,
    )
    from textproj.model_file import model_path

    if c is None and wasm is None:
        _usage("give --c DIR, --wasm DIR or both")
    if c is not None and wasm is not None and c.resolve() == wasm.resolve():
        _usage(f"--c and --wasm name the same directory ({c}); give each its own")
    try:
        model_path(model)  # a directory without model.tpn is named as the model, not a target
        if wasm is not None:
            check_wasm_tools()  # before --c's export is written
    except TextprojError as error:
        _fail(str(error))
    targets = (("--c", c, "C", export_c), ("--wasm", wasm, "WebAssembly", export_wasm))
    for option, directory, kind, _ in targets:
        if directory is not None:
            try:
                check_export_dir(directory, kind, model, force)
            except TextprojError as error:
                _fail(f"{option} {_option_names(str(error))}")
    try:
        with _warnings_as_lines():  # each target loads the model: its warnings show once
            for option, directory, _, write in targets:
                if directory is None:
                    continue
                written = write(model, directory, force)
                if option == "--c":
                    typer.echo(f"written: {written} (build: cd {c} && {compile_command()})")
                else:
                    typer.echo(
                        f"written: {written} (serve it: python -m http.server --directory "
                        f"{wasm}, then open http://localhost:8000)"
                    )
    except (TextprojError, OSError) as error:
        _fail(_option_names(str(error)))


if __name__ == "__main__":  # python -m textproj.cli, as python -m textproj
    app(prog_name="textproj")
