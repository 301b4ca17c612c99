"""``python -m textproj``: the ``textproj`` command, for an environment without its script."""

from textproj.cli import app

app(prog_name="textproj")
