"""The errors textproj raises for bad input: one base, :class:`TextprojError`, that the CLI catches.

Every message is one line that names what was wrong (the file and line, the field, the option).
Anything else that escapes is a bug in textproj and keeps its traceback. The classes derive from
``ValueError`` (the missing-file ones from ``FileNotFoundError`` too), so code written against
the built-in exceptions keeps working.
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


class TextprojError(ValueError):
    """Bad input to textproj (data, model file, config, checkpoint); the message says which."""


class DataError(TextprojError):
    """Malformed or unreadable data; the message names the file and, if known, the line."""


class CorpusNotFoundError(DataError, FileNotFoundError):
    """A bundled corpus, or one of its splits, that is not on this machine."""


class ModelFormatError(TextprojError):
    """A model file that is missing, damaged, or not a textproj model; the message says which."""


class ModelNotFoundError(ModelFormatError, FileNotFoundError):
    """A model path that does not exist (or a directory without ``model.tpn``)."""


class ConfigError(TextprojError):
    """A training, feature or projection setting out of range; the message names the field."""


class CheckpointError(TextprojError):
    """A checkpoint that is missing, unreadable, or from a different run."""
