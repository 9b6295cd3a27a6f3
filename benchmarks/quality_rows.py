"""What every experiment of `selection_quality.py` returns and measures with: a table
`Row` (the selector's value next to its baseline's), unit rows and timers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    """One measured claim: the selector's value next to its baseline's."""

    selector: str
    metric: str
    value: float
    baseline: str
    baseline_value: float
    goal: str
    passed: bool


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def median_ms(function: Callable[[], object], repeats: int) -> float:
    """Median wall-clock milliseconds per call."""
    return timed_ms(function, repeats)[0]


def timed_ms(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds per call (CPU time is robust to other load)."""
    function()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)
