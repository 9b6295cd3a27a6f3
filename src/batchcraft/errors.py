"""The error hierarchy. Every error batchcraft raises on purpose derives from BatchcraftError."""


class BatchcraftError(Exception):
    """Base class of all batchcraft errors."""


class InputError(BatchcraftError):
    """The input corpus cannot be read as asked (missing file, wrong column, unknown format)."""


class ConfigError(BatchcraftError, ValueError):
    """A parameter is out of range or a configuration file is invalid."""


class OutputError(BatchcraftError):
    """The output location cannot be written (exists without --overwrite, not writable)."""


class DatasetError(BatchcraftError):
    """A curated dataset is missing, corrupt or violates the contract."""


class MissingDependencyError(BatchcraftError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
