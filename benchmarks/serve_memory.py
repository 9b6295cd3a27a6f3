"""Memory of `batchcraft serve` on datasets of 1M and 10M rows of synthetic embeddings.

The server runs in its own process, mapping its rows from the dataset cache
(the default); this process writes the dataset, starts the server and is the
client of one epoch of uniform batches. Reported, from ``/proc/<pid>/status``
(psutil's RSS is their sum):

- ``anon``: the server's private memory (heap: the id index, Python, gRPC);
- ``file``: pages of the mapped Arrow file resident in the process: page
  cache, shared by every server mapping the file, clean, reclaimed by the
  kernel under pressure (no swap needed);
- ``peak``: the high-water mark of RSS (VmHWM).

Each size is opened three times: the first start builds the cache file (its
peak holds the decoded rows once: the build is not streamed), a restart maps
the file that exists (the figures of a server in service), and the reference,
the same server with ``--no-cache-dir`` (rows on the heap), for the ratio.

    python benchmarks/serve_memory.py                 # 1M x 384 and 10M x 32 (~6 min)
    python benchmarks/serve_memory.py --quick         # 100k x 384 (smoke run)
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from train_server import machine_lines

from batchcraft.dataset import layout
from batchcraft.dataset.manifest import write_manifest
from batchcraft.dataset.schema import SCHEMA_VERSION
from batchcraft.service import BatchClient

SHARD_ROWS = 250_000
BATCH_SIZE = 1024
DATA_LIMIT = 5 << 30
"""RLIMIT_DATA of the server: a build that outgrows this machine's memory fails in the
server (MemoryError) instead of waking the OOM killer, which may pick another process."""


def write_dataset(root: Path, rows: int, dim: int) -> int:
    """A curated dataset of ``rows`` unit vectors (ids, keep, embedding), written shard by
    shard so that its size is not bounded by this process's memory; its embedding bytes."""
    layout.data_dir(root).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shards = []
    for index, start in enumerate(range(0, rows, SHARD_ROWS)):
        count = min(SHARD_ROWS, rows - start)
        numbers = pc.cast(pa.array(np.arange(start, start + count)), pa.string())
        matrix = rng.standard_normal((count, dim), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        table = pa.table(
            {
                "id": pc.binary_join_element_wise("row-", numbers, ""),
                "keep": pa.array(np.ones(count, bool)),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim),
            }
        )
        relative = layout.shard_name(index)
        pq.write_table(table, root / relative, compression="none")
        shards.append({"path": relative, "num_rows": count, "num_kept": count})
    embedding = {"model": "synthetic", "dim": dim, "dtype": "float32", "normalized": True}
    manifest = {"schema_version": SCHEMA_VERSION, "num_rows": rows, "num_kept": rows}
    write_manifest(root, {**manifest, "embedding": embedding, "shards": shards})
    return rows * dim * 4


