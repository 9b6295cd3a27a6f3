"""``batchcraft plan``: the flags, and running `build_plan` from them."""

from __future__ import annotations

import argparse
import json
import sys

from batchcraft.errors import ConfigError
from batchcraft.planning.spark_plan import PlanRequest, build_plan


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``plan`` flags to ``parser``."""
    parser.add_argument(
        "curated",
        nargs="+",
        help="the curated dataset directory (several: a dataset and the deltas curated "
        "against it, served together with --name NAME=A,B)",
    )
    parser.add_argument("--selector", required=True, help="selector name (required)")
    parser.add_argument(
        "--params", default="{}", help="selector parameters as a JSON object (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=256, help="rows per batch per rank (default: %(default)s)"
    )
    parser.add_argument(
        "--world-size", type=int, default=1, help="ranks of the job (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs", type=int, default=1, help="epochs to plan (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the job's seed (default: %(default)s)")
    parser.add_argument(
        "--last-batch",
        choices=["partial", "drop"],
        default="partial",
        help="the job's last-batch rule (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="plan directory to write, a path or a store URL (s3://…; required)",
    )
    parser.add_argument(
        "--master", default="local[*]", help="Spark master URL (default: %(default)s)"
    )


def run_plan(args: argparse.Namespace) -> int:
    """Build the plan the flags describe and print where it is."""
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--params is not JSON: {error}") from None
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    request = PlanRequest(
        args.curated, args.out, args.selector, params, args.batch_size, args.world_size,
        args.epochs, args.seed, args.last_batch, args.master,
    )  # fmt: skip
    plan = build_plan(request)
    print(f"batchcraft plan: wrote {plan.epochs} epoch(s) of {plan.key.selector} to {plan.path}")
    sys.stdout.flush()
    return 0
