"""The ``batchcraft`` command: curate, synth, demo, report, serve."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from batchcraft import __version__, curation
from batchcraft.errors import BatchcraftError
from batchcraft.pipeline.config import CurateConfig
from batchcraft.storage import is_url


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="batchcraft", description=__doc__)
    parser.add_argument("--version", action="version", version=f"batchcraft {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    curation.add_curate_arguments(
        commands.add_parser("curate", help="curate a corpus into a dataset (Spark job)")
    )
    _add_synth_arguments(
        commands.add_parser("synth", help="write the deterministic synthetic demo corpus")
    )
    _add_demo_arguments(
        commands.add_parser("demo", help="synth + curate (local Spark) + report, with a summary")
    )
    _add_command(
        commands,
        "report",
        "batchcraft.report.cli",
        "add_report_arguments",
        "write report.html/report.json for a curated dataset",
    )
    _add_command(
        commands,
        "plan",
        "batchcraft.planning.cli",
        "add_plan_arguments",
        "compute epoch plans of a static selector with Spark (served by serve --plans)",
    )
    _add_command(
        commands,
        "serve",
        "batchcraft.service.cli",
        "add_serve_arguments",
        "serve curated datasets to trainers over gRPC",
    )
    return parser


def _add_synth_arguments(synth: argparse.ArgumentParser) -> None:
    synth.add_argument("out", help="output directory")
    synth.add_argument(
        "--rows", type=int, default=3000, help="rows, duplicates included (default: %(default)s)"
    )
    synth.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (default: %(default)s)"
    )
    synth.add_argument(
        "--no-bad-rows",
        dest="bad_rows",
        action="store_false",
        help="leave out the records a reader must reject (default: write them, in bad/)",
    )


def _add_demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument(
        "--dir", default="demo", help="working directory of the demo (default: %(default)s)"
    )
    demo.add_argument(
        "--rows", type=int, default=3000, help="rows of the synthetic corpus (default: %(default)s)"
    )
    demo.add_argument(
        "--master", default=CurateConfig.master, help="Spark master URL (default: %(default)s)"
    )


def _add_command(commands: Any, name: str, module: str, adder: str, help_text: str) -> None:
    """Add the subcommand whose flags ``module.adder`` declares (a broken module fails
    loudly here rather than making its subcommand vanish)."""
    import importlib

    add_arguments = getattr(importlib.import_module(module), adder)
    add_arguments(commands.add_parser(name, help=help_text))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``batchcraft`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "sentence_transformers", "faiss", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "curate":
            return _curate(args)
        if args.command == "synth":
            return _synth(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "report":
            from batchcraft.report.cli import run_report

            return int(run_report(args))
        if args.command == "plan":
            from batchcraft.planning.cli import run_plan

            return run_plan(args)
        from batchcraft.service.cli import run_serve

        return int(run_serve(args))
    except BatchcraftError as error:
        print(f"batchcraft {args.command}: error: {error}", file=sys.stderr)
        return 2


def _curate(args: argparse.Namespace) -> int:
    manifest = curation.curate(curation.curate_config(args))
    print(summary(manifest, args.out))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from batchcraft.synth import generate_corpus

    corpus = generate_corpus(args.out, num_rows=args.rows, seed=args.seed, bad_rows=args.bad_rows)
    print(
        f"wrote a synthetic corpus of {args.rows:,} rows to {args.out} "
        f"({len(corpus.duplicates):,} injected duplicates; ground truth in {corpus.ground_truth_path})"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from batchcraft.synth import generate_corpus

    workdir = Path(args.dir)
    corpus = generate_corpus(workdir / "corpus", num_rows=args.rows, seed=0, bad_rows=True)
    print(f"synthetic corpus: {args.rows:,} rows in {workdir / 'corpus'}", file=sys.stderr)
    config = CurateConfig(
        inputs=(str(workdir / "corpus" / "corpus"), str(workdir / "corpus" / "bad")),
        out=str(workdir / "curated"),
        id_column="id",
        pair_column="answer",
        label_column="topic",  # a label to train on, and JEST's reference losses
        reference_scores="pairs",
        concepts_file=str(corpus.concepts_path),
        master=args.master,
        overwrite=True,
    )
    manifest = curation.curate(config)
    print(summary(manifest, config.out))
    return 0


def summary(manifest: dict[str, Any], out: str) -> str:
    """A short human summary of a curation run."""
    total = manifest["counts"]["total"]
    lines = [
        f"curated dataset: {out}",
        f"  rows in           {total['in']:>9,}",
        f"  rejected          {total['rejected']:>9,}  {manifest['counts']['rejected_by_reason']}",
        f"  exact duplicates  {total['exact_duplicates']:>9,}",
        f"  minhash duplicates{total.get('minhash_duplicates', 0):>9,}",
        f"  near duplicates   {total['near_duplicates']:>9,}",
        f"  semantic dups     {total['semantic_duplicates']:>9,}  (eps={manifest['semantic_dedup']['eps']})",
        f"  kept              {total['kept']:>9,}",
        f"  clusters          {manifest['clustering']['num_clusters']:>9,}",
        f"  reused stages     {', '.join(manifest.get('stages_reused', [])) or 'none'}",
        f"  time              {sum(manifest['timings'].values()):>9.1f} s  {manifest['timings']}",
    ]
    report = Path(out) / "report.html"
    if is_url(out):
        lines.append(f"  report            {out.rstrip('/')}/report.html")
    elif report.exists():
        lines.append(f"  report            {report}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
