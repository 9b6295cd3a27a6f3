"""Command-line wiring of ``batchcraft report DIR`` (the top-level CLI adds the subcommand)."""

from __future__ import annotations

import argparse
import sys

from batchcraft.errors import ConfigError
from batchcraft.report.scan import DEFAULT_BATCH_SIZE
from batchcraft.report.writer import write_report


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` subcommand's arguments to ``parser``; every flag's help shows its default."""
    parser.add_argument("dataset_dir", metavar="DIR", help="curated dataset directory")
    parser.add_argument(
        "--provenance-dir",
        metavar="PATH",
        default=None,
        help="batch service provenance log (*.jsonl) for the serving section "
        "(default: DIR/provenance when present, else no serving section)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="rows per record batch of the streaming scan; bounds memory (default: %(default)s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when the report has warnings, e.g. data and manifest disagree "
        "(default: off, warnings are printed and the exit status is 0)",
    )


def run_report(args: argparse.Namespace) -> int:
    """Write DIR/report.html and DIR/report.json; print where, and any warnings, to stderr.

    Returns:
        The exit status: 0, or 1 with ``--strict`` when there are warnings.

    Raises:
        ConfigError: ``--batch-size`` is not positive.
        DatasetError: DIR is not a readable curated dataset.
    """
    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size={args.batch_size} must be > 0")
    summary = write_report(
        args.dataset_dir, provenance_dir=args.provenance_dir, batch_size=args.batch_size
    )
    print(
        f"wrote {summary.html_path} and {summary.json_path}: {summary.num_input_rows:,} input "
        f"rows, {summary.num_kept:,} kept"
        + ("" if not summary.has_serving else ", with a serving section"),
        file=sys.stderr,
    )
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 1 if args.strict and summary.warnings else 0
