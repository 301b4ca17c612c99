"""Command-line interface, installed as the ``textproj`` console script.

Keep module-level imports light (no torch): ``textproj --help`` should start instantly,
so commands that need heavy libraries import them inside the command body.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from textproj.config import FeatureConfig, TrainConfig
from textproj.corpora import DEFAULT_CORPUS, corpus_table, load_corpus
from textproj.data import DataError, Dataset, read_dataset
from textproj.layout import CHECKPOINT_EVERY_SECONDS
from textproj.metrics import classification_scores, multilabel_scores

if TYPE_CHECKING:
    from textproj.runtime import Classifier

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Tiny vocabulary-free text classifiers (projection networks).",
)


@app.callback()
def main() -> None:
    """Group the subcommands (the app's help text comes from ``typer.Typer(help=...)``)."""
    # An explicit callback keeps subcommands as subcommands: without it, a Typer app
    # with a single command would run that command directly and `textproj corpora` fails.


@app.command()
def corpora() -> None:
    """List the bundled corpora with their task, number of labels and split sizes."""
    table = Table(title="Bundled corpora")
    table.add_column("name", no_wrap=True)
    table.add_column("task")
    for header in ("labels", "train", "dev", "test"):
        table.add_column(header, justify="right")
    for row in corpus_table():
        table.add_row(
            str(row["name"]),
            str(row["task"]),
            *(str(row[key]) for key in ("n_labels", "train", "dev", "test")),
        )
    Console().print(table)


def _fail(message: str) -> NoReturn:
    """One line on stderr and a non-zero exit: what users see instead of a traceback."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code=1)


def _field_default(name: str) -> object:
    return TrainConfig.__dataclass_fields__[name].default


def _load_model(path: Path) -> Classifier:
    from textproj.model_file import ModelFormatError
    from textproj.runtime import load

    try:
        return load(path)
    except ModelFormatError as error:
        _fail(str(error))


def _read(path: Path, multi_label: bool = False) -> Dataset:
    try:
        return read_dataset(path, multi_label=multi_label)
    except DataError as error:
        _fail(str(error))


def _parse_ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        _fail(f"{option} takes comma-separated integers, got {text!r}")


@app.command()
def train(
    corpus: Annotated[
        str | None, typer.Option(help=f"Bundled corpus to train on (default {DEFAULT_CORPUS}).")
    ] = None,
    train_file: Annotated[
        Path | None, typer.Option("--train", help="Training file (.tsv/.csv/.jsonl/.txt, .gz ok).")
    ] = None,
    dev_file: Annotated[
        Path | None, typer.Option("--dev", help="Dev file; default: carved from --train.")
    ] = None,
    test_file: Annotated[Path | None, typer.Option("--test", help="Test file to score.")] = None,
    output: Annotated[Path, typer.Option(help="Output directory.")] = Path("textproj-model"),
    design: Annotated[
        str | None,
        typer.Option(help=f"Projection network: token or text [{_field_default('design')}]."),
    ] = None,
    trainer: Annotated[
        str | None,
        typer.Option(help=f"Trainer network: ffn or lstm [{_field_default('trainer')}]."),
    ] = None,
    projections: Annotated[
        int | None, typer.Option("--projections", "-T", help="T, projection functions.")
    ] = None,
    bits: Annotated[
        int | None, typer.Option("--bits", "-d", help="d, bits per projection function.")
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="Text design: hidden widths, comma-separated.")
    ] = None,
    bottleneck: Annotated[int | None, typer.Option(help="Token design: bottleneck width.")] = None,
    filters: Annotated[int | None, typer.Option(help="Token design: channels per window.")] = None,
    epochs: Annotated[
        int | None, typer.Option(help=f"Maximum epochs [{_field_default('epochs')}].")
    ] = None,
    lambda_distill: Annotated[
        float | None,
        typer.Option(
            help=f"λ2, distillation weight; 0 trains alone [{_field_default('lambda_distill')}]."
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help=f"Distillation temperature [{_field_default('temperature')}]."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of hashing, init and shuffling.")] = None,
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a projection network jointly with its trainer; write model.tpn, trainer and metrics."""
    from textproj import checkpoint
    from textproj.training import train as run_training

    if corpus and train_file:
        _fail("give either --corpus or --train, not both")
    if resume is not None:
        try:
            state = checkpoint.read(resume)
        except ValueError as error:
            _fail(str(error))
        run, output = state["run"], resume
        config = TrainConfig.from_dict(state["config"])
        features = FeatureConfig.from_dict(state["features"])
    else:
        run = {
            "corpus": None if train_file else corpus or DEFAULT_CORPUS,
            **{
                split: str(path.resolve()) if path else None
                for split, path in (("train", train_file), ("dev", dev_file), ("test", test_file))
            },
        }
        features = FeatureConfig()
    config_overrides = {
        "design": design,
        "trainer": trainer,
        "num_projections": projections,
        "bits_per_projection": bits,
        "hidden": _parse_ints(hidden, "--hidden") if hidden else None,
        "bottleneck": bottleneck,
        "filters": filters,
        "epochs": epochs,
        "lambda_distill": lambda_distill,
        "temperature": temperature,
        "seed": seed,
        "multi_label": multi_label or None,
    }
    overrides = {k: v for k, v in config_overrides.items() if v is not None}
    if resume is not None and (overrides or corpus or train_file or dev_file or test_file):
        _fail("--resume continues a run as it was started: give no other data or model options")
    if resume is None:
        try:
            config = TrainConfig(**overrides)
        except ValueError as error:
            _fail(str(error))
    train_data, dev_data, test_data = _run_data(run, config.multi_label)
    try:
        result = run_training(
            train_data, dev_data, test_data, config=config, features=features, output_dir=output,
            corpus=run["corpus"] or run["train"], progress=not quiet, resume=resume is not None,
            run=run, checkpoint_seconds=checkpoint_every,
        )  # fmt: skip
    except ValueError as error:
        _fail(str(error))
    _print_summary(result.metrics, output)


def _run_data(run: dict, multi_label: bool) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """The train, dev and test data a run names: a bundled corpus's splits or files."""
    if run["corpus"] is None:
        train_data = _read(Path(run["train"]), multi_label)
        dev_data, test_data = (
            _read(Path(run[split]), multi_label) if run[split] else None
            for split in ("dev", "test")
        )
        return train_data, dev_data, test_data
    if multi_label:
        _fail(f"bundled corpus {run['corpus']!r} is single-label; give --train FILE")
    try:
        splits = [load_corpus(run["corpus"], split) for split in ("train", "dev", "test")]
    except (ValueError, DataError) as error:
        _fail(str(error))
    for position, split in ((1, "dev"), (2, "test")):
        if run[split]:
            splits[position] = _read(Path(run[split]))
    return splits[0], splits[1], splits[2]


def _print_summary(metrics: dict, output: Path) -> None:
    table = Table(title=f"textproj on {metrics['corpus']}")
    table.add_column("network")
    for column in ("dev acc", "test acc", "test macro-F1", "bytes"):
        table.add_column(column, justify="right")
    sizes = {"projection": metrics.get("model_bytes"), "trainer": metrics.get("trainer_bytes")}
    for network, title in (("projection", "on-device (int8)"), ("trainer", "trainer")):
        scores = metrics[network]
        test = scores.get("test", {})
        table.add_row(
            title,
            f"{scores['dev']['accuracy']:.4f}",
            f"{test['accuracy']:.4f}" if test else "-",
            f"{test['macro_f1']:.4f}" if test else "-",
            f"{sizes[network]:,}" if sizes[network] is not None else "-",
        )
    console = Console()
    console.print(table)
    console.print(f"{metrics['train_seconds']:.1f} s; written to {output}/")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="model.tpn or a directory holding one.")],
    corpus: Annotated[str | None, typer.Option(help="Bundled corpus (its test split).")] = None,
    test_file: Annotated[
        Path | None, typer.Option("--test", help="Labelled file to score.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score a model on a labelled test set: accuracy, macro-F1, and labels it never saw."""
    if (corpus is None) == (test_file is None):
        _fail("give exactly one of --corpus or --test")
    classifier = _load_model(model)
    if test_file is not None:
        data = _read(test_file, classifier.multi_label)
    else:
        try:
            data = load_corpus(corpus, "test")
        except (ValueError, DataError) as error:
            _fail(str(error))
        if classifier.multi_label:
            data = Dataset(data.texts, [(label,) for label in data.labels], data.source)
    score = multilabel_scores if classifier.multi_label else classification_scores
    scores = score(data.labels, classifier.predict(data.texts))
    known = set(classifier.labels)
    label_sets = data.labels if classifier.multi_label else [[label] for label in data.labels]
    unseen = sorted({label for labels in label_sets for label in labels if label not in known})
    scores["unseen_labels"] = unseen
    scores["unseen_examples"] = sum(not known.issuperset(labels) for labels in label_sets)
    if as_json:
        typer.echo(json.dumps(scores, ensure_ascii=False))
        return
    console = Console()
    console.print(
        f"{data.source}: accuracy {scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f}, "
        f"n {scores['n']}"
    )
    if unseen:
        console.print(
            f"[yellow]{scores['unseen_examples']} examples carry {len(unseen)} labels the model "
            f"was not trained on (always counted wrong): {', '.join(unseen[:10])}"
            + (" …" if len(unseen) > 10 else ""),
            highlight=False,
        )


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model.tpn or a directory holding one.")],
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts; none: one per line on stdin.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines with probabilities.")] = False,
) -> None:
    """Print the predicted label of each text."""
    classifier = _load_model(model)
    if not texts:
        texts = [line.rstrip("\n") for line in sys.stdin]
    probabilities = classifier.predict_proba(texts)
    labels = classifier.predict(texts)
    for text, label, row in zip(texts, labels, probabilities, strict=True):
        if as_json:
            top = np.argsort(-row)[:5]
            record = {
                "text": text,
                "label": label,
                "probabilities": {classifier.labels[i]: round(float(row[i]), 6) for i in top},
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            typer.echo(label if isinstance(label, str) else "|".join(label))


@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="model.tpn or a directory holding one.")],
) -> None:
    """Show what is inside a model file: labels, projection, network, tensors and bytes."""
    from textproj.model_file import ModelFormatError, describe_model

    try:
        description = describe_model(model)
    except ModelFormatError as error:
        _fail(str(error))
    typer.echo(json.dumps(description, indent=2, ensure_ascii=False))


