"""Where selector math runs: the GPU torch sees, and bf16 on CPUs that multiply it fast.

``device="auto"`` is CUDA when torch sees a GPU, else the CPU. ``precision="auto"``
is bfloat16 only on CPUs with AMX (``amx_bf16`` in ``/proc/cpuinfo``), where a bf16
matmul runs several times faster than fp32, and on GPUs; elsewhere fp32 (on
AVX-512-BF16 without AMX a 2,560 × 384 bf16 Gram matrix took as long as numpy's fp32
``syrk``; on AVX2 bf16 is emulated and slower); JEST's products, whose fp32 alternative
is a torch matmul, also take bf16 on AVX-512-BF16 CPUs for towers of 256-d or wider. bf16 is used for the products
only; norms, sums and the greedy stay fp32 (a facility-location objective within
0.01% of fp32's, measured on 2,560-row pools).

No GPU is available where batchcraft is tested: the CUDA path is small and untested.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from batchcraft._deps import require
from batchcraft.errors import ConfigError, MissingDependencyError

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; none elsewhere)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bf16."""
    return "amx_bf16" in _cpu_flags()


def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU has AVX-512 bf16 dot products (AMX CPUs have them too)."""
    return "avx512_bf16" in _cpu_flags()


def torch_device(device: Device) -> Any:
    """The torch device ``device`` names (``auto``: CUDA if torch sees a GPU).

    Raises:
        ConfigError: ``cuda`` asked for where torch sees no GPU.
    """
    torch = require("torch")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch sees no GPU here; use 'auto' or 'cpu'")
    return torch.device(device)


AVX512_BF16_MIN_WIDTH = 256
"""Narrowest rows whose torch matmul bf16 speeds up on AVX-512-BF16 without AMX (JEST's
towers, 1,280-row pools, one thread: 256-d 16 against 22-27 ms, 384-d 20-24 against
35-38 ms; 128-d and narrower no faster, the conversion eats the gain)."""


def uses_bf16(precision: Precision, device: Any, matmul_width: int | None = None) -> bool:
    """Whether ``precision`` means bf16 products on ``device``.

    ``matmul_width``: the products are torch matmuls of rows this wide (for coreset's
    Gram matrix, None: its fp32 alternative is numpy's ``syrk``, which bf16 beats only
    with AMX); AVX-512-BF16 then speeds up rows of `AVX512_BF16_MIN_WIDTH` or more.
    """
    if precision == "auto":
        wide = matmul_width is not None and matmul_width >= AVX512_BF16_MIN_WIDTH
        return device.type == "cuda" or cpu_has_amx() or (wide and cpu_has_avx512_bf16())
    return precision == "bf16"


def warm_up() -> None:
    """Import torch and run one product now (about a second and a half, once per process),
    so that a job's first coreset selection does not pay for it; nothing if torch is not
    installed (the selectors that need it say so when used)."""
    try:
        torch = require("torch")
    except MissingDependencyError:
        return
    torch.ones(2, 2) @ torch.ones(2, 2)
