"""The machine a benchmark ran on, printed at the top of its output: these machines differ
from session to session, and a ratio means little without the CPU behind it."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
from pathlib import Path

CPU_FLAGS = ("amx_tile", "amx_bf16", "avx512f", "avx512_bf16", "avx2")
"""The flags the figures depend on (bf16 matmuls, vectorised hashing)."""
LIBRARIES = ("torch", "faiss", "numpy", "pyarrow", "pyspark", "grpc")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and which of `CPU_FLAGS` it has (from /proc/cpuinfo)."""
    cpu, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return cpu, [flag for flag in CPU_FLAGS if flag in flags]


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of `LIBRARIES` (and ``extra``) that are installed, by import name."""
    versions = {}
    for name in (*LIBRARIES, *extra):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        version = getattr(module, "__version__", None)
        if version is None:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                version = "?"
        versions[name] = str(version)
    return versions


def machine_lines(extra_libraries: tuple[str, ...] = (), note: str = "") -> list[str]:
    """CPU model and flags, cores, load, and the versions of the libraries installed."""
    cpu, flags = cpu_model_and_flags()
    shown = flags or ["none of AMX/AVX-512/AVX2"]
    load = os.getloadavg()
    versions = ", ".join(
        f"{name} {version}" for name, version in library_versions(extra_libraries).items()
    )
    return [
        f"CPU: {cpu}; flags: {' '.join(shown)}; cores: {os.cpu_count()}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"Python {platform.python_version()}, {versions}{'; ' + note if note else ''}",
    ]
