"""Command-line interface, installed as the ``textproj`` console script.

Keep module-level imports light (no torch): ``textproj --help`` should start instantly,
so commands that need heavy libraries import them inside the command body.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from textproj.corpora import corpus_table

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
