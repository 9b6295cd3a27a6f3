"""The flags of ``batchcraft serve`` (`add_serve_arguments`); every help line shows its default.

`batchcraft.service.cli` parses them (also from a ``--config`` TOML file) and serves.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from batchcraft.batcher.config import DEFAULT_DEPTH, DEFAULT_STALENESS
from batchcraft.storage import is_url


def local_path(value: str) -> Path:
    """A directory the server writes in place (provenance, row caches): a local or shared
    POSIX path; a store's URL is refused rather than taken for a local directory named
    ``s3:`` (only ``--checkpoint-dir`` may be a store's, `checkpoint_location`)."""
    if is_url(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a URL: this directory must be local or on a shared POSIX "
            "filesystem (object stores hold datasets and checkpoints, not this directory)"
        )
    return Path(value)


def checkpoint_location(value: str) -> Path | str:
    """``--checkpoint-dir``: a local or shared POSIX path, or a store's URL (kept whole)."""
    return value if is_url(value) else Path(value)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` flags to ``parser``; every flag's help shows its default."""
    parser.add_argument(
        "paths",
        nargs="*",
        help="curated dataset directories: local paths or URLs (s3://, gs://, hdfs://, …), "
        "which are copied to a local cache first",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="NAME[=PATH[,PATH...]]",
        help="name of the next positional dataset, or NAME=PATH to register another one; "
        "NAME=PREV,DELTA serves a dataset and the deltas curated --against it as one "
        "(default: a dataset is named after its directory)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind, 0.0.0.0 for all (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=50051, help="port, 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--port-file", type=Path, help="write the bound port to this file (default: none)"
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=checkpoint_location,
        help="persist job state here: a directory, or a store's URL (s3://bucket/prefix; "
        "replicas share it) (default: none, job state lives in memory)",
    )
    parser.add_argument(
        "--cache-dir",
        type=local_path,
        help="memory-map each dataset's served rows from an Arrow file kept here (built on "
        "first start): rows live in the page cache, shared by servers, not on the heap "
        "(default: $BATCHCRAFT_CACHE_DIR, else $XDG_CACHE_HOME/batchcraft/datasets, else "
        "~/.cache/batchcraft/datasets)",
    )
    parser.add_argument(
        "--no-cache-dir",
        action="store_true",
        help="hold the served rows on the heap instead of mapping them (default: off, mapped)",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=2.0,
        help="seconds between checkpoints (default: %(default)s)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="require the bearer token in this file (default: none, no authentication)",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        help="PEM certificate chain, with --tls-key (default: none, plaintext)",
    )
    parser.add_argument(
        "--tls-key", type=Path, help="PEM private key, with --tls-cert (default: none, plaintext)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics on this port, 0 picks a free one (default: none, "
        "no metrics endpoint)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="interface of the /metrics endpoint, whatever --host is: it shows dataset names "
        "and rates, so expose it with --metrics-token-file (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-token-file",
        type=Path,
        help="require this bearer token (not the service's) on /metrics (default: none, no "
        "authentication)",
    )
    parser.add_argument(
        "--metrics-tls-cert",
        type=Path,
        help="serve /metrics over HTTPS with this PEM certificate chain, with "
        "--metrics-tls-key (default: none, plain HTTP)",
    )
    parser.add_argument(
        "--metrics-tls-key",
        type=Path,
        help="PEM private key of --metrics-tls-cert (default: none, plain HTTP)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=8,
        help="unacknowledged batches per stream (default: %(default)s)",
    )
    parser.add_argument(
        "--max-message-mb",
        type=int,
        default=256,
        help="gRPC message size limit in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--provenance-dir",
        type=local_path,
        help="per-batch provenance log, one directory per dataset, for `batchcraft report "
        "DATASET --provenance-dir DIR/NAME` (default: CHECKPOINT_DIR/provenance, none "
        "without a checkpoint dir)",
    )
    parser.add_argument(
        "--no-provenance",
        action="store_true",
        help="do not write the provenance log (default: off, the log is written)",
    )
    parser.add_argument(
        "--no-torch-warm-up",
        action="store_true",
        help="do not import torch at start (about 120 MiB of the server's own memory): for "
        "servers of uniform batches and plans only; a job whose selector needs torch then "
        "imports it on its first selection, about 1.5 s (default: off, torch is imported)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads of the selector math (jest, hard_negative): sessions run in "
        "threads of their own, and a second torch thread per selection spins on a core "
        "the trainer or another session needs; 0 keeps torch's default (default: %(default)s)",
    )
    parser.add_argument(
        "--plans",
        nargs="+",
        default=[],
        metavar="PLAN",
        help="epoch plans from `batchcraft plan` (paths or store URLs, copied to a local "
        "cache): a job they were made for (same dataset, selector, parameters, batch size "
        "x world size, seed) is served from them (default: none)",
    )
    parser.add_argument(
        "--selection-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes that make selections ahead of demand (coreset, concept, and "
        "feedback selectors within --feedback-staleness), one per core; 0 selects on the "
        "request path (default: %(default)s)",
    )
    parser.add_argument(
        "--lookahead",
        type=int,
        default=DEFAULT_DEPTH,
        help="steps selected ahead of a job's latest request (default: %(default)s)",
    )
    parser.add_argument(
        "--feedback-staleness",
        type=int,
        default=DEFAULT_STALENESS,
        help="steps a feedback selector (jest, coreset with gradients) may select ahead once "
        "the trainer reports: those selections miss the feedback of the steps between; 0 "
        "makes them on demand (default: %(default)s)",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=64,
        help="RPC threads; sessions may use half of them (default: %(default)s)",
    )
    parser.add_argument(
        "--session-idle-timeout",
        type=float,
        default=300.0,
        help="end a session whose client sent nothing (no ack, feedback or scores) for this "
        "many seconds while the server waited on it; BatchClient resumes by itself "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--job-idle-seconds",
        type=float,
        default=600.0,
        help="save a job no session used for this many seconds and drop it from memory; "
        "its next session reloads it (needs --checkpoint-dir; 0 = never) (default: %(default)s)",
    )
    parser.add_argument(
        "--finished-job-retention",
        type=float,
        default=7 * 86400.0,
        help="seconds a finished job (every rank served all its epochs) keeps its state, in "
        "memory and checkpoint, before both are deleted (0 = forever) (default: %(default)s)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=0.0,
        help="replicas sharing --checkpoint-dir: each job is served by the replica holding "
        "its lease, which lasts this long after its latest renewal (renewed every third of "
        "it); others redirect its sessions there. 0 = no leases, one server (default: %(default)s)",
    )
    parser.add_argument(
        "--advertise-address",
        default=None,
        metavar="HOST:PORT",
        help="where clients reach this replica, named in redirects (default: the bound "
        "address; the host name with --host 0.0.0.0)",
    )
    parser.add_argument(
        "--max-world-size",
        type=int,
        default=65536,
        help="largest world_size a job may have: trainer ranks times their DataLoader "
        "workers (default: %(default)s)",
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="do not fsync checkpoints (default: off, checkpoints are fsynced)",
    )
    parser.add_argument(
        "--prefetch",
        action="store_true",
        help="encode each session's next message on its own thread while the current one is "
        "sent: more CPU per batch, worth it only with cores to spare (default: off)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="logging level of the JSON logs on stderr (default: %(default)s)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML file with the same settings; flags given on the command line win "
        "(default: none)",
    )
