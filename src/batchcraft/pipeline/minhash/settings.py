"""The parameters of MinHash near dedup, checked once, and the bands they lead to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchcraft.errors import ConfigError
from batchcraft.pipeline.minhash.signatures import LshBands, choose_bands

if TYPE_CHECKING:  # the config imports this module for its defaults
    from batchcraft.pipeline.config import CurateConfig

DEFAULT_THRESHOLD = 0.8
DEFAULT_NGRAM_SIZE = 5
DEFAULT_NUM_PERM = 128


@dataclass(frozen=True)
class MinhashSettings:
    """What MinHash near dedup needs to know.

    Attributes:
        threshold: Rows at Jaccard >= threshold (on their shingle sets) are duplicates.
        ngram_size: Words per shingle.
        num_perm: Budget of MinHash values per row; the bands use up to this many.
        bands: Number of LSH bands; with ``rows``, overrides `choose_bands`.
        rows: Signature values per band; with ``bands``, overrides `choose_bands`.
        seed: Seed of the MinHash functions.
    """

    threshold: float = DEFAULT_THRESHOLD
    ngram_size: int = DEFAULT_NGRAM_SIZE
    num_perm: int = DEFAULT_NUM_PERM
    bands: int | None = None
    rows: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check(0.0 < self.threshold < 1.0, f"minhash_threshold={self.threshold} must be in (0, 1)")
        _check(self.ngram_size >= 1, f"minhash_ngram_size={self.ngram_size} must be >= 1")
        _check(self.num_perm >= 1, f"minhash_num_perm={self.num_perm} must be >= 1")
        _check(
            (self.bands is None) == (self.rows is None),
            f"give both minhash_bands and minhash_rows, or neither (got bands={self.bands}, "
            f"rows={self.rows})",
        )
        if self.bands is not None and self.rows is not None:
            _check(
                self.bands >= 1 and self.rows >= 1 and self.bands * self.rows <= self.num_perm,
                f"minhash_bands={self.bands} x minhash_rows={self.rows} must be >= 1 and fit "
                f"in minhash_num_perm={self.num_perm}",
            )
        self.lsh  # noqa: B018 - a budget too small for the threshold fails here, not in Spark

    @classmethod
    def from_config(cls, config: CurateConfig) -> MinhashSettings:
        """The settings of a curation job (its ``minhash_*`` keys and seed)."""
        return cls(
            config.minhash_threshold,
            config.minhash_ngram_size,
            config.minhash_num_perm,
            config.minhash_bands,
            config.minhash_rows,
            config.seed,
        )

    @property
    def lsh(self) -> LshBands:
        """The bands: as given, else chosen for the threshold (`choose_bands`)."""
        if self.bands is not None and self.rows is not None:
            return LshBands(self.bands, self.rows)
        return choose_bands(self.threshold, self.num_perm)

    def to_dict(self) -> dict[str, Any]:
        """The parameters and the S-curve they give, as the manifest records them."""
        lsh = self.lsh
        return {
            "method": "minhash",
            "threshold": self.threshold,
            "ngram_size": self.ngram_size,
            "num_perm": lsh.num_perm,
            "bands": lsh.bands,
            "rows": lsh.rows,
            "seed": self.seed,
            "detection_probability": {
                str(j): round(float(lsh.detection_probability(j)), 4) for j in (0.5, 0.7, 0.8, 0.9)
            },
        }


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
