"""The error hierarchy. Every error batchcraft raises on purpose derives from BatchcraftError.

Messages that repeat a value someone else chose (a client, a file) cut it with
`truncated_repr`, so an error never carries unbounded input.
"""

from __future__ import annotations

from typing import Any

ECHO_LIMIT = 64
"""Characters of a client-chosen value that a message or a log line repeats."""


def truncated_repr(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)``, cut after ``limit`` characters (then "…") when longer.

    Example:
        >>> truncated_repr("x" * 100, limit=8)
        "'xxxxxxx…"
    """
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class BatchcraftError(Exception):
    """Base class of all batchcraft errors."""


class InputError(BatchcraftError):
    """The input corpus cannot be read as asked (missing file, wrong column, unknown format)."""


class ConfigError(BatchcraftError, ValueError):
    """A parameter is out of range or a configuration file is invalid."""


class OutputError(BatchcraftError):
    """The output location cannot be written (exists without --overwrite, not writable)."""


class StorageError(BatchcraftError):
    """A store cannot be used: its filesystem is not installed, it cannot be reached, or
    it refused the credentials."""


class DatasetError(BatchcraftError):
    """A curated dataset is missing, corrupt or violates the contract."""


class MissingDependencyError(BatchcraftError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
