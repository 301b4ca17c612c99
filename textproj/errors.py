"""The one base of every error textproj reports to a user as a one-line message.

The CLI catches :class:`TextprojError` and prints it; anything else is a bug and keeps its
traceback. Every message names what was wrong (the file and line, the field, the option). The
subclasses also derive from ``ValueError`` (the missing-file ones from ``FileNotFoundError``), so
code written against the built-in exceptions keeps working.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "CorpusNotFoundError",
    "DataError",
    "ModelFormatError",
    "ModelNotFoundError",
    "TextprojError",
]


class TextprojError(Exception):
    """An input, option or file textproj refuses, with a message naming it."""


class ConfigError(TextprojError, ValueError):
    """A training or feature option out of range, or training data that cannot train a model."""


class CheckpointError(TextprojError, ValueError):
    """A checkpoint that is missing, damaged, or from another run."""


class DataError(TextprojError, ValueError):
    """Malformed or unreadable data; the message names the file and, if known, the line."""


class CorpusNotFoundError(DataError, FileNotFoundError):
    """A bundled corpus, or one of its splits, that is not on this machine."""


class ModelFormatError(TextprojError, ValueError):
    """A model file that is missing, damaged, or not a textproj model; the message says which."""


class ModelNotFoundError(ModelFormatError, FileNotFoundError):
    """A model path that does not exist (or a directory without ``model.tpn``)."""
