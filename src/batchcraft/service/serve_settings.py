"""The settings of ``batchcraft serve`` that do not come from flags alone: the TOML
config file (`apply_config_file`) and the datasets to serve (`dataset_paths`).

Every flag (`batchcraft.service.serve_arguments`) may also come from a TOML file
(``--config``) with the same names (``max_in_flight = 16``) and a ``[datasets]``
table (``news = "curated/"``, or ``news = ["curated/", "delta/"]`` for a dataset and
the deltas curated against it); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from batchcraft.errors import ConfigError
from batchcraft.service.serve_arguments import add_serve_arguments
from batchcraft.storage import is_url, resolve

_PATH_SETTINGS = {  # flags of type Path: config file strings become paths
    "port_file",
    "checkpoint_dir",
    "token_file",
    "tls_cert",
    "tls_key",
    "provenance_dir",
    "cache_dir",
    "metrics_token_file",
    "metrics_tls_cert",
    "metrics_tls_key",
}


def dataset_paths(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(name, paths or URLs) pairs from positional paths, ``--name`` and the config file.

    A positional dataset without a name is named after its directory. ``NAME=A,B`` (and
    ``NAME = ["A", "B"]`` in the config file) serves several directories as one dataset:
    a curated dataset followed by the deltas curated ``--against`` it.
    """
    bare = [n for n in args.name if "=" not in n]
    if len(bare) > len(args.paths):
        raise ConfigError(f"--name {bare[len(args.paths)]!r} has no dataset path to name")
    pairs = [
        (bare[i] if i < len(bare) else resolve(str(path)).name, [str(path)])
        for i, path in enumerate(args.paths)
    ]
    for item in args.name:
        if "=" in item:
            name, _, paths = item.partition("=")
            pairs.append((name, [path for path in paths.split(",") if path]))
    for name, paths in getattr(args, "datasets", {}).items():
        listed = paths if isinstance(paths, list) else [paths]
        if not listed or not all(isinstance(path, str) for path in listed):
            raise ConfigError(f"datasets.{name} in {args.config} must be a path or a list of paths")
        pairs.append((name, listed))
    for name, paths in pairs:
        if not paths:
            raise ConfigError(f"dataset {name!r} names no directory")
    return pairs


def apply_config_file(args: argparse.Namespace) -> None:
    """Fill flags left at their defaults from the TOML file ``args.config``.

    The defaults come from the serve flags themselves, so this works the same for
    ``batchcraft serve`` and ``python -m batchcraft.service.cli``.
    """
    defaults = argparse.ArgumentParser()
    add_serve_arguments(defaults)
    try:
        values: dict[str, Any] = tomllib.loads(args.config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {args.config}: {error}") from error
    args.datasets = values.pop("datasets", {})
    if not isinstance(args.datasets, dict):
        raise ConfigError(
            f'datasets in {args.config} must be a table of name = "path" (or a list of paths)'
        )
    kinds = {action.dest: _setting_kind(action) for action in defaults._actions}
    for key, value in values.items():
        dest = key.replace("-", "_")
        if not hasattr(args, dest) or dest in {"paths", "name", "config"}:
            raise ConfigError(f"unknown setting {key!r} in {args.config}")
        kind = kinds.get(dest, str)
        accepted = (int, float) if kind is float else kind  # 2 for a float setting is fine
        if not isinstance(value, accepted) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"{key} = {value!r} in {args.config}: expected {kind.__name__}")
        url = is_url(str(value))
        if dest in _PATH_SETTINGS and url and dest != "checkpoint_dir":
            raise ConfigError(f"{key} = {value!r} in {args.config}: must be a local path")
        if getattr(args, dest) == defaults.get_default(dest):
            path = dest in _PATH_SETTINGS and not url
            setattr(args, dest, Path(str(value)) if path else value)


def _setting_kind(action: argparse.Action) -> type:
    """The TOML type of a flag's value: bool for switches, else the flag's type (paths are
    strings in TOML)."""
    if isinstance(action, argparse._StoreTrueAction):
        return bool
    if action.type in (int, float):
        return action.type  # type: ignore[return-value]
    return str
