"""The one base of every error textproj reports to a user as a one-line message.

The CLI catches :class:`TextprojError` and prints it; anything else is a bug and keeps its
traceback. Data-file and model-file errors (``DataError``, ``ModelFormatError``) derive from it.
"""

from __future__ import annotations


class TextprojError(Exception):
    """An input, option or file textproj refuses, with a message naming it."""


class ConfigError(TextprojError, ValueError):
    """A training or feature option out of range, or training data that cannot train a model."""


class CheckpointError(TextprojError, ValueError):
    """A checkpoint that is missing, damaged, or from another run."""
