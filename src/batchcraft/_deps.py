"""Imports of heavy optional dependencies with errors that say what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from batchcraft.errors import MissingDependencyError

_HINTS = {
    "faiss": "pip install 'batchcraft[cpu]' (or 'batchcraft[gpu]' for faiss-gpu)",
    "pyspark": "pip install pyspark",
    "sentence_transformers": "pip install sentence-transformers",
    "torch": "pip install torch",
    "grpc": "pip install grpcio grpcio-health-checking grpcio-reflection",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        hint = _HINTS.get(module.split(".")[0], f"pip install {module}")
        raise MissingDependencyError(f"{module} is required for this feature: {hint}") from exc
