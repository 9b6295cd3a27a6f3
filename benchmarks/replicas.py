"""Replicas with leases: throughput with 1, 2 and 3 replicas, and the time a SIGKILL of a
job's owner costs its trainer.

Throughput: ``--jobs`` jobs of one rank each, every client in a process of its own, reading
uniform 512 KiB batches (256 rows x (384 float32 + 128 int32)) for ``--seconds`` from a
common start; job k names the replicas rotated by k (``ipv4:a,b,c``), so the jobs spread
over them, each owned by the replica it reaches first (`batchcraft.batcher.leases`). All
replicas share one checkpoint directory and ``--lease-seconds``. Reported: batches/s of
all jobs together, and the ratio to one replica in the same run (median of ``--rounds``
alternating rounds).

Failover: two replicas, one job whose trainer takes a 5 ms step per 64 KiB batch; after two
seconds and a fraction of a renewal interval (spread over the trials) the replica holding
the job's lease is SIGKILLed. Reported per trial: the time from
the kill to the first batch from the survivor (the batch after the longest pause since the
kill), in seconds and in lease terms and renewal intervals (a lease lasts ``lease_seconds``
after its last renewal and is renewed every third of it, so the survivor takes over between
2/3 and 1 lease term after the kill, then the trainer's next reconnect finds it).

With ``--failover-stores directory,s3`` the failover trials alternate between a shared
directory and a bucket of moto's S3-compatible server started on loopback (the lease a
conditional PUT, the checkpoints objects), the directory's figure the reference of the run;
``--no-throughput`` skips the throughput runs.

    python benchmarks/replicas.py            # about 2-3 minutes
    python benchmarks/replicas.py --quick    # smoke run
    python benchmarks/replicas.py --no-throughput --failover-stores directory,s3
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from train_server import ServerProcess, machine_lines, throughput_dataset

from batchcraft.batcher.checkpoint_store import CheckpointStore
from batchcraft.batcher.leases import RENEWALS_PER_LEASE, latest_lease
from batchcraft.service import BatchClient

COLUMNS = ["id", "embedding", "tokens"]


def run_client(target: str, dataset: str, job: str, seconds: float) -> None:
    """A trainer of one rank (client mode): once its first batch arrived it prints "ready",
    reads the common start time (wall clock) from stdin, and prints the batches it read
    in the ``seconds`` from there as JSON."""
    client = BatchClient(target, dataset, "uniform", 256, columns=COLUMNS, job=job,
                         num_epochs=0, max_in_flight=16)  # fmt: skip
    counted = 0
    with client:
        batches = iter(client)
        next(batches)
        print("ready", flush=True)
        start_at = float(sys.stdin.readline())
        for _ in batches:
            now = time.time()
            if now >= start_at + seconds:
                break
            counted += now >= start_at
    print(json.dumps({"batches": counted, "seconds": seconds}), flush=True)


def throughput(servers: list[ServerProcess], jobs: int, seconds: float, tag: str) -> float:
    """Batches/s of ``jobs`` one-rank jobs in client processes, spread over ``servers``."""
    addresses = [server.address for server in servers]
    clients = []
    for k in range(jobs):
        order = addresses[k % len(addresses) :] + addresses[: k % len(addresses)]
        command = [sys.executable, __file__, "--client", f"ipv4:{','.join(order)}",
                   f"replicas-{tag}-{k}", str(seconds)]  # fmt: skip
        clients.append(
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for process in clients:  # every client has imported batchcraft and has its job open
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.5
    total = 0
    for process in clients:
        out, _ = process.communicate(f"{start_at}\n", timeout=seconds + 120)
        total += json.loads(out.strip().splitlines()[-1])["batches"]
    return total / seconds


def replicas(
    count: int, dataset: Path, work: Path, lease_seconds: float, state: str | None = None
) -> list[ServerProcess]:
    """``count`` replicas sharing the checkpoint directory ``state`` (default: WORK/state)."""
    state = state or str(work / "state")
    extra = ("--checkpoint-dir", state, "--lease-seconds", str(lease_seconds),
             "--no-fsync", "--selection-workers", "0", "--max-in-flight", "16")  # fmt: skip
    servers = []
    for index in range(count):
        directory = work / f"replica-{index}"
        directory.mkdir(parents=True)
        servers.append(ServerProcess({"throughput": dataset}, directory, extra=extra))
    return servers


def failover_trial(
    dataset: Path, work: Path, lease_seconds: float, phase: float, state: str | None = None
) -> float:
    """Seconds from the SIGKILL of the job's owner to the trainer's first batch from the
    survivor; the kill comes ``phase`` renewal intervals after the trainer's second second
    (where in its renewal cycle a lease is when its owner dies decides the wait)."""
    state = state or str(work / "state")
    servers = replicas(2, dataset, work, lease_seconds, state)
    target = "ipv4:" + ",".join(server.address for server in servers)
    client = BatchClient(target, "throughput", "uniform", 32, columns=COLUMNS, job="failover",
                         num_epochs=0, max_in_flight=4, reconnect_attempts=50)  # fmt: skip
    arrivals: list[float] = []
    stop = threading.Event()

    def train() -> None:
        for _ in client:
            arrivals.append(time.time())
            if stop.is_set():
                return
            time.sleep(0.005)  # a training step

    trainer = threading.Thread(target=train)
    trainer.start()
    try:
        time.sleep(2.0 + phase * lease_seconds / RENEWALS_PER_LEASE)
        owner = latest_lease(CheckpointStore.at(state).job("failover"))
        assert owner is not None, "the job has no lease"
        (dead,) = [server for server in servers if server.address == owner.address]
        killed_at = time.time()
        dead.process.kill()
        deadline = time.monotonic() + 10 * lease_seconds
        while time.monotonic() < deadline and not (arrivals and arrivals[-1] > killed_at + 0.5):
            time.sleep(0.05)
        time.sleep(0.3)  # a few more batches from the survivor
    finally:
        stop.set()
        trainer.join(30)
        client.close()
        for server in servers:
            if server.process.poll() is None:
                server.stop()
    after = [killed_at, *(t for t in arrivals if t > killed_at)]
    pauses = [later - earlier for earlier, later in itertools.pairwise(after)]
    if not pauses:
        raise RuntimeError("no batch arrived after the kill")
    longest = max(range(len(pauses)), key=pauses.__getitem__)
    return after[longest + 1] - killed_at


def throughput_table(
    dataset: Path, work: Path, args: argparse.Namespace, seconds: float, rounds: int
) -> dict[int, list[float]]:
    """Batches/s of every job with 1, 2 and 3 replicas in alternating rounds, printed as a
    table with the ratio to one replica; the runs."""
    results: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for round_number in range(rounds):
        for count in results:
            directory = work / f"tp-{round_number}-{count}"
            servers = replicas(count, dataset, directory, args.lease_seconds)
            try:
                tag = f"{round_number}-{count}"
                results[count].append(throughput(servers, args.jobs, seconds, tag))
            finally:
                for server in servers:
                    server.stop()
    reference = statistics.median(results[1])
    print("\n| replicas | batches/s (all jobs) | MiB/s | ratio vs 1 replica |")
    print("|---|---|---|---|")
    for count, runs in results.items():
        median = statistics.median(runs)
        print(f"| {count} | {median:,.0f} | {median * 0.5:,.0f} | {median / reference:.2f}x |")
    return results


@contextlib.contextmanager
def moto_buckets() -> Iterator[Callable[[], str]]:
    """moto's S3-compatible server on a free loopback port, its endpoint and test keys in
    this process's environment (the replicas inherit them); yields a maker of new buckets."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    client = boto3.client("s3")

    def new_bucket() -> str:
        name = f"replicas-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        return name

    try:
        yield new_bucket
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke run")
    parser.add_argument("--jobs", type=int, default=6, help="jobs (client processes)")
    parser.add_argument("--seconds", type=float, help="measured seconds per throughput run")
    parser.add_argument("--rounds", type=int, help="alternating throughput rounds")
    parser.add_argument("--trials", type=int, help="failover trials")
    parser.add_argument("--lease-seconds", type=float, default=3.0)
    parser.add_argument(
        "--failover-stores",
        default="directory",
        help="where the failover trials keep checkpoints: directory, s3 (moto)",
    )
    parser.add_argument("--no-throughput", action="store_true", help="failover trials only")
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        target, job, seconds = args.client
        run_client(target, "throughput", job, float(seconds))
        return 0
    seconds, rounds, trials = (3.0, 1, 1) if args.quick else (8.0, 2, 4)
    seconds, rounds = args.seconds or seconds, args.rounds or rounds
    trials = args.trials or trials
    for line in machine_lines():
        print(line)
    interval = args.lease_seconds / RENEWALS_PER_LEASE
    print(f"lease {args.lease_seconds:g} s, renewed every {interval:g} s; {args.jobs} jobs; "
          f"{seconds:g} s per run; {rounds} round(s)")  # fmt: skip
    stores = args.failover_stores.split(",")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        dataset = throughput_dataset(work / "throughput")
        report: dict[str, Any] = {}
        if not args.no_throughput:
            report["throughput"] = throughput_table(dataset, work, args, seconds, rounds)
        buckets = stack.enter_context(moto_buckets()) if "s3" in stores else None
        pauses: dict[str, list[float]] = {store: [] for store in stores}
        for trial, store in itertools.product(range(trials), stores):  # alternating stores
            trial_work = work / f"failover-{store}-{trial}"
            state = f"s3://{buckets()}/state" if buckets is not None and store == "s3" else None
            phase = trial / trials  # kills spread over the renewal cycle
            pauses[store].append(
                failover_trial(dataset, trial_work, args.lease_seconds, phase, state)
            )
        print("\n| checkpoints | trial | kill -> next batch on the survivor | / lease term | "
              "/ renewal interval |")  # fmt: skip
        print("|---|---|---|---|---|")
        for store, measured in pauses.items():
            for trial, pause in enumerate(measured):
                print(f"| {store} | {trial} | {pause:.2f} s | {pause / args.lease_seconds:.2f} | "
                      f"{pause / interval:.2f} |")  # fmt: skip
        if len(stores) > 1:
            reference = statistics.median(pauses[stores[0]])
            for store in stores[1:]:
                ratio = statistics.median(pauses[store]) / reference
                print(f"median {store} / {stores[0]}: {ratio:.2f}x")
        report["failover_seconds"] = pauses
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
