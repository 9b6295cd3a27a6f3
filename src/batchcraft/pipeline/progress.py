"""Per-stage progress: a live line on a terminal, plain log lines otherwise; timings kept."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

logger = logging.getLogger("batchcraft.pipeline")


@dataclass
class StageClock:
    """Runs named stages, logs them and keeps their wall-clock seconds."""

    total_stages: int
    timings: dict[str, float] = field(default_factory=dict)
    interactive: bool = field(default_factory=lambda: sys.stderr.isatty())

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, int]]:
        """Time a stage; the body may put row counts into the yielded dict for the log line."""
        number = len(self.timings) + 1
        counts: dict[str, int] = {}
        if self.interactive:
            sys.stderr.write(f"\r\x1b[K[{number}/{self.total_stages}] {name} ...\n")
            sys.stderr.flush()
        else:
            logger.info("stage %d/%d %s: started", number, self.total_stages, name)
        start = time.perf_counter()
        yield counts
        elapsed = time.perf_counter() - start
        self.timings[name] = round(elapsed, 3)
        summary = ", ".join(f"{key}={value:,}" for key, value in counts.items())
        line = f"[{number}/{self.total_stages}] {name}: done in {elapsed:.1f} s" + (
            f" ({summary})" if summary else ""
        )
        if self.interactive:
            sys.stderr.write(f"\r\x1b[K{line}\n")
            sys.stderr.flush()
        else:
            logger.info(
                "stage %d/%d %s: done in %.1f s %s",
                number,
                self.total_stages,
                name,
                elapsed,
                summary,
            )