@app.command()
def sweep(
    corpus: Annotated[str, typer.Option(help="Bundled corpus (train, dev, test splits).")] = (
        DEFAULT_CORPUS
    ),
    projections: Annotated[str, typer.Option("--projections", "-T", help="T values.")] = "8,16",
    bits: Annotated[str, typer.Option("--bits", "-d", help="d values.")] = "8,16",
    widths: Annotated[
        str, typer.Option(help="Hidden widths (text design) or bottlenecks (token design).")
    ] = "32,64",
    design: Annotated[
        str | None, typer.Option(help=f"token or text [{_field_default('design')}].")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs per grid point.")] = 5,
    limit: Annotated[
        int | None, typer.Option(help="Train on a random sample of this many texts.")
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads per training run.")] = 1,
    output: Annotated[Path, typer.Option(help="Folder for sweep.csv and sweep.png.")] = Path(
        "sweep"
    ),
) -> None:
    """Accuracy against bits and model bytes over a grid of T, d and width: writes CSV and PNG."""
    from textproj.sweep import sample, sweep_to_folder

    try:
        base = TrainConfig(epochs=epochs, threads=threads, **({"design": design} if design else {}))
        train_data, dev_data, test_data = (load_corpus(corpus, s) for s in ("train", "dev", "test"))
    except (ValueError, DataError) as error:
        _fail(str(error))
    grid = {
        "projections": _parse_ints(projections, "--projections"),
        "bits": _parse_ints(bits, "--bits"),
        "widths": _parse_ints(widths, "--widths"),
    }
    console = Console()
    paths = sweep_to_folder(
        sample(train_data, limit, base.seed), dev_data, test_data, output, base=base,
        title=f"{corpus}, {base.design} design, at most {epochs} epochs", **grid,
        on_result=lambda row: console.print(
            f"T={row['T']} d={row['d']} width={row['width']}: dev acc {row['dev_accuracy']:.4f}, "
            f"{row['model_bytes']:,} bytes", highlight=False,
        ),
    )  # fmt: skip
    console.print(f"written: {paths[0]}, {paths[1]}")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="model.tpn or a directory holding one.")],
    c: Annotated[
        Path | None, typer.Option("--c", help="Write the C runtime, model and example here.")
    ] = None,
    wasm: Annotated[
        Path | None, typer.Option("--wasm", help="Write textproj.wasm and a web page here.")
    ] = None,
) -> None:
    """Export a model for devices: C99 sources and example (--c), or a WebAssembly page (--wasm)."""
    from textproj.export import ExportError, compile_command, export_c, export_wasm
    from textproj.model_file import ModelFormatError

    if c is None and wasm is None:
        _fail("give --c DIR, --wasm DIR or both")
    try:
        if c is not None:
            typer.echo(f"written: {export_c(model, c)} (build: cd {c} && {compile_command()})")
        if wasm is not None:
            typer.echo(f"written: {export_wasm(model, wasm)} (serve it: python -m http.server)")
    except (ModelFormatError, ExportError, OSError) as error:
        _fail(str(error))
