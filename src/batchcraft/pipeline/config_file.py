"""Reading a ``curate`` TOML config file: the keys mirror the CLI flags and are the
CurateConfig field names (read at the edge, by the command, never deep inside the job)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from batchcraft.errors import ConfigError
from batchcraft.pipeline.config import CurateConfig


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file mirroring the CLI flags (keys are CurateConfig field names)."""
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    values = values.get("curate", values)
    known = {f.name for f in dataclasses.fields(CurateConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown keys in {path}: {unknown}; valid keys: {sorted(known)}")
    return values
