"""batchcraft: curate training corpora offline, serve selected mini-batches online.

``batchcraft.curate(inputs, out, ...)`` curates a corpus into a dataset and writes its
report (`batchcraft.curation`); everything else lives in the subpackages.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "curate"]


def __getattr__(name: str) -> Any:
    # Lazy: `import batchcraft` (the client, the service) must not import the pipeline.
    if name == "curate":
        from batchcraft.curation import curate

        return curate
    raise AttributeError(f"module 'batchcraft' has no attribute {name!r}")
