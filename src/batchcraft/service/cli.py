"""``batchcraft serve``: load curated datasets and serve them over gRPC.

Wire into a CLI with `add_serve_arguments` and `run_serve`, or run
``python -m batchcraft.service.cli serve-args...`` (see `serve_main`).

Every flag (`batchcraft.service.serve_arguments`) may also come from a TOML file
(``--config``, `batchcraft.service.serve_settings`); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from batchcraft.batcher.checkpoint_files import check_writable
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.remote_plans import local_plan
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.remote import local_dataset
from batchcraft.errors import BatchcraftError, ConfigError, OutputError
from batchcraft.logs import configure_json_logging, log_event
from batchcraft.service.serve_arguments import add_serve_arguments
from batchcraft.service.serve_settings import apply_config_file, dataset_paths
from batchcraft.service.server import BatchServer, ServerConfig, create_server
from batchcraft.service.server.metrics import start_metrics_server
from batchcraft.service.server.metrics_http import Tls
from batchcraft.storage import is_url

LOG = logging.getLogger("batchcraft.service")


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGTERM/SIGINT; return the exit code."""
    configure_json_logging(args.log_level)
    limit_torch_threads(args.torch_threads)
    try:
        if args.config is not None:
            apply_config_file(args)
        cache_dir = dataset_cache_dir(args)
        registry = DatasetRegistry(
            CuratedDataset.open([local_dataset(p) for p in paths], name, cache_dir=cache_dir)
            for name, paths in dataset_paths(args)
        )
        if len(registry) == 0:
            raise ConfigError("no dataset to serve: give a curated dataset directory")
        # the selection workers map the rows from the same cache the datasets were opened with
        server = create_server(registry, replace(server_config(args), cache_dir=cache_dir))
        if args.metrics_port is not None:
            start_metrics(args, server)
    except (BatchcraftError, OSError) as error:  # OSError: a file or port the flags name
        print(f"batchcraft serve: error: {error}", file=sys.stderr)
        return 2
    server.start()
    if args.port_file is not None:
        args.port_file.write_text(str(server.port))
    provenance = server.servicer.config.provenance_dir
    if provenance is not None:
        log_event(LOG, logging.INFO, "provenance", directory=str(provenance))
    names = [dataset.name for dataset in registry]
    print(f"batchcraft serve: listening on {args.host}:{server.port} datasets={names}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    try:
        server.stop(grace=2.0)
    except BatchcraftError as error:  # a job's state could not be saved
        print(f"batchcraft serve: error: {error}", file=sys.stderr)
        return 1
    return 0


def dataset_cache_dir(args: argparse.Namespace) -> Path | None:
    """Where served rows are cached and mapped from: ``--cache-dir``, else the default
    (`default_cache_dir`); None with ``--no-cache-dir``, or when the default directory
    cannot be written (logged: the rows are then held on the heap).

    Raises:
        OutputError: ``--cache-dir`` names a directory that cannot be written.
    """
    if args.no_cache_dir:
        return None
    if args.cache_dir is not None:
        check_writable(args.cache_dir, "--cache-dir")
        return Path(args.cache_dir)
    directory = default_cache_dir()
    try:
        check_writable(directory, "dataset cache directory")
    except OutputError as error:
        log_event(LOG, logging.WARNING, "dataset_cache_unwritable", error=str(error))
        return None
    return directory


def default_cache_dir() -> Path:
    """``$BATCHCRAFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/batchcraft/datasets``, else
    ``~/.cache/batchcraft/datasets``."""
    explicit = os.environ.get("BATCHCRAFT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "batchcraft" / "datasets"


def limit_torch_threads(threads: int) -> None:
    """Set the torch (OpenMP) threads of this process before torch is imported (a selector
    imports it on first use); 0 leaves torch's default."""
    if threads < 0:
        raise SystemExit(f"batchcraft serve: error: --torch-threads {threads} must be >= 0")
    if threads == 0:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # already imported (e.g. in-process): set it directly
        sys.modules["torch"].set_num_threads(threads)


def serve_main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv`` as ``batchcraft serve`` arguments and serve."""
    parser = argparse.ArgumentParser(prog="batchcraft serve", description=__doc__.splitlines()[0])
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))


def server_config(args: argparse.Namespace) -> ServerConfig:
    """A ServerConfig from parsed flags (files are read here, at the edge)."""
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port (0-65535; 0 picks a free one)")
    return ServerConfig(
        address=f"{args.host}:{args.port}",
        checkpoint_dir=args.checkpoint_dir,
        token=read_token(args.token_file),
        tls_cert=args.tls_cert.read_bytes() if args.tls_cert else None,
        tls_key=args.tls_key.read_bytes() if args.tls_key else None,
        max_in_flight=args.max_in_flight,
        max_message_bytes=args.max_message_mb << 20,
        checkpoint_interval=args.checkpoint_interval,
        max_workers=args.max_workers,
        max_world_size=args.max_world_size,
        session_idle_timeout=args.session_idle_timeout,
        job_idle_seconds=args.job_idle_seconds,
        finished_job_retention=args.finished_job_retention,
        lease_seconds=args.lease_seconds,
        advertise_address=args.advertise_address,
        provenance_dir=provenance_dir(args),
        fsync=not args.no_fsync,
        prefetch=args.prefetch,
        selection_workers=args.selection_workers,
        lookahead=args.lookahead,
        feedback_staleness=args.feedback_staleness,
        cache_dir=args.cache_dir,
        plans=tuple(local_plan(plan) for plan in args.plans),
        torch_warm_up=not args.no_torch_warm_up,
    )


def read_token(path: Path | None) -> str | None:
    """The bearer token in the file ``path`` (None without a file).

    Raises:
        ConfigError: the file is empty.
        OSError: it cannot be read.
    """
    if path is None:
        return None
    token = path.read_text().strip()
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


def start_metrics(args: argparse.Namespace, server: BatchServer) -> None:
    """Serve ``/metrics`` as the ``--metrics-*`` flags say, and log where.

    Raises:
        ConfigError: only one of the TLS files is given, or the token file is empty.
        OSError: the port cannot be bound, or a file cannot be read.
    """
    if (args.metrics_tls_cert is None) != (args.metrics_tls_key is None):
        raise ConfigError("--metrics-tls-cert and --metrics-tls-key must be given together")
    tls = (
        None if args.metrics_tls_cert is None else Tls(args.metrics_tls_cert, args.metrics_tls_key)
    )
    token = read_token(args.metrics_token_file)
    metrics = start_metrics_server(
        server.servicer.metrics, args.metrics_host, args.metrics_port, token=token, tls=tls
    )
    port = metrics.server_address[1]
    where = {"host": args.metrics_host, "port": port, "token": token is not None}
    log_event(LOG, logging.INFO, "metrics", **where, tls=tls is not None)
    if token is None and not _is_loopback(args.metrics_host):
        log_event(
            LOG,
            logging.WARNING,
            "metrics_exposed",
            **where,
            hint="anyone who reaches it reads dataset names and rates: add --metrics-token-file",
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def provenance_dir(args: argparse.Namespace) -> Path | None:
    """``--provenance-dir``, else ``<checkpoint-dir>/provenance``; None if disabled or nowhere."""
    if args.no_provenance:
        return None
    if args.provenance_dir is not None:
        return Path(args.provenance_dir)
    if args.checkpoint_dir is not None and not is_url(str(args.checkpoint_dir)):
        return Path(args.checkpoint_dir) / "provenance"
    return None


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