def memory(pid: int) -> dict[str, float]:
    """MiB of the process's anonymous and file-backed RSS, its RSS and its peak RSS."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    rss = psutil.Process(pid).memory_info().rss / 2**20
    return {
        "anon": fields["RssAnon"],
        "file": fields["RssFile"],
        "rss": rss,
        "peak": fields["VmHWM"],
    }


class Server:
    """``batchcraft serve`` on one dataset, in its own process."""

    def __init__(self, dataset: Path, workdir: Path, *flags: str) -> None:
        port_file = workdir / f"port-{time.monotonic_ns()}"
        command = [sys.executable, "-m", "batchcraft.service.cli", str(dataset), "--name",
                   "bench", "--port", "0", "--port-file", str(port_file), "--no-provenance",
                   "--log-level", "WARNING", *flags]  # fmt: skip
        started = time.perf_counter()
        errors = workdir / f"stderr-{time.monotonic_ns()}"
        with errors.open("w") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=_limit_data
            )
        while not port_file.exists() or not port_file.read_text():
            if self.process.poll() is not None:
                last = errors.read_text().strip().splitlines()[-1:] or ["(no message)"]
                raise RuntimeError(f"exit {self.process.returncode}: {last[0]}")
            time.sleep(0.05)
        self.open_seconds = time.perf_counter() - started
        self.address = f"127.0.0.1:{port_file.read_text()}"

    def epoch(self) -> tuple[int, float]:
        """Rows of one epoch of uniform batches (ids and embeddings) and its seconds."""
        started, rows = time.perf_counter(), 0
        params = {"batch_size": BATCH_SIZE, "columns": ["id", "embedding"], "num_epochs": 1}
        with BatchClient(self.address, "bench", **params) as client:  # type: ignore[arg-type]
            for batch in client:
                rows += len(batch["id"])
        return rows, time.perf_counter() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _limit_data() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))


def measure(dataset: Path, workdir: Path, rows: int, *flags: str) -> dict[str, object]:
    server = Server(dataset, workdir, *flags)
    try:
        opened = memory(server.process.pid)
        served, seconds = server.epoch()
        assert served == rows, f"the epoch served {served} of {rows} rows"
        return {"open_s": server.open_seconds, "opened": opened,
                "epoch": memory(server.process.pid), "epoch_s": seconds}  # fmt: skip
    finally:
        server.stop()


def report(name: str, figures: dict[str, object], data_mib: float) -> None:
    opened, epoch = figures["opened"], figures["epoch"]
    assert isinstance(opened, dict) and isinstance(epoch, dict)
    print(
        f"  {name:<10} open {figures['open_s']:5.1f} s: anon {opened['anon']:7.0f} MiB, "
        f"file {opened['file']:7.0f} MiB | after the epoch ({figures['epoch_s']:5.1f} s): "
        f"anon {epoch['anon']:7.0f} MiB ({epoch['anon'] / data_mib:.3f}x), file "
        f"{epoch['file']:7.0f} MiB, rss {epoch['rss']:7.0f} MiB ({epoch['rss'] / data_mib:.2f}x), "
        f"peak {epoch['peak']:7.0f} MiB",
        flush=True,
    )


def run(rows: int, dim: int, workdir: Path) -> dict[str, dict[str, object]]:
    dataset, cache = workdir / f"data-{rows}x{dim}", workdir / f"cache-{rows}x{dim}"
    started = time.perf_counter()
    embedding_bytes = write_dataset(dataset, rows, dim)
    shard_bytes = sum(p.stat().st_size for p in layout.data_dir(dataset).glob("*.parquet"))
    print(f"{rows:,} rows x {dim}-d: embeddings {embedding_bytes / 2**20:.0f} MiB, shards "
          f"{shard_bytes / 2**20:.0f} MiB, written in {time.perf_counter() - started:.0f} s",
          flush=True)  # fmt: skip
    results = {}
    for name, flags in (("build", ("--cache-dir", str(cache))),
                        ("mapped", ("--cache-dir", str(cache))),
                        ("heap", ("--no-cache-dir",))):  # fmt: skip
        try:
            results[name] = measure(dataset, workdir, rows, *flags)
        except RuntimeError as error:  # the heap server may not fit under DATA_LIMIT
            print(f"  {name:<10} did not open under a {DATA_LIMIT >> 30} GiB data limit: {error}")
            continue
        cached = sum(p.stat().st_size for p in cache.glob("*.arrow"))
        report(name, results[name], cached / 2**20)
    print(f"  served Arrow file {cached / 2**20:.0f} MiB", flush=True)
    if "heap" in results:
        mapped, heap = results["mapped"]["epoch"], results["heap"]["epoch"]
        assert isinstance(mapped, dict) and isinstance(heap, dict)
        print(f"  mapped/heap anon after the epoch {mapped['anon'] / heap['anon']:.3f}")
    shutil.rmtree(dataset)
    shutil.rmtree(cache)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows only")
    parser.add_argument(
        "--size",
        action="append",
        metavar="ROWSxDIM",
        help="rows and embedding dimension, repeatable (default: 1000000x384 and 10000000x32)",
    )
    parser.add_argument("--workdir", type=Path, help="where datasets go (default: a temp dir)")
    args = parser.parse_args()
    for line in machine_lines():
        print(line)
    disk = shutil.disk_usage(args.workdir or tempfile.gettempdir())
    print(f"disk free {disk.free / 2**30:.0f} GiB; memory {psutil.virtual_memory().total / 2**30:.0f} "
          f"GiB, available {psutil.virtual_memory().available / 2**30:.1f} GiB", flush=True)  # fmt: skip
    sizes = [(100_000, 384)] if args.quick else [(1_000_000, 384), (10_000_000, 32)]
    if args.size:
        sizes = [(int(rows), int(dim)) for rows, _, dim in (s.partition("x") for s in args.size)]
    with tempfile.TemporaryDirectory(dir=args.workdir) as directory:
        for rows, dim in sizes:
            run(rows, dim, Path(directory))


if __name__ == "__main__":
    main()
